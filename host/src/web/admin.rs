//! `/admin`: plugin administration behind the admin token (the one in
//! `<data_dir>/admin-token` that the admin API also takes). Signing in starts
//! a server-side session (see [`crate::auth::Sessions`]): the cookie holds a
//! random id, HttpOnly, SameSite=Strict, and `Secure` with the `__Host-`
//! prefix behind https; sign-out revokes it. Every form is a plain POST (no
//! script) that carries the session's CSRF token and is checked against
//! cross-site origins. A request without a session is refused before its
//! body is read; only signed-in uploads may be large.
//!
//! The pages call [`PluginHost`] directly, the same calls the admin API
//! makes, so a plugin installed here serves at once, without a restart; and
//! record each change in the audit log once it succeeded, as the API does.
//! The plugins page links to the API tokens and audit log pages
//! (`web/audit.rs`).

use axum::{
    Extension, Form,
    extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Web, WebError, ago,
    layout::{Nav, page},
};
use crate::{
    auth::SessionInfo,
    identity::Identity,
    plugins::{
        InstallOptions, LicenseState, LoadError, PluginInfo,
        manifest::{SlotKind, ViewSlot},
        trust::SignatureState,
    },
};

/// The admin routes, merged into the portal's router.
pub(super) fn routes(web: &Web) -> axum::Router<Web> {
    let server = &web.app.config.server;
    let small = DefaultBodyLimit::max(server.max_unauthenticated_body);
    let signed_in = axum::Router::new()
        .route("/admin/plugins", post(install))
        .route("/admin/plugins/{id}/license", post(license))
        .layer(DefaultBodyLimit::max(server.max_upload_body))
        .route("/admin/plugins/{id}/remove", post(remove).layer(small))
        .route("/admin/logout", post(logout).layer(small))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            require_session,
        ));
    axum::Router::new()
        .route("/admin", get(index))
        .route("/admin/login", post(login).layer(small))
        .merge(signed_in)
        .layer(axum::middleware::from_fn(same_origin))
}

/// Refuses cross-site form posts: SameSite=Strict already keeps the cookie
/// off them; this also covers browsers that ignore SameSite.
pub(super) async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let headers = request.headers();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| *o != "null");
        if let (Some(origin), Some(host)) = (origin, host) {
            let origin_host = origin.split("://").nth(1).unwrap_or(origin);
            if origin_host != host {
                return forbidden("Cross-site form posts are refused.");
            }
        }
    }
    next.run(request).await
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(super::layout::error_page("Forbidden", message).into_string()),
    )
        .into_response()
}

/// The session of a request whose identity may manage plugins (the admin
/// token's session, or a person the policy allows
/// `callboard.plugins.manage`). The session's idle time was restarted when
/// the identity was resolved.
fn session(web: &Web, identity: Option<&Identity>) -> Option<SessionInfo> {
    super::signin::session_with(web, identity, crate::permissions::CALLBOARD_PLUGINS_MANAGE)
}

/// Route layer on every signed-in action: no session, no body read.
async fn require_session(State(web): State<Web>, mut request: Request, next: Next) -> Response {
    match session(&web, request.extensions().get::<Identity>()) {
        Some(info) => {
            request.extensions_mut().insert(info);
            next.run(request).await
        }
        None => unauthorized(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Notice {
    installed: String,
    removed: String,
    licensed: String,
}

async fn index(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(session) = session(&web, identity.as_deref()) else {
        return Html(login_page(None).into_string()).into_response();
    };
    Html(plugins_page(&web, &session, &notice, None).into_string()).into_response()
}

#[derive(Deserialize)]
pub(super) struct Login {
    token: String,
}

async fn login(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Form(form): Form<Login>,
) -> Response {
    if !web.app.tokens.is_admin(&form.token) {
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_page(Some("That is not the admin token.")).into_string()),
        )
            .into_response();
    }
    // A new id at every sign-in: a session id planted before it is worthless.
    if let Some(old) = identity.as_ref().and_then(|i| i.session.as_ref()) {
        web.app.sessions.revoke(&old.id).await;
    }
    let session = match web.app.sessions.create(crate::auth::ADMIN_SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("admin sign-in: {e}");
            return WebError::Task("cannot start a session".into()).into_response();
        }
    };
    let mut response = Redirect::to("/admin").into_response();
    let max_age = web.app.sessions.max_age().as_secs();
    if let Some(value) = web.app.identities.session_cookie(&session.id, max_age) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    web.app.sessions.revoke(&session.id).await;
    let mut response = Redirect::to("/admin").into_response();
    if let Some(value) = web.app.identities.session_cookie("", 0) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn bad_csrf() -> Response {
    forbidden("This form is stale or was not sent by this portal. Reload the page and try again.")
}

/// Reads every field of a multipart form: (name, bytes).
async fn fields(mut form: Multipart) -> Result<Vec<(String, bytes::Bytes)>, String> {
    let mut out = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| format!("bad upload: {e}"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| format!("bad upload: {e}"))?;
        out.push((name, bytes));
    }
    Ok(out)
}

