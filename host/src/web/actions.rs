//! What the person looking at an entity may do with it: the entity page's
//! "Your access" panel (refresh, unregister, or who to ask), and the two
//! forms behind it (`POST /catalog/{ns}/{kind}/{name}/refresh` and
//! `.../unregister`), each checked against the policy on that entity, with
//! the session's CSRF token, and refused from other sites.

use axum::{
    Form,
    extract::Path,
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::post,
};
use callboard_catalog::EntityRef;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{Scoped, Web, WebError, entity_href, layout::error_page};
use crate::{
    identity::access::Scope,
    permissions::{CATALOG_ENTITY_DELETE, CATALOG_ENTITY_REFRESH},
};

/// The forms' routes, merged into the portal's router.
pub(super) fn routes(web: &Web) -> axum::Router<Web> {
    let small =
        axum::extract::DefaultBodyLimit::max(web.app.config.server.max_unauthenticated_body);
    axum::Router::new()
        .route(
            "/catalog/{namespace}/{kind}/{name}/refresh",
            post(refresh).layer(small),
        )
        .route(
            "/catalog/{namespace}/{kind}/{name}/unregister",
            post(unregister).layer(small),
        )
        .layer(axum::middleware::from_fn(super::admin::same_origin))
}

/// Whether the request's identity may do `permission` on entity `r`
/// (asked of the store with the permission's conditions). Blocking: for
/// renderers.
fn may(web: &Web, r: &EntityRef, permission: &str) -> Result<bool, WebError> {
    Ok(match web.app.access.scope(&web.identity, permission) {
        Scope::All => true,
        Scope::Nothing => false,
        Scope::Where(p) => web
            .catalog()
            .get_by_refs(&[r.to_string()], Some(&p))?
            .first()
            .is_some_and(Option::is_some),
    })
}

/// The "Your access" panel of an entity page.
pub(super) fn panel(web: &Web, entity: &Value, me: &EntityRef) -> Result<Markup, WebError> {
    let Some(session) = web.identity.session.as_ref() else {
        return Ok(html! {});
    };
    let refresh = may(web, me, CATALOG_ENTITY_REFRESH)?;
    let unregister = may(web, me, CATALOG_ENTITY_DELETE)?;
    let owner = entity
        .pointer("/spec/owner")
        .and_then(Value::as_str)
        .unwrap_or("");
    let href = entity_href(me);
    Ok(html! {
        section.panel.access aria-labelledby="access-title" {
            h2 #access-title { "Your access" }
            @if refresh || unregister {
                p.can { "You can change this entity." }
                div.row {
                    @if refresh {
                        form method="post" action=(format!("{href}/refresh")) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Refresh" }
                        }
                    }
                    @if unregister {
                        form method="post" action=(format!("{href}/unregister")) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.danger type="submit" { "Unregister" }
                        }
                    }
                }
            } @else {
                p.cannot {
                    "You can view this entity. Changing it is up to its owners"
                    @if !owner.is_empty() { " (" (owner) ")" }
                    "."
                }
            }
        }
    })
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(error_page("Not allowed", message).into_string()),
    )
        .into_response()
}

/// Checks the form and the permission on the entity; returns the entity.
async fn checked(
    web: &Web,
    r: &EntityRef,
    csrf: &str,
    permission: &str,
) -> Result<Value, Response> {
    let Some(session) = web.identity.session.as_ref() else {
        return Err(refused(StatusCode::UNAUTHORIZED, "Sign in first."));
    };
    if !session.csrf_matches(csrf) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "This form is stale or was not sent by this portal. Reload the page and try again.",
        ));
    }
    let entity = match web.app.catalog.get_by_ref(r).await {
        Ok(Some(e)) if web.may_read(r).await.unwrap_or(false) => e,
        Ok(_) => return Err(refused(StatusCode::NOT_FOUND, "No such entity.")),
        Err(e) => return Err(WebError::from(e).into_response()),
    };
    let allowed = web
        .app
        .access
        .scope(&web.identity, permission)
        .reaches(&web.app.catalog, &r.to_string())
        .await
        .map_err(|e| WebError::from(e).into_response())?;
    if !allowed {
        return Err(refused(
            StatusCode::FORBIDDEN,
            &format!("{} may not {permission} {r}.", web.identity.name()),
        ));
    }
    Ok(entity)
}

async fn refresh(
    Scoped(web): Scoped,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let r = EntityRef::new(&kind, &namespace, &name);
    if let Err(refusal) = checked(&web, &r, &form.csrf, CATALOG_ENTITY_REFRESH).await {
        return refusal;
    }
    match web.app.catalog.refresh_entity(&r).await {
        Ok(_) => Redirect::to(&entity_href(&r)).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

async fn unregister(
    Scoped(web): Scoped,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let r = EntityRef::new(&kind, &namespace, &name);
    let entity = match checked(&web, &r, &form.csrf, CATALOG_ENTITY_DELETE).await {
        Ok(e) => e,
        Err(refusal) => return refusal,
    };
    let uid = entity
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match web.app.catalog.delete_by_uid(uid).await {
        Ok(()) => Redirect::to("/catalog").into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}
