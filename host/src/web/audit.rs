//! `/admin/tokens` (API tokens: create, list, revoke) and `/admin/audit`
//! (the audit log, newest first, with CSV and JSON Lines exports), for
//! people the policy allows `callboard.tokens.manage` and
//! `callboard.audit.read` (and the admin token's session).
//!
//! The pages call the admin API's own functions
//! ([`crate::api::admin::tokens`], [`crate::api::admin::audit`]), so both
//! check and record the same way. Every form is a POST carrying the
//! session's CSRF token, refused before its body is read when the caller
//! lacks the permission, and checked against cross-site origins. A new
//! token's secret is shown once, in the answer to the form (never in a
//! URL, never cached).

use axum::{
    Extension,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use callboard_store::access::{AuditRow, TokenRow};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Web,
    layout::{Nav, page},
};
use crate::{
    api::admin::{
        audit::{DEFAULT_PAGE, read_page},
        rfc3339,
        tokens::{self, Created, DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, MAX_NAME, NewToken},
    },
    auth::SessionInfo,
    identity::Identity,
    permissions::{CALLBOARD_AUDIT_READ, CALLBOARD_TOKENS_MANAGE},
};

/// Largest form body, in bytes (a name, a number and permission names).
const MAX_FORM: usize = 64 << 10;

/// The routes, merged into the portal's router.
pub(super) fn routes(web: &Web) -> axum::Router<Web> {
    let tokens = axum::Router::new()
        .route("/admin/tokens", get(tokens_page).post(create))
        .route("/admin/tokens/{id}/revoke", post(revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            (web.clone(), CALLBOARD_TOKENS_MANAGE),
            guard_forms,
        ));
    axum::Router::new()
        .merge(tokens)
        .route("/admin/audit", get(audit_page))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .layer(axum::middleware::from_fn(super::admin::same_origin))
}

/// Route layer: a form post from someone without `permission` (or without
/// a session to check its CSRF token against) is refused before its body
/// is read. Pages (GET) say so themselves.
async fn guard_forms(
    State((web, permission)): State<(Web, &'static str)>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    let identity = request.extensions().get::<Identity>().cloned();
    match super::signin::session_with(&web, identity.as_ref(), permission) {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None => not_allowed(identity.as_ref(), permission),
    }
}

/// The page for someone the policy does not allow `permission`.
fn not_allowed(identity: Option<&Identity>, permission: &str) -> Response {
    let who = identity.filter(|i| !i.is_anonymous()).map(Identity::name);
    let body = html! {
        h1 { "Not allowed" }
        section.panel.narrow role="alert" {
            @match &who {
                Some(who) => p { "You are signed in as " strong { (who) } ", who may not " code { (permission) } "." },
                None => p { "This page needs " code { (permission) } ". You are not signed in." },
            }
            p {
                a href="/sign-in" { "Sign in" } " as someone who may, or "
                a href="/admin" { "sign in with the admin token" } "."
            }
        }
    };
    (
        StatusCode::FORBIDDEN,
        Html(page("Not allowed", Nav::Admin, "", &body).into_string()),
    )
        .into_response()
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(super::layout::error_page("Forbidden", message).into_string()),
    )
        .into_response()
}

fn bad_csrf() -> Response {
    forbidden("This form is stale or was not sent by this portal. Reload the page and try again.")
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TokensNotice {
    revoked: String,
}

/// What the tokens page shows besides the list.
#[derive(Default)]
struct Outcome<'a> {
    created: Option<&'a Created>,
    error: Option<&'a str>,
    revoked: Option<&'a str>,
    /// The form as sent, to fill it again after an error.
    form: Option<&'a TokenForm>,
}

async fn tokens_page(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Query(notice): Query<TokensNotice>,
) -> Response {
    let identity = identity.as_deref();
    let Some(session) = super::signin::session_with(&web, identity, CALLBOARD_TOKENS_MANAGE) else {
        return not_allowed(identity, CALLBOARD_TOKENS_MANAGE);
    };
    let outcome = Outcome {
        revoked: (!notice.revoked.is_empty()).then_some(notice.revoked.as_str()),
        ..Outcome::default()
    };
    tokens_response(&web, &session, StatusCode::OK, &outcome).await
}

/// The create form, as posted: `name`, `expires_days`, `permission`
/// (repeated), `csrf`.
#[derive(Debug, Default)]
struct TokenForm {
    name: String,
    expires_days: String,
    permissions: Vec<String>,
    csrf: String,
}