fn refused(web: &Web, session: &SessionInfo, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(plugins_page(web, session, &Notice::default(), Some(message)).into_string()),
    )
        .into_response()
}

/// Whether a multipart form carries the session's CSRF token.
fn csrf_field(session: &SessionInfo, fields: &[(String, bytes::Bytes)]) -> bool {
    fields.iter().any(|(name, value)| {
        name == "csrf" && std::str::from_utf8(value).is_ok_and(|v| session.csrf_matches(v))
    })
}

async fn install(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    form: Multipart,
) -> Response {
    let fields = match fields(form).await {
        Ok(f) => f,
        Err(e) => return refused(&web, &session, &e),
    };
    if !csrf_field(&session, &fields) {
        return bad_csrf();
    }
    let mut plugin = None;
    let mut options = InstallOptions::default();
    for (name, bytes) in fields {
        match name.as_str() {
            "plugin" if !bytes.is_empty() => plugin = Some(bytes),
            "license" if !bytes.is_empty() => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => options.license = Some(text),
                Err(_) => return refused(&web, &session, "The licence file is not UTF-8 text."),
            },
            "force" => options.force = true,
            _ => {}
        }
    }
    let Some(plugin) = plugin else {
        return refused(&web, &session, "Choose a plugin file (.wasm) to upload.");
    };
    let host = web.app.plugins.clone();
    let forced = options.force;
    // Verification and compilation are CPU work: off the async workers.
    let result = tokio::task::spawn_blocking(move || host.install(&plugin, &options)).await;
    match result {
        Ok(Ok(info)) => {
            tracing::info!(plugin = %info.id, version = %info.version, "admin page: installed");
            crate::api::admin::audit_install(
                &super::audit::admin_api(&web),
                &identity,
                &info,
                forced,
            )
            .await;
            Redirect::to(&format!("/admin?installed={}", enc(&info.id))).into_response()
        }
        Ok(Err(e)) => refused(&web, &session, &refusal(&e)),
        Err(e) => WebError::Task(e.to_string()).into_response(),
    }
}

