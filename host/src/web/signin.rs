//! Signing in and out of the portal: `/sign-in` (the choices the operator
//! configured: the OpenID Connect provider, guest, the admin token),
//! `/auth/oidc/start` and `/auth/oidc/callback` (the provider's round trip,
//! see [`crate::identity::signin`]), `/auth/guest`, `/account` (who you
//! are, and the sign-out form) and `POST /sign-out`, which revokes the
//! session on every replica.
//!
//! [`gate`] sends anonymous visitors of any other page to `/sign-in` when
//! `auth.anonymous` is `"none"`.

use axum::{
    Extension, Form,
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Web,
    layout::{Nav, page},
};
use crate::identity::{
    Identity, Principal,
    config::Anonymous,
    signin::{FLOW_TTL, SignInError, safe_return},
};

/// The flow cookie over plain http.
const FLOW_COOKIE: &str = "callboard_signin";
/// The flow cookie behind https.
const HOST_FLOW_COOKIE: &str = "__Host-callboard_signin";

/// The sign-in routes, merged into the portal's router.
pub(super) fn routes(web: &Web) -> axum::Router<Web> {
    let small =
        axum::extract::DefaultBodyLimit::max(web.app.config.server.max_unauthenticated_body);
    axum::Router::new()
        .route("/sign-in", get(sign_in_page))
        .route("/auth/oidc/start", get(oidc_start))
        .route("/auth/oidc/callback", get(oidc_callback))
        .route("/auth/guest", post(guest).layer(small))
        .route("/account", get(account))
        .route("/sign-out", post(sign_out).layer(small))
        .layer(axum::middleware::from_fn(super::admin::same_origin))
}

/// The session of a request whose identity the policy allows
/// `permission` (a basic permission, e.g. `callboard.policy.manage`): what
/// the admin pages need to show a form (its CSRF token) and to accept one.
pub(super) fn session_with(
    web: &Web,
    identity: Option<&Identity>,
    permission: &str,
) -> Option<crate::auth::SessionInfo> {
    let identity = identity?;
    let session = identity.session.clone()?;
    web.app
        .access
        .allows(identity, permission)
        .then_some(session)
}

/// Paths an anonymous visitor may see however `auth.anonymous` is set.
fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/sign-in" | "/account" | "/sign-out" | "/admin" | "/admin/login"
    ) || path.starts_with("/auth/")
        || path.starts_with("/static/")
}

/// Middleware on the pages: with `auth.anonymous = "none"`, an anonymous
/// visitor is sent to `/sign-in` (and back here after signing in).
pub(super) async fn gate(State(web): State<Web>, request: Request, next: Next) -> Response {
    let anonymous = request
        .extensions()
        .get::<Identity>()
        .is_none_or(Identity::is_anonymous);
    if anonymous
        && web.app.config.auth.anonymous == Anonymous::None
        && !open_path(request.uri().path())
    {
        let back = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return Redirect::to(&format!("/sign-in?return={}", enc(safe_return(&back))))
            .into_response();
    }
    next.run(request).await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Back {
    #[serde(rename = "return")]
    return_to: String,
}

async fn sign_in_page(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Query(back): Query<Back>,
) -> Response {
    if identity.as_deref().is_some_and(|i| !i.is_anonymous()) {
        return Redirect::to(safe_return(&back.return_to)).into_response();
    }
    Html(sign_in_markup(&web, safe_return(&back.return_to), None).into_string()).into_response()
}

fn sign_in_markup(web: &Web, return_to: &str, error: Option<&str>) -> Markup {
    let auth = &web.app.config.auth;
    page(
        "Sign in",
        Nav::None,
        "",
        &html! {
            h1 { "Sign in to Callboard" }
            section.panel.narrow aria-labelledby="signin-title" {
                h2 #signin-title { "Choose how to sign in" }
                @if let Some(e) = error { p.form-error role="alert" { (e) } }
                @if let Some(oidc) = &web.app.oidc {
                    p { a.button href=(format!("/auth/oidc/start?return={}", enc(return_to))) { (oidc.label()) } }
                }
                @if auth.guest.enabled {
                    form method="post" action="/auth/guest" {
                        input type="hidden" name="return" value=(return_to);
                        button type="submit" { "Continue as guest" }
                        p.muted { "You will be " code { (auth.guest.user) } ", for the demo and local development." }
                    }
                }
                @if web.app.oidc.is_none() && !auth.guest.enabled {
                    p.muted { "No sign-in provider is configured. Operators: see README.md, \"Sign-in\"." }
                }
                p.muted { "Administrators can also " a href="/admin" { "sign in with the admin token" } "." }
            }
        },
    )
}

/// An error page for a failed sign-in, with the sign-in choices again.
fn failed(web: &Web, status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(sign_in_markup(web, "/", Some(message)).into_string()),
    )
        .into_response()
}

/// The flow cookie's name for this server.
fn flow_cookie_name(web: &Web) -> &'static str {
    if web.app.config.server.is_https() {
        HOST_FLOW_COOKIE
    } else {
        FLOW_COOKIE
    }
}

fn flow_cookie(web: &Web, value: &str, max_age: u64) -> Option<HeaderValue> {
    let https = web.app.config.server.is_https();
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        flow_cookie_name(web),
        if https { "; Secure" } else { "" }
    ))
    .ok()
}

