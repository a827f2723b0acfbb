//! `/api/plugins/<plugin-id>/<rest>`: routed into the plugin's handler.
//!
//! The path is normalised once ([`path::normalise`]) and that one path is
//! both what licence entitlements are checked against and what the plugin
//! gets. Headers cross through allow-lists both ways ([`headers`]), every
//! response carries the sandbox headers, and only statuses 200-599 reach
//! the client.

pub mod headers;
pub mod path;

use std::net::SocketAddr;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::any,
};

use super::error::{ApiError, backstage_errors};
use crate::plugins::{CallError, PluginHost, PluginRequest};

/// The router mounted at `/api/plugins`.
pub fn router(state: PluginRoutes) -> Router {
    Router::new()
        .route("/{id}", any(forward))
        .route("/{id}/", any(forward))
        .route("/{id}/{*rest}", any(forward))
        .layer(axum::middleware::from_fn(backstage_errors))
        // Outermost, so error bodies get the sandbox headers too.
        .layer(axum::middleware::from_fn(sandbox))
        .with_state(Shared::new(state))
}

/// Behind one `Arc`: axum clones the state for every request.
type Shared = std::sync::Arc<PluginRoutes>;

/// What the plugin routes need (the root projects it from its state).
pub struct PluginRoutes {
    /// The runtime the requests go to.
    pub host: PluginHost,
    /// The published policy (plugin-declared route guards).
    pub access: std::sync::Arc<crate::identity::access::Access>,
    /// Who each call runs for.
    pub callers: crate::identity::callers::Callers,
    /// What an anonymous visitor may do.
    pub anonymous: crate::identity::config::Anonymous,
    /// The largest body any plugin accepts (each plugin's own cap applies
    /// again inside the runtime).
    pub max_request_body: usize,
    /// Caps on the headers of a plugin's response.
    pub response_headers: headers::Caps,
    /// The reverse proxies trusted to name the user.
    pub proxy: std::sync::Arc<crate::config::ProxyConfig>,
}

async fn sandbox(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let out = response.headers_mut();
    for (name, value) in headers::SECURITY {
        out.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Whether the request changes something (not GET, HEAD or OPTIONS), came
/// with a session (a cookie, not a bearer token), and names an `Origin`
/// other than the host it was sent to.
fn cross_site_with_cookie(parts: &axum::http::request::Parts) -> bool {
    use axum::http::{Method, header};
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let by_cookie = parts
        .extensions
        .get::<crate::identity::Identity>()
        .is_some_and(|i| i.session.is_some())
        && !parts.headers.contains_key(header::AUTHORIZATION);
    if !by_cookie {
        return false;
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    match (origin, host) {
        // `null` (a sandboxed frame, a redirect chain): not the portal.
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split("://").nth(1).unwrap_or(origin) != host,
        // No Origin: not a browser's cross-site request (browsers send it
        // on every cross-site POST).
        _ => false,
    }
}

/// The plugin id and the rest of the path, both as sent (still
/// percent-encoded), from the URI this router sees: `/<id>/<rest>`.
fn split_path(uri_path: &str) -> (&str, &str) {
    let below = uri_path.strip_prefix('/').unwrap_or(uri_path);
    match below.find('/') {
        Some(i) => (&below[..i], &below[i..]),
        None => (below, ""),
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // Plugin routes are for people and tokens, unless the operator lets
    // anonymous callers in (`auth.anonymous = "read"`); refused before the
    // body is read.
    if shared.anonymous == crate::identity::config::Anonymous::None
        && parts
            .extensions
            .get::<crate::identity::Identity>()
            .is_none_or(crate::identity::Identity::is_anonymous)
    {
        return Err(ApiError::unauthenticated(
            "plugin routes need a signed-in user or `Authorization: Bearer <token>`",
        ));
    }
    // A person's browser sends their session cookie along with whatever a
    // page of another site makes it post: a cookie-authenticated call that
    // changes something must come from the portal's own origin (bearer
    // tokens are never sent by a browser on its own).
    if cross_site_with_cookie(&parts) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "NotAllowedError",
            "a plugin call with a session cookie from another site is refused",
        ));
    }
    let (raw_id, raw_path) = split_path(parts.uri.path());
    let id = percent_encoding::percent_decode_str(raw_id)
        .decode_utf8_lossy()
        .into_owned();
    let path = path::normalise(raw_path).map_err(|e| ApiError::input(e.to_string()))?;
    // The permissions the plugin declares for this route, before its body
    // is read.
    let identity = parts
        .extensions
        .get::<crate::identity::Identity>()
        .cloned()
        .unwrap_or_else(crate::identity::Identity::anonymous);
    for permission in shared.host.permissions_guarding(&id, &path) {
        if !shared.access.allows(&identity, &permission) {
            return Err(crate::api::auth::refuse(&identity, &permission));
        }
    }
    let body = to_bytes(body, shared.max_request_body).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            format!(
                "request body is over the limit of {} bytes",
                shared.max_request_body
            ),
        )
    })?;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // The person is named to the plugin (never their credentials): a
    // signed-in user's ref, else what a trusted proxy says.
    let user = identity
        .user_ref()
        .map(str::to_owned)
        .or_else(|| crate::usage::trusted_user(&parts.headers, peer, &shared.proxy));
    let request = PluginRequest {
        caller: shared.callers.of(&identity),
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: headers::forwarded(&parts.headers, user.as_deref()),
        body: body.to_vec(),
    };
    let response = shared
        .host
        .handle(&id, request)
        .await
        .map_err(|e| to_api_error(&e))?;

    let bad = |reason: String| {
        let message = format!(
            "plugin {} returned an invalid response: {reason}",
            response.served_by
        );
        tracing::warn!("{message}");
        ApiError::new(StatusCode::BAD_GATEWAY, "PluginResponseError", message)
    };
    // 1xx would switch or stall the connection; only final statuses pass.
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| {
            bad(format!(
                "status {} is not allowed (only 200-599)",
                response.status
            ))
        })?;
    let caps = shared.response_headers;
    let filtered =
        headers::filter_response(&response.served_by, response.headers, caps).map_err(bad)?;
    let served_by = HeaderValue::try_from(&*response.served_by).ok();
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = status;
    *out.headers_mut() = filtered;
    // Which plugin version answered: makes updates observable.
    if let Some(value) = served_by {
        out.headers_mut().insert("x-callboard-plugin", value);
    }
    Ok(out.into_response())
}

fn to_api_error(error: &CallError) -> ApiError {
    let message = error.to_string();
    match error {
        CallError::NotFound(_) => ApiError::not_found(message),
        CallError::RequestTooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            message,
        ),
        CallError::Timeout { .. } => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "PluginTimeoutError", message)
        }
        CallError::MemoryLimit { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PluginMemoryLimitError",
            message,
        ),
        CallError::Trap { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "PluginError", message)
        }
        CallError::BadResponse { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "PluginResponseError", message)
        }
        CallError::Unlicensed { .. } | CallError::NotEntitled { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "NotAllowedError", message)
        }
        CallError::Busy { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            message,
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_and_paths_split_as_sent() {
        assert_eq!(super::split_path("/insights"), ("insights", ""));
        assert_eq!(super::split_path("/insights/"), ("insights", "/"));
        assert_eq!(
            super::split_path("/insights/%2Fexport.csv"),
            ("insights", "/%2Fexport.csv")
        );
        assert_eq!(super::split_path("/insights//x"), ("insights", "//x"));
    }
}
