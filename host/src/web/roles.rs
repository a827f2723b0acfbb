//! `/admin/roles`: roles without code. The published roles (members, rules,
//! conditions in words), a draft edited as Red Hat Developer Hub's CSV and
//! conditional-policy YAML, its differences from the published policy, and
//! publishing or discarding it; `/admin/roles/history` lists the versions.
//!
//! Everything here needs `callboard.policy.manage` and a session (the admin
//! token's, or a person's): others get a 403 page. Forms are plain POSTs
//! carrying the session's CSRF token, checked against cross-site origins,
//! and refused before their body is read without such a session. The
//! changes go through the same calls as `/api/admin/policy`
//! ([`crate::api::policy`]), audit entries included.

use axum::{
    Extension, Form,
    extract::{DefaultBodyLimit, Query, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use callboard_store::access::{PolicyState, PolicyVersion};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Web,
    layout::{Nav, page},
};
use crate::{
    api::policy::{
        MAX_DRAFT_BODY, PolicyChangeError, PolicyDiff, RoleChange, criteria_words, diff,
        discard_draft, draft, import_draft, publish_draft, published, save_draft, timestamp,
    },
    auth::SessionInfo,
    identity::Identity,
    permissions::{CALLBOARD_POLICY_MANAGE, Effect, Policy, Role, rhdh},
};

/// The routes, merged into the portal's router.
pub(super) fn routes(web: &Web) -> axum::Router<Web> {
    let small = DefaultBodyLimit::max(web.app.config.server.max_unauthenticated_body);
    // Form encoding can triple the text (percent-escapes).
    let draft_limit = DefaultBodyLimit::max(3 * MAX_DRAFT_BODY + 4096);
    let forms = axum::Router::new()
        .route("/admin/roles/draft", post(save).layer(draft_limit))
        .route("/admin/roles/publish", post(publish).layer(small))
        .route("/admin/roles/discard", post(discard).layer(small))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            require_session,
        ));
    axum::Router::new()
        .route("/admin/roles", get(index))
        .route("/admin/roles/history", get(history))
        .merge(forms)
        .layer(axum::middleware::from_fn(super::admin::same_origin))
}

/// The caller's session, if the policy lets them manage it.
fn session(web: &Web, identity: Option<&Identity>) -> Option<SessionInfo> {
    super::signin::session_with(web, identity, CALLBOARD_POLICY_MANAGE)
}

/// Route layer on every form: no allowed session, no body read.
async fn require_session(State(web): State<Web>, mut request: Request, next: Next) -> Response {
    match session(&web, request.extensions().get::<Identity>()) {
        Some(info) => {
            request.extensions_mut().insert(info);
            next.run(request).await
        }
        None => forbidden(),
    }
}

/// The 403 page for a caller without `callboard.policy.manage`.
fn forbidden() -> Response {
    let body = html! {
        div.error-page {
            h1 { "Not allowed" }
            p { "Managing roles needs the " code { (CALLBOARD_POLICY_MANAGE) } " permission, which your session does not have." }
            p { a href="/sign-in?return=%2Fadmin%2Froles" { "Sign in" } " as someone who has it, or " a href="/admin" { "sign in with the admin token" } "." }
        }
    };
    (
        StatusCode::FORBIDDEN,
        Html(page("Roles", Nav::Admin, "", &body).into_string()),
    )
        .into_response()
}

fn bad_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(
            super::layout::error_page(
                "Forbidden",
                "This form is stale or was not sent by this portal. Reload the page and try again.",
            )
            .into_string(),
        ),
    )
        .into_response()
}

fn unavailable(e: &PolicyChangeError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(super::layout::error_page("Unavailable", &e.to_string()).into_string()),
    )
        .into_response()
}

/// What `/admin/roles` shows after a redirect.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Notice {
    saved: Option<i64>,
    published: Option<i64>,
    discarded: Option<String>,
}

/// What the roles page renders.
struct View {
    published: Option<PolicyVersion>,
    policy: Policy,
    draft: Option<(PolicyVersion, Policy)>,
    diff: Option<PolicyDiff>,
}

async fn load(web: &Web) -> Result<View, PolicyChangeError> {
    let (published, policy) = published(&policy_api(web)).await?;
    let draft = draft(&policy_api(web)).await?;
    let diff = draft
        .as_ref()
        .map(|(_, d)| diff(&policy, d, &web.app.access.permissions()));
    Ok(View {
        published,
        policy,
        draft,
        diff,
    })
}

/// The editor's texts: the draft's, else the published policy's.
fn editor_texts(view: &View) -> (String, String) {
    let source = view.draft.as_ref().map_or(&view.policy, |(_, d)| d);
    rhdh::export(source)
}

async fn index(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(session) = session(&web, identity.as_deref()) else {
        return forbidden();
    };
    let view = match load(&web).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    let texts = editor_texts(&view);
    Html(roles_page(&view, &session, &notice, None, &texts).into_string()).into_response()
}

