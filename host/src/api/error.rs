//! Backstage's error body, shared by every API area:
//! `{"error":{"name","message"},"request":{"method","url"},"response":{"statusCode"}}`.
//!
//! Handlers return [`ApiError`]; the [`backstage_errors`] middleware, which knows
//! the request, turns it into the full body. Internal details are logged by
//! whoever creates the error and never sent.

use axum::{
    Json,
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error an API handler returns to its caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Backstage error name, e.g. `NotFoundError`, `InputError`, `ConflictError`.
    pub name: &'static str,
    /// Human-readable message; never contains internal details.
    pub message: String,
}

impl ApiError {
    /// Any status with a Backstage error name.
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name,
            message: message.into(),
        }
    }
    /// 400 `InputError`.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InputError", message)
    }
    /// 404 `NotFoundError`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }
    /// 409 `ConflictError`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ConflictError", message)
    }
    /// 401 `AuthenticationError`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthenticationError", message)
    }
    /// 500 `Error`; log the cause before calling this, the message is sent.
    /// 503: a dependency (the database) is out of reach for now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Error", message)
    }
}

/// Carried from [`ApiError::into_response`] to [`backstage_errors`].
#[derive(Clone)]
struct PendingError(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A body is written here too, so a router used without the middleware
        // still answers with a useful error.
        let mut response = (
            self.status,
            Json(json!({"error": {"name": self.name, "message": self.message}})),
        )
            .into_response();
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

/// Middleware that completes every [`ApiError`] with the request's method and
/// URL (as seen by the router it wraps, so relative to its mount point, the way
/// Backstage reports it).
pub async fn backstage_errors(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let url = request.uri().to_string();
    let mut response = next.run(request).await;
    if let Some(PendingError(error)) = response.extensions_mut().remove::<PendingError>() {
        return body(&error, &method, &url);
    }
    response
}

fn body(error: &ApiError, method: &str, url: &str) -> Response {
    let status = error.status;
    (
        status,
        Json(json!({
            "error": {"name": error.name, "message": error.message},
            "request": {"method": method, "url": url},
            "response": {"statusCode": status.as_u16()},
        })),
    )
        .into_response()
}