/// The portal's own base URL for the provider's redirect: `public_url`, or
/// the (allow-listed) `Host` the browser used.
fn base_url(web: &Web, headers: &HeaderMap) -> String {
    if let Some(public) = &web.app.config.server.public_url {
        return public.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if web.app.config.server.is_https() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

async fn oidc_start(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(back): Query<Back>,
) -> Response {
    let Some(oidc) = web.app.oidc.clone() else {
        return failed(
            &web,
            StatusCode::NOT_FOUND,
            "No OpenID Connect provider is configured.",
        );
    };
    let redirect = format!("{}/auth/oidc/callback", base_url(&web, &headers));
    match oidc.start(&redirect, safe_return(&back.return_to)).await {
        Ok((url, pending)) => {
            let mut response = Redirect::to(&url).into_response();
            if let Some(cookie) =
                flow_cookie(&web, &web.app.flow.seal(&pending), FLOW_TTL.as_secs())
            {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            tracing::error!("sign-in: {e}");
            failed(&web, StatusCode::BAD_GATEWAY, &e.to_string())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Callback {
    code: String,
    state: String,
    error: String,
    error_description: String,
}

async fn oidc_callback(
    State(web): State<Web>,
    headers: HeaderMap,
    identity: Option<Extension<Identity>>,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(oidc) = web.app.oidc.clone() else {
        return failed(
            &web,
            StatusCode::NOT_FOUND,
            "No OpenID Connect provider is configured.",
        );
    };
    let result = async {
        if !callback.error.is_empty() {
            let mut text: String = format!("{} {}", callback.error, callback.error_description)
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            text = text.trim().to_owned();
            return Err(SignInError::Refused(text));
        }
        let name = flow_cookie_name(&web);
        let value = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().to_owned())
            .ok_or(SignInError::Flow("the sign-in cookie is missing"))?;
        let pending = web.app.flow.open(&value)?;
        let claims = oidc
            .finish(&pending, &callback.state, &callback.code)
            .await?;
        let user = oidc.resolve(&web.app.catalog, &claims).await?;
        tracing::info!(user, who = %claims.display(), "sign-in: signed in with OpenID Connect");
        Ok((user, pending.return_to().to_owned()))
    }
    .await;
    let mut response = match result {
        Ok((user, return_to)) => start_session(&web, identity.as_deref(), &user, &return_to).await,
        Err(e) => {
            tracing::warn!("sign-in refused: {e}");
            let status = match e {
                SignInError::Provider { .. } => StatusCode::BAD_GATEWAY,
                SignInError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::FORBIDDEN,
            };
            failed(&web, status, &e.to_string())
        }
    };
    // The flow is over either way: its cookie goes.
    if let Some(cookie) = flow_cookie(&web, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Starts `user`'s session (a new id: a session planted before is
/// revoked) and sends them to `return_to`.
async fn start_session(web: &Web, old: Option<&Identity>, user: &str, return_to: &str) -> Response {
    if let Some(old) = old.and_then(|i| i.session.as_ref()) {
        web.app.sessions.revoke(&old.id).await;
    }
    let session = match web.app.sessions.create(user).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("sign-in: {e}");
            return failed(
                web,
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot start a session now; try again shortly.",
            );
        }
    };
    let mut response = Redirect::to(safe_return(return_to)).into_response();
    let max_age = web.app.sessions.max_age().as_secs();
    if let Some(value) = web.app.identities.session_cookie(&session.id, max_age) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn guest(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Form(back): Form<Back>,
) -> Response {
    let guest = &web.app.config.auth.guest;
    if !guest.enabled {
        return failed(
            &web,
            StatusCode::FORBIDDEN,
            "Guest sign-in is switched off.",
        );
    }
    let user = guest.user.to_ascii_lowercase();
    tracing::info!(user, "sign-in: signed in as guest");
    start_session(&web, identity.as_deref(), &user, &back.return_to).await
}

async fn account(State(web): State<Web>, identity: Option<Extension<Identity>>) -> Response {
    let identity = identity
        .map(|Extension(i)| i)
        .unwrap_or_else(Identity::anonymous);
    let who = match &identity.principal {
        Principal::Anonymous => None,
        Principal::Admin => Some("the administrator (admin token)".to_owned()),
        Principal::User(r) => Some(r.clone()),
        Principal::Token { name, .. } => Some(format!("token {name}")),
    };
    let body = html! {
        h1 { "Your account" }
        section.panel.narrow {
            @match &who {
                None => { p { "You are not signed in. " a href="/sign-in" { "Sign in" } } },
                Some(who) => {
                    p { "Signed in as " strong.who { (who) } }
                    @if identity.ownership.len() > 1 {
                        p { "You own through: " }
                        ul.ownership { @for r in identity.ownership.iter() { li { code { (r) } } } }
                    }
                    @if let Some(session) = &identity.session {
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                },
            }
        }
    };
    let _ = &web;
    Html(page("Account", Nav::Account, "", &body).into_string()).into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(web): State<Web>,
    identity: Option<Extension<Identity>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = identity.and_then(|Extension(i)| i.session) else {
        return Redirect::to("/sign-in").into_response();
    };
    if !session.csrf_matches(&form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            Html(
                super::layout::error_page(
                    "Forbidden",
                    "This form is stale or was not sent by this portal. Reload the page and try again.",
                )
                .into_string(),
            ),
        )
            .into_response();
    }
    web.app.sessions.revoke(&session.id).await;
    tracing::info!(subject = session.subject, "signed out");
    let mut response = Redirect::to("/sign-in").into_response();
    if let Some(value) = web.app.identities.session_cookie("", 0) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