#[derive(Deserialize)]
struct DraftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
    #[serde(default)]
    conditional: String,
}

async fn save(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Form(form): Form<DraftForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    // Browsers send textareas with CRLF line ends.
    let csv = form.csv.replace("\r\n", "\n");
    let conditional = form.conditional.replace("\r\n", "\n");
    let result = match import_draft(&policy_api(&web), &csv, Some(&conditional)) {
        Ok(policy) => save_draft(&policy_api(&web), &identity, &policy).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => Redirect::to(&format!("/admin/roles?saved={id}")).into_response(),
        Err(PolicyChangeError::Store(m)) => unavailable(&PolicyChangeError::Store(m)),
        Err(e) => {
            let view = match load(&web).await {
                Ok(v) => v,
                Err(e) => return unavailable(&e),
            };
            let message = format!("The draft was not saved: {e}");
            let page = roles_page(
                &view,
                &session,
                &Notice::default(),
                Some(&message),
                &(csv, conditional),
            );
            (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response()
        }
    }
}

#[derive(Deserialize)]
struct PublishForm {
    #[serde(default)]
    csrf: String,
    version: i64,
}

async fn publish(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Form(form): Form<PublishForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    match publish_draft(&policy_api(&web), &identity, form.version).await {
        Ok(_) => Redirect::to(&format!("/admin/roles?published={}", form.version)).into_response(),
        Err(e @ PolicyChangeError::Store(_)) => unavailable(&e),
        Err(e) => refused(&web, &session, &format!("Not published: {e}"), e).await,
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn discard(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    match discard_draft(&policy_api(&web), &identity).await {
        Ok(()) => Redirect::to("/admin/roles?discarded=1").into_response(),
        Err(e @ PolicyChangeError::Store(_)) => unavailable(&e),
        Err(e) => refused(&web, &session, &format!("Not discarded: {e}"), e).await,
    }
}

/// The roles page with `message` above it: 409 for a stale draft, else 400.
async fn refused(
    web: &Web,
    session: &SessionInfo,
    message: &str,
    e: PolicyChangeError,
) -> Response {
    let status = match e {
        PolicyChangeError::Stale(_) | PolicyChangeError::NoDraft => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let view = match load(web).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    let texts = editor_texts(&view);
    let page = roles_page(&view, session, &Notice::default(), Some(message), &texts);
    (status, Html(page.into_string())).into_response()
}

async fn history(State(web): State<Web>, identity: Option<Extension<Identity>>) -> Response {
    if session(&web, identity.as_deref()).is_none() {
        return forbidden();
    }
    let versions = match web.app.stores.policies.versions(200).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("roles history: {e}");
            return unavailable(&PolicyChangeError::Store(e.to_string()));
        }
    };
    let body = html! {
        nav.breadcrumbs aria-label="Breadcrumbs" { a href="/admin" { "Admin" } " / " a href="/admin/roles" { "Roles" } " / History" }
        h1 { "Policy history" }
        p.muted { "Each version is a draft until it is published; the version it replaces becomes inactive." }
        section.panel aria-labelledby="versions-title" {
            h2 #versions-title { "Versions (" (versions.len()) ")" }
            table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "State" } th scope="col" { "Drafted by" } th scope="col" { "Created" } th scope="col" { "Published" } } }
                tbody {
                    @for v in &versions {
                        tr {
                            td.num { (v.id) }
                            td { (state_badge(v.state)) }
                            td { (v.author) }
                            td { (timestamp(v.created_ms)) }
                            td {
                                @if let Some(at) = v.published_ms { (timestamp(at)) @if let Some(by) = &v.published_by { " by " (by) } }
                                @else { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(page("Policy history", Nav::Admin, "", &body).into_string()).into_response()
}

fn state_badge(state: PolicyState) -> Markup {
    let class = match state {
        PolicyState::Draft => "badge life-experimental",
        PolicyState::Published => "badge life-production",
        PolicyState::Inactive => "badge",
    };
    html! { span class=(class) { (state.as_str()) } }
}

fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn roles_page(
    view: &View,
    session: &SessionInfo,
    notice: &Notice,
    error: Option<&str>,
    (csv, conditional): &(String, String),
) -> Markup {
    let csrf = session.csrf.as_str();
    let body = html! {
        nav.breadcrumbs aria-label="Breadcrumbs" { a href="/admin" { "Admin" } " / Roles" }
        div.entity-head {
            div {
                h1 { "Roles" }
                p.ref {
                    @match &view.published {
                        Some(v) => {
                            "Version " (v.id) " in force"
                            @if let Some(by) = &v.published_by { ", published by " strong { (by) } }
                            @if let Some(at) = v.published_ms { " at " (timestamp(at)) }
                        },
                        None => { "The built-in default policy is in force." },
                    }
                }
            }
            div.actions {
                a.button.secondary href="/admin/roles/history" { "History" } " "
                a.button.secondary href="/api/admin/policy/export.csv" { "Export CSV" } " "
                a.button.secondary href="/api/admin/policy/export-conditional.yaml" { "Export conditions" }
            }
        }
        @if let Some(id) = notice.saved { p.notice role="status" { "Draft version " (id) " saved. Review the changes below, then publish it." } }
        @if let Some(id) = notice.published { p.notice role="status" { "Version " (id) " is published and in force." } }
        @if notice.discarded.is_some() { p.notice role="status" { "The draft was discarded." } }
        @if let Some((draft, _)) = &view.draft {
            section.panel aria-labelledby="draft-title" {
                h2 #draft-title { "Draft version " (draft.id) }
                p.muted { "Saved by " (draft.author) " · created " (timestamp(draft.created_ms)) }
                @if let Some(d) = &view.diff { (diff_view(d)) }
                div.row.roles-actions {
                    form method="post" action="/admin/roles/publish" {
                        (csrf_input(csrf))
                        input type="hidden" name="version" value=(draft.id);
                        button type="submit" { "Publish" }
                    }
                    form method="post" action="/admin/roles/discard" {
                        (csrf_input(csrf))
                        button.danger type="submit" { "Discard" }
                    }
                }
            }
        }
        section.panel aria-labelledby="edit-title" {
            h2 #edit-title { "Edit as draft" }
            @if let Some(e) = error { div.alert role="alert" { h2 { "Not done" } p { (e) } } }
            p.muted {
                "Red Hat Developer Hub's policy CSV (" code { "p, <role>, <permission>, <action>, <allow|deny>" } " and "
                code { "g, <member>, <role>" } ") and its conditional policies (YAML). Saving checks them and keeps them as a draft; nothing changes until you publish."
            }
            form.upload method="post" action="/admin/roles/draft" {
                (csrf_input(csrf))
                label for="policy-csv" { "Policy CSV" }
                textarea.policy #policy-csv name="csv" rows="16" spellcheck="false" { (csv) }
                label for="policy-conditional" { "Conditional policies (YAML)" }
                textarea.policy #policy-conditional name="conditional" rows="12" spellcheck="false" { (conditional) }
                button type="submit" { "Save draft" }
            }
        }
        section.panel aria-labelledby="published-title" {
            h2 #published-title { "Published roles (" (view.policy.roles.len()) ")" }
            @for role in &view.policy.roles { (role_card(role)) }
        }
    };
    page("Roles", Nav::Admin, "", &body)
}

fn role_card(role: &Role) -> Markup {
    html! {
        article.plugin aria-label=(role.name) {
            h3 { (role.name) }
            @if !role.description.is_empty() { p { (role.description) } }
            dl.facts {
                dt { "Members" }
                dd {
                    @if role.members.is_empty() { span.muted { "nobody" } }
                    @else {
                        ul.plain.compact {
                            @for m in &role.members {
                                li { @if m == "*" { "everyone signed in" } @else { code { (m) } } }
                            }
                        }
                    }
                }
                dt { "Rules" }
                dd {
                    @if role.rules.is_empty() { span.muted { "none" } }
                    @else {
                        ul.plain.compact {
                            @for r in &role.rules {
                                li {
                                    @match r.effect {
                                        Effect::Allow => span.badge.life-production { "allow" },
                                        Effect::Deny => span.badge.life-deprecated { "deny" },
                                    }
                                    " " code { (r.permission) }
                                    @if let Some(a) = r.action { " (" (a.as_str()) ")" }
                                    @if let Some(c) = &r.conditions { " when " (criteria_words(c)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn diff_view(d: &PolicyDiff) -> Markup {
    let s = d.summary();
    html! {
        @if d.is_empty() {
            p.muted { "The draft is the same as the published policy." }
        } @else {
            p.summary-line {
                (s.roles_added) " roles added, " (s.roles_removed) " removed, " (s.roles_changed) " changed; "
                (s.members_added + s.members_removed) " member changes, " (s.rules_added + s.rules_removed) " rule changes."
            }
            @for r in &d.roles {
                h3 {
                    (r.role) " "
                    @match r.change {
                        RoleChange::Added => span.badge.life-production { "added" },
                        RoleChange::Removed => span.badge.life-deprecated { "removed" },
                        RoleChange::Changed => span.badge { "changed" },
                    }
                }
                ul.diff {
                    @for m in &r.members_added { li.added { "+ member " (m) } }
                    @for m in &r.members_removed { li.removed { "− member " (m) } }
                    @for l in &r.rules_added { li.added { "+ " (l) } }
                    @for l in &r.rules_removed { li.removed { "− " (l) } }
                    @if r.description_changed && r.change == RoleChange::Changed { li { "description changed" } }
                }
            }
        }
    }
}

/// The policy API's state, as the portal's roles pages use it.
fn policy_api(web: &Web) -> crate::api::policy::PolicyApi {
    axum::extract::FromRef::from_ref(&web.app)
}