async fn license(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    let fields = match fields(form).await {
        Ok(fields) => fields,
        Err(e) => return refused(&web, &session, &e),
    };
    if !csrf_field(&session, &fields) {
        return bad_csrf();
    }
    let text = fields
        .into_iter()
        .find(|(name, b)| name == "license" && !b.is_empty())
        .map(|(_, b)| String::from_utf8(b.to_vec()));
    let text = match text {
        Some(Ok(text)) => text,
        Some(Err(_)) => return refused(&web, &session, "The licence file is not UTF-8 text."),
        None => return refused(&web, &session, "Choose a licence file to upload."),
    };
    let host = web.app.plugins.clone();
    let plugin = id.clone();
    match tokio::task::spawn_blocking(move || host.install_license(&plugin, &text)).await {
        Ok(Ok(_)) => {
            crate::api::admin::audit_license(&super::audit::admin_api(&web), &identity, &id).await;
            Redirect::to(&format!("/admin?licensed={}", enc(&id))).into_response()
        }
        Ok(Err(e)) => refused(&web, &session, &refusal(&e)),
        Err(e) => WebError::Task(e.to_string()).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RemoveForm {
    purge: Option<String>,
    csrf: String,
}

async fn remove(
    State(web): State<Web>,
    Extension(session): Extension<SessionInfo>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    if !session.csrf_matches(&form.csrf) {
        return bad_csrf();
    }
    if web.app.plugins.get(&id).is_none() {
        return refused(
            &web,
            &session,
            &format!("No plugin named \"{id}\" is installed."),
        );
    }
    let host = web.app.plugins.clone();
    let plugin = id.clone();
    let purge = form.purge.is_some();
    match tokio::task::spawn_blocking(move || host.remove(&plugin, purge)).await {
        Ok(Ok(())) => {
            crate::api::admin::audit_remove(&super::audit::admin_api(&web), &identity, &id, purge)
                .await;
            Redirect::to(&format!("/admin?removed={}", enc(&id))).into_response()
        }
        Ok(Err(e)) => refused(&web, &session, &refusal(&e)),
        Err(e) => WebError::Task(e.to_string()).into_response(),
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Html(login_page(Some("Sign in with the admin token first.")).into_string()),
    )
        .into_response()
}

/// One view slot of a plugin, as the admin reads it: where it shows.
fn view_slot(plugin: &str, v: &ViewSlot) -> Markup {
    let kinds = if v.kinds.is_empty() {
        "every kind".to_owned()
    } else {
        v.kinds.join(", ")
    };
    html! {
        @match v.slot {
            SlotKind::EntityCard => { "Card “" (v.title) "” on entity pages (" (kinds) ")" },
            SlotKind::EntityTab => { "Tab “" (v.title) "” on entity pages (" (kinds) ")" },
            SlotKind::Page => {
                @let path = v.path.as_deref().unwrap_or("/");
                @let href = format!("/plugins/{}{}", enc(plugin), if path == "/" { "" } else { path });
                "Page " a href=(href) { "“" (v.title) "”" }
            },
        }
    }
}

fn refusal(e: &LoadError) -> String {
    format!("Refused: {e}")
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, super::SEGMENT).to_string()
}

/// The hidden field every admin form carries.
fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn login_page(error: Option<&str>) -> Markup {
    page(
        "Admin",
        Nav::Admin,
        "",
        &html! {
            h1 { "Plugin administration" }
            section.panel.narrow aria-labelledby="login-title" {
                h2 #login-title { "Sign in" }
                p.muted { "Paste the admin token. The server wrote it to " code { "<data_dir>/admin-token" } " when it first started." }
                @if let Some(e) = error { p.form-error role="alert" { (e) } }
                form method="post" action="/admin/login" {
                    label for="admin-token" { "Admin token" }
                    div.row {
                        input #admin-token type="password" name="token" required autocomplete="current-password";
                        button type="submit" { "Sign in" }
                    }
                }
            }
            (admin_links())
        },
    )
}

/// Links to the other administration pages (each checks its own
/// permission).
fn admin_links() -> Markup {
    html! {
        nav.links.admin-links aria-label="Administration" {
            a href="/admin" { "Plugins" }
            a href="/admin/tokens" { "API tokens" }
            a href="/admin/audit" { "Audit log" }
        }
    }
}

fn plugins_page(web: &Web, session: &SessionInfo, notice: &Notice, error: Option<&str>) -> Markup {
    let csrf = session.csrf.as_str();
    let plugins = web.app.plugins.list();
    let failures = web.app.plugins.failures();
    let installed = plugins.iter().find(|p| p.id == notice.installed);
    page(
        "Admin",
        Nav::Admin,
        "",
        &html! {
            div.entity-head {
                h1 { "Plugin administration" }
                form method="post" action="/admin/logout" { (csrf_input(csrf)) button.secondary type="submit" { "Sign out" } }
            }
            (admin_links())
            @if let Some(e) = error { div.alert role="alert" { h2 { "Not done" } p { (e) } } }
            @if let Some(p) = installed { p.notice role="status" { "Installed " strong { (p.name) " " (p.version) } ". It is serving now." } }
            @if !notice.removed.is_empty() && !plugins.iter().any(|p| p.id == notice.removed) { p.notice role="status" { "Removed " (notice.removed) "." } }
            @if let Some(p) = plugins.iter().find(|p| p.id == notice.licensed) { p.notice role="status" { "Licence installed for " (p.name) "." } }
            section.panel aria-labelledby="upload-title" {
                h2 #upload-title { "Install or update a plugin" }
                p.muted { "Upload a plugin file. A newer version of an installed plugin replaces it without dropping requests; an older one needs “allow downgrade”." }
                form.upload method="post" action="/admin/plugins" enctype="multipart/form-data" {
                    (csrf_input(csrf))
                    label for="upload-plugin" { "Plugin file (.wasm)" input #upload-plugin type="file" name="plugin" accept=".wasm,application/wasm" required; }
                    label for="upload-license" { "Licence file (premium plugins)" input #upload-license type="file" name="license"; }
                    label.check for="upload-force" { input #upload-force type="checkbox" name="force" value="1"; " Allow a downgrade or a change of signer (a refusal lists what would change)" }
                    button type="submit" { "Install" }
                }
            }
            section.panel aria-labelledby="installed-title" {
                h2 #installed-title { "Installed plugins (" (plugins.len()) ")" }
                @if plugins.is_empty() { p.muted { "None yet." } }
                @for p in &plugins { (plugin_card(p, csrf)) }
            }
            @if !failures.is_empty() {
                section.panel aria-labelledby="failures-title" {
                    h2 #failures-title { "Refused files (" (failures.len()) ")" }
                    table {
                        thead { tr { th scope="col" { "File" } th scope="col" { "Why" } th scope="col" { "When" } } }
                        tbody {
                            @for f in failures.iter().rev() {
                                tr { td { code { (f.file.display().to_string()) } } td { (f.error) } td { (ago(f.at)) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn plugin_card(p: &PluginInfo, csrf: &str) -> Markup {
    let signature = match &p.signature {
        SignatureState::Unsigned => ("Unsigned".to_owned(), "badge"),
        SignatureState::Trusted { vendor } => (
            format!("Signed by {vendor} (trusted)"),
            "badge life-production",
        ),
        SignatureState::Untrusted { vendor } => (
            format!("Signed by {vendor} (not in the trust store)"),
            "badge life-experimental",
        ),
    };
    let license = match &p.license_status {
        LicenseState::NotRequired => ("No licence needed".to_owned(), "badge"),
        LicenseState::Valid(terms) => (
            format!("Licensed to {} until {}", terms.customer, terms.expires),
            "badge life-production",
        ),
        LicenseState::Invalid { reason } => (
            format!("Licence problem: {reason}"),
            "badge life-deprecated",
        ),
    };
    let caps = |c: &crate::plugins::manifest::Capabilities| -> Vec<String> {
        let mut out = Vec::new();
        if c.kv {
            out.push("key-value storage".to_owned());
        }
        if c.catalog {
            out.push("catalog read".to_owned());
        }
        if c.search {
            out.push("search documents".to_owned());
        }
        if c.models {
            out.push("language model".to_owned());
        }
        if c.publish {
            out.push("publishes usage events".to_owned());
        }
        for h in &c.http_hosts {
            out.push(format!("HTTP to {h}"));
        }
        for e in &c.events {
            out.push(format!("{e} events"));
        }
        for dir in c.files.keys() {
            out.push(format!("read-only files at {dir}"));
        }
        out
    };
    let effective = caps(&p.effective);
    let denied: Vec<String> = caps(&p.requested)
        .into_iter()
        .filter(|c| !effective.contains(c))
        .collect();
    let id = format!("plugin-{}", p.id);
    html! {
        article.plugin #(id) aria-label=(p.name) {
            div.entity-head {
                div {
                    h3 { (p.name) " " span.badge { (p.version) } }
                    p.ref { (p.id) " · plugin API " (p.api_version.to_string()) @if let Some(v) = &p.vendor { " · vendor " (v) } }
                    @if let Some(d) = &p.description { p { (d) } }
                }
                div.actions {
                    form method="post" action=(format!("/admin/plugins/{}/remove", enc(&p.id))) {
                        (csrf_input(csrf))
                        label.check { input type="checkbox" name="purge" value="1"; " also delete its stored data" }
                        " "
                        button.danger type="submit" { "Remove" }
                    }
                }
            }
            dl.facts {
                dt { "Status" } dd { (p.status) }
                dt { "Signature" } dd { span class=(signature.1) { (signature.0) } }
                dt { "Licence" } dd { span class=(license.1) { (license.0) } }
                dt { "Granted" } dd { @if effective.is_empty() { span.muted { "nothing (pure computation)" } } @else { (effective.join(", ")) } }
                @if !denied.is_empty() { dt { "Requested, not granted" } dd { (denied.join(", ")) } }
                @if !p.views.is_empty() {
                    dt { "Views" }
                    dd {
                        ul.plain.compact {
                            @for v in &p.views { li { (view_slot(&p.id, v)) } }
                        }
                    }
                }
                @if let Some(secs) = p.tick_secs { dt { "Scheduled tick" } dd { "every " (secs) " s" } }
                @if let Some(e) = &p.events {
                    dt { "Events" }
                    dd.events {
                        (e.delivered) " delivered · "
                        span.problem[e.dropped > 0] { (e.dropped) " dropped" } " · "
                        span.problem[e.failed_batches > 0] { (e.failed_batches) " failed batches" }
                    }
                }
                dt { "File" } dd { code { (p.sha256.get(..16).unwrap_or(&p.sha256)) "…" } " · " (p.size / 1024) " KiB" }
                @if let Some(e) = &p.last_error { dt { "Last refused update" } dd.form-error { (e) } }
            }
            @if p.license.as_deref().is_some_and(|l| l.eq_ignore_ascii_case("commercial")) || matches!(p.license_status, LicenseState::Invalid { .. }) {
                form.upload method="post" action=(format!("/admin/plugins/{}/license", enc(&p.id))) enctype="multipart/form-data" {
                    (csrf_input(csrf))
                    label { "New licence file" input type="file" name="license" required; }
                    button.secondary type="submit" { "Install licence" }
                }
            }
        }
    }
}
