//! Every request: its id (the `x-request-id` response header), its span
//! (what logs and traces hang from), and its HTTP metrics.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use tracing::{Instrument as _, field::Empty};

/// The header that carries the request id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client or proxy.
const MAX_ID_BYTES: usize = 64;

/// Which id a request gets: the caller's `x-request-id` when it is short
/// and plain (a proxy's id ties its log to ours), else a new random one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_ID_BYTES
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

/// A method as a bounded label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware: runs the request inside its span, counts and times it,
/// and sets `x-request-id` on the response.
pub async fn track(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        request_id = %id,
        http.request.method = method,
        http.route = %route,
        http.response.status_code = Empty,
        user = Empty,
    );
    super::traces::adopt_parent(&span, request.headers());
    let header = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header {
        request
            .headers_mut()
            .insert(REQUEST_ID.clone(), value.clone());
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let took = started.elapsed().as_secs_f64();
    metrics::counter!(
        super::metrics::HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.as_str().to_owned(),
    )
    .increment(1);
    metrics::histogram!(super::metrics::HTTP_DURATION, "method" => method, "route" => route)
        .record(took);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: &str) -> Request {
        Request::builder()
            .header(&REQUEST_ID, id)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn a_plain_caller_id_is_kept_and_anything_else_replaced() {
        assert_eq!(request_id(&with_id("lb-1234.abc:9")), "lb-1234.abc:9");
        for hostile in ["", "a b", "x;y", "<script>", &"a".repeat(65)] {
            let id = request_id(&with_id(hostile));
            assert_ne!(id, hostile);
            assert_eq!(id.len(), 32, "a fresh id replaces {hostile:?}");
        }
    }
}
