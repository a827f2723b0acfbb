//! `POST /plugins/{plugin}/-/actions/{action}`: a button or form in a
//! plugin's view (API 0.4). The portal checks the session's CSRF token
//! (and the origin), that the person may use the plugin and read the
//! entity the view was on, runs the plugin's `actions.run` as that person,
//! records it in the audit log, and shows the outcome above the view
//! rendered again, with a link back to where the button was.

use std::time::Duration;

use axum::{
    Form,
    extract::Path,
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::post,
};
use callboard_catalog::EntityRef;
use maud::{PreEscaped, html};
use serde_json::Value;

use super::{Scoped, Web, WebError, layout::error_page, plugins::name_of};
use crate::{
    plugins::{ActionRequest, CallError, ViewRequest, manifest::SlotKind, ui},
    views::{
        self, Viewer,
        fields::{CSRF_FIELD, ENTITY_FIELD, PATH_FIELD, QUERY_FIELD, SLOT_FIELD},
    },
};

/// Most bytes of an action's form.
const MAX_FORM_BYTES: usize = 64 << 10;
/// Most values an action receives.
const MAX_VALUES: usize = 100;

/// The route, merged into the portal's router.
pub(super) fn routes() -> axum::Router<Web> {
    axum::Router::new()
        .route(
            "/plugins/{plugin}/-/actions/{action}",
            post(run).layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .layer(axum::middleware::from_fn(super::admin::same_origin))
}

fn refused(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(error_page(title, message).into_string())).into_response()
}

/// Where the view was: its request (less the caller) and the page to go back to.
struct Place {
    slot: SlotKind,
    entity: Option<(EntityRef, Value)>,
    path: String,
    query: String,
}

impl Place {
    fn back(&self, plugin: &str) -> String {
        match (&self.entity, self.slot) {
            (Some((r, _)), slot) => {
                let page = super::entity_href(r);
                if slot == SlotKind::EntityTab {
                    format!("{page}?tab={plugin}")
                } else {
                    page
                }
            }
            (None, _) => {
                let mut href = format!(
                    "/plugins/{plugin}{}",
                    if self.path == "/" { "" } else { &self.path }
                );
                if !self.query.is_empty() {
                    href.push('?');
                    href.push_str(&self.query);
                }
                href
            }
        }
    }
}

async fn run(
    Scoped(web): Scoped,
    Path((plugin, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(session) = web.identity.session.as_ref() else {
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Sign in to use this plugin's actions.",
        ));
    };
    if !session.csrf_matches(field(CSRF_FIELD).unwrap_or_default()) {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This form is stale or was not sent by this portal. Reload the page and try again.",
        ));
    }
    if !views::valid_action(&action) {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "No such action",
            "The action's name is not valid.",
        ));
    }
    let values: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| !n.starts_with('_'))
        .cloned()
        .collect();
    if values.len() > MAX_VALUES || values.iter().any(|(n, _)| !views::valid_field(n)) {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "Not allowed",
            &format!("An action takes at most {MAX_VALUES} values with valid names."),
        ));
    }
    let Some(place) = place(&web, &plugin, &field).await? else {
        return Ok(refused(
            StatusCode::NOT_FOUND,
            "Not found",
            "The view this action belongs to is not there.",
        ));
    };
    let viewer = Viewer::of(&web.app.callers, &web.identity);
    let request = ViewRequest {
        caller: viewer.caller.clone(),
        slot: place.slot,
        entity: place.entity.as_ref().map(|(_, e)| e.to_string()),
        path: place.path.clone(),
        query: place.query.clone(),
    };
    if let Err(e) = web.app.plugins.admits(&plugin, &request.path) {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &e.to_string(),
        ));
    }
    let outcome = web
        .app
        .plugins
        .run_action(
            &plugin,
            ActionRequest {
                name: action.clone(),
                values,
                view: request,
            },
        )
        .await;
    let notice = match &outcome {
        Ok(Ok(outcome)) => outcome.notice.clone(),
        Ok(Err(message)) => ui::Notice {
            tone: ui::Tone::Bad,
            title: format!("{} could not {action}", name_of(&web, &plugin)),
            detail: Some(message.clone()),
        },
        Err(e) => ui::Notice {
            tone: ui::Tone::Bad,
            title: format!("{} could not {action}", name_of(&web, &plugin)),
            detail: Some(e.to_string()),
        },
    };
    crate::audit::record(
        &web.app.stores.audit,
        &web.identity,
        "plugin.action",
        &format!("plugin:{plugin}"),
        serde_json::json!({
            "action": action,
            "entity": place.entity.as_ref().map(|(r, _)| r.to_string()),
            "ok": matches!(outcome, Ok(Ok(_))),
        }),
    )
    .await;
    let status = match &outcome {
        Ok(Ok(_)) => StatusCode::OK,
        Ok(Err(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        Err(CallError::NotFound(_)) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::BAD_GATEWAY,
    };
    // The view again, as it is now.
    let deadline = Duration::from_millis(web.app.config.plugins.view_deadline_ms);
    let again = match &place.entity {
        Some((_, entity)) => views::entity_views_where(
            &web.app.plugins,
            entity,
            &viewer,
            |p, s| p == plugin && s.slot == place.slot,
            deadline,
        )
        .await
        .pop(),
        None => views::page_view(
            &web.app.plugins,
            &plugin,
            &place.path,
            &place.query,
            &viewer,
            deadline,
        )
        .await
        .ok()
        .flatten(),
    };
    let back = place.back(&plugin);
    let name = name_of(&web, &plugin);
    let body = html! {
        nav.breadcrumbs aria-label="Breadcrumb" {
            a href=(back) { "Back" } " › " (name)
        }
        (views::render_notice(&notice))
        @if let Some(view) = &again {
            section.panel aria-label=(view.title) {
                h2 { (view.title) }
                (PreEscaped(&view.html))
            }
        }
        p { a href=(back) { "Back to where you were" } }
    };
    let mut response = super::render(&web, move |_| {
        Ok(super::layout::page(
            &name,
            super::layout::Nav::Plugins,
            "",
            &body,
        ))
    })
    .await?;
    *response.status_mut() = status;
    Ok(response)
}

/// The view's place from the host's fields: the slot, and the entity (which
/// the person must be able to read) or the page path.
async fn place<'a>(
    web: &Web,
    plugin: &str,
    field: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<Place>, WebError> {
    let slot = match field(SLOT_FIELD) {
        Some("entity-card") => SlotKind::EntityCard,
        Some("entity-tab") => SlotKind::EntityTab,
        Some("page") => SlotKind::Page,
        _ => return Ok(None),
    };
    if slot == SlotKind::Page {
        let path = crate::api::plugins::path::normalise(field(PATH_FIELD).unwrap_or("/"))
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let query = field(QUERY_FIELD).unwrap_or_default();
        if query.len() > 4096 {
            return Err(WebError::BadRequest("the page's query is too long".into()));
        }
        return Ok(Some(Place {
            slot,
            entity: None,
            path,
            query: query.to_owned(),
        }));
    }
    let Some(Ok(r)) =
        field(ENTITY_FIELD).map(|r| EntityRef::parse_with_defaults(r, None, "default"))
    else {
        return Ok(None);
    };
    if !web.may_read(&r).await? {
        return Ok(None);
    }
    let Some(entity) = web.app.catalog.get_by_ref(&r).await? else {
        return Ok(None);
    };
    let _ = plugin;
    Ok(Some(Place {
        slot,
        entity: Some((r, entity)),
        path: String::new(),
        query: String::new(),
    }))
}