impl TokenForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            match &*key {
                "name" => form.name = value.trim().to_owned(),
                "expires_days" => form.expires_days = value.trim().to_owned(),
                "permission" => form.permissions.push(value.into_owned()),
                "csrf" => form.csrf = value.into_owned(),
                _ => {}
            }
        }
        form
    }
}

async fn create(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    body: Bytes,
) -> Response {
    let form = TokenForm::parse(&body);
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    let days = if form.expires_days.is_empty() {
        Ok(None)
    } else {
        form.expires_days.parse::<i64>().map(Some).map_err(|_| {
            format!("The expiry must be a whole number of days, 1 to {MAX_EXPIRY_DAYS}.")
        })
    };
    let result = match days {
        Ok(days) => {
            let new = NewToken {
                name: form.name.clone(),
                expires_in_days: days,
                permissions: form.permissions.clone(),
            };
            tokens::create_token(&admin_api(&web), &identity, new)
                .await
                .map_err(|e| e.message)
        }
        Err(message) => Err(message),
    };
    match result {
        Ok(created) => {
            let outcome = Outcome {
                created: Some(&created),
                ..Outcome::default()
            };
            let mut response = tokens_response(&web, &session, StatusCode::OK, &outcome).await;
            // The secret is in this page only: nothing may keep a copy.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(message) => {
            let outcome = Outcome {
                error: Some(&message),
                form: Some(&form),
                ..Outcome::default()
            };
            tokens_response(&web, &session, StatusCode::BAD_REQUEST, &outcome).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn revoke(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    match tokens::revoke_token(&admin_api(&web), &identity, &id).await {
        Ok(()) => Redirect::to(&format!("/admin/tokens?revoked={}", enc(&id))).into_response(),
        Err(e) => {
            let outcome = Outcome {
                error: Some(&e.message),
                ..Outcome::default()
            };
            tokens_response(&web, &session, e.status, &outcome).await
        }
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn tokens_response(
    web: &Web,
    session: &SessionInfo,
    status: StatusCode,
    outcome: &Outcome<'_>,
) -> Response {
    let (rows, list_error) = match tokens::list_tokens(&admin_api(web)).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    let markup = tokens_markup(web, session, &rows, list_error.as_deref(), outcome);
    (status, Html(markup.into_string())).into_response()
}

fn tokens_markup(
    web: &Web,
    session: &SessionInfo,
    rows: &[TokenRow],
    list_error: Option<&str>,
    outcome: &Outcome<'_>,
) -> Markup {
    let now = crate::auth::now_ms();
    let csrf = session.csrf.as_str();
    let permissions = web.app.access.permissions();
    let form = outcome.form;
    let name = form.map_or("", |f| f.name.as_str());
    let days = form
        .map(|f| f.expires_days.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_EXPIRY_DAYS.to_string());
    let checked = |p: &str| form.is_some_and(|f| f.permissions.iter().any(|c| c == p));
    let revoked = outcome.revoked.map(|id| {
        rows.iter()
            .find(|r| r.id == id)
            .map_or(id, |r| r.name.as_str())
    });
    page(
        "API tokens",
        Nav::Admin,
        "",
        &html! {
            div.entity-head {
                div {
                    h1 { "API tokens" }
                    p.muted { "Tokens let scripts and CI call the API as the service principal " code { "token:<name>" } ": what the policy grants that principal, narrowed to the permissions ticked below. " a href="/admin" { "Back to administration" } }
                }
            }
            @if let Some(e) = outcome.error { div.alert role="alert" { h2 { "Not done" } p { (e) } } }
            @if let Some(name) = revoked { p.notice role="status" { "Revoked " strong { (name) } ". It stops working at once, on every replica." } }
            @if let Some(created) = outcome.created {
                section.panel.secret role="status" aria-labelledby="secret-title" {
                    h2 #secret-title { "Token " (created.row.name) " created" }
                    p { strong { "Copy it now:" } " it is shown only this once. Callboard keeps only a digest of it." }
                    p { code.secret { (created.secret) } }
                    p.muted { "Send it as " code { "Authorization: Bearer <token>" } "; it expires "
                        (created.row.expires_ms.map(rfc3339).unwrap_or_default()) "." }
                }
            }
            section.panel aria-labelledby="create-title" {
                h2 #create-title { "Create a token" }
                form.token-form method="post" action="/admin/tokens" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.upload {
                        label for="token-name" { "Name (service principal)"
                            input #token-name type="text" name="name" value=(name) required maxlength=(MAX_NAME) pattern="[A-Za-z0-9._\\-]+" placeholder="ci-bot"; }
                        label for="token-days" { "Expires in (days)"
                            input #token-days type="number" name="expires_days" value=(days) min="1" max=(MAX_EXPIRY_DAYS) required; }
                    }
                    fieldset.permissions {
                        legend { "Restrict to these permissions (none ticked: what the policy grants the principal)" }
                        @for p in permissions.all() {
                            label.check { input type="checkbox" name="permission" value=(p.name) checked[checked(&p.name)]; " " code { (p.name) } }
                        }
                    }
                    button type="submit" { "Create token" }
                }
            }
            section.panel aria-labelledby="tokens-title" {
                h2 #tokens-title { "Tokens (" (rows.len()) ")" }
                @if let Some(e) = list_error { p.form-error role="alert" { (e) } }
                @if rows.is_empty() { p.muted { "None yet." } } @else {
                    div.table-scroll {
                        table {
                            thead { tr {
                                th scope="col" { "Name" } th scope="col" { "Permissions" } th scope="col" { "Created" }
                                th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Actions" } }
                            } }
                            tbody {
                                @for r in rows {
                                    @let state = tokens::state_of(r, now);
                                    tr {
                                        td { strong { (r.name) } br; span.muted { code { (r.id) } } }
                                        td { @if r.permissions.is_empty() { span.muted { "as the policy grants" } } @else { (r.permissions.join(", ")) } }
                                        td { (rfc3339(r.created_ms)) br; span.muted { "by " (r.created_by) } }
                                        td { (r.expires_ms.map(rfc3339).unwrap_or_else(|| "never".into())) }
                                        td { (r.last_used_ms.map(rfc3339).unwrap_or_else(|| "never".into())) }
                                        td { span class=(format!("badge token-{state}")) { (state) } }
                                        td {
                                            @if state == "live" {
                                                form method="post" action=(format!("/admin/tokens/{}/revoke", enc(&r.id))) {
                                                    input type="hidden" name="csrf" value=(csrf);
                                                    button.danger type="submit" aria-label=(format!("Revoke {}", r.name)) { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AuditQuery {
    before: Option<String>,
}

async fn audit_page(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Query(query): Query<AuditQuery>,
) -> Response {
    let identity = identity.as_deref();
    if super::signin::session_with(&web, identity, CALLBOARD_AUDIT_READ).is_none() {
        return not_allowed(identity, CALLBOARD_AUDIT_READ);
    }
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match b.parse::<i64>() {
            Ok(b) if b > 0 => Some(b),
            _ => {
                return super::WebError::BadRequest(
                    "`before` must be an entry id (a positive number).".into(),
                )
                .into_response();
            }
        },
    };
    match read_page(&admin_api(&web), before, DEFAULT_PAGE).await {
        Ok((rows, next)) => Html(audit_markup(&rows, before, next).into_string()).into_response(),
        Err(e) => (
            e.status,
            Html(super::layout::error_page("Audit log unavailable", &e.message).into_string()),
        )
            .into_response(),
    }
}

fn audit_markup(rows: &[AuditRow], before: Option<i64>, next: Option<i64>) -> Markup {
    page(
        "Audit log",
        Nav::Admin,
        "",
        &html! {
            div.entity-head {
                div {
                    h1 { "Audit log" }
                    p.muted { "Who changed plugins, tokens and the policy, newest first. " a href="/admin" { "Back to administration" } }
                }
                div.links {
                    a href="/api/admin/audit/export?format=csv" download { "Export CSV" }
                    a href="/api/admin/audit/export?format=jsonl" download { "Export JSON Lines" }
                }
            }
            section.panel aria-labelledby="audit-title" {
                h2 #audit-title { @if before.is_some() { "Older entries" } @else { "Latest entries" } }
                @if rows.is_empty() { p.muted { "Nothing recorded here." } } @else {
                    div.table-scroll {
                        table.audit {
                            thead { tr {
                                th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" }
                                th scope="col" { "Target" } th scope="col" { "Detail" }
                            } }
                            tbody {
                                @for r in rows {
                                    tr {
                                        td { (rfc3339(r.at_ms)) }
                                        td { (r.actor) }
                                        td { code { (r.action) } }
                                        td { (r.target) }
                                        td.detail { code { (r.detail.to_string()) } }
                                    }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if before.is_some() { a.button.secondary href="/admin/audit" { "⇤ Newest" } }
                    @match next {
                        Some(id) => a.button.secondary href=(format!("/admin/audit?before={id}")) rel="next" { "Older →" },
                        None => span.disabled aria-disabled="true" { "Older →" },
                    }
                }
            }
        },
    )
}

/// The admin API's state, as the portal's pages use it.
pub(super) fn admin_api(web: &Web) -> crate::api::admin::AdminApi {
    axum::extract::FromRef::from_ref(&web.app)
}
