//! `/api/plugins/<plugin-id>/<rest>`: routed into the plugin's handler.

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Path, Request, State},
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::any,
};

use super::error::{ApiError, backstage_errors};
use crate::plugins::{CallError, PluginHost, PluginRequest};

/// The router mounted at `/api/plugins`.
pub fn router(host: PluginHost, max_request_body: usize) -> Router {
    Router::new()
        .route("/{id}", any(handle_root))
        .route("/{id}/", any(handle_root))
        .route("/{id}/{*rest}", any(handle))
        .layer(axum::middleware::from_fn(backstage_errors))
        .with_state(Shared {
            host,
            max_request_body,
        })
}

#[derive(Clone)]
struct Shared {
    host: PluginHost,
    max_request_body: usize,
}

async fn handle_root(
    state: State<Shared>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    forward(state, id, "/".to_owned(), request).await
}

async fn handle(
    state: State<Shared>,
    Path((id, rest)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    forward(state, id, format!("/{rest}"), request).await
}

async fn forward(
    State(shared): State<Shared>,
    id: String,
    path: String,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
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
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let request = PluginRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
    };
    let response = shared
        .host
        .handle(&id, request)
        .await
        .map_err(|e| to_api_error(&e))?;

    let served_by = HeaderValue::try_from(&*response.served_by).ok();
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value))
        else {
            continue;
        };
        // The server frames the body itself; a plugin must not contradict it.
        if is_framing(&name) {
            continue;
        }
        headers.append(name, value);
    }
    // Which plugin version answered: makes updates observable.
    if let Some(value) = served_by {
        out.headers_mut().insert("x-callboard-plugin", value);
    }
    Ok(out.into_response())
}

fn is_framing(name: &HeaderName) -> bool {
    use axum::http::header;
    [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::UPGRADE,
    ]
    .contains(name)
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
