//! What crosses between the client and a plugin in headers, both ways.
//!
//! Plugin responses are served on the portal's origin, so a plugin's
//! headers could otherwise set the portal's cookies, loosen its CORS or
//! CSP, clear the browser's site data, redirect or reload the portal, or
//! forge the host's own `x-callboard-*` headers. Only the headers in
//! [`RESPONSE_ALLOWED`] pass (within count and byte caps), and every
//! response then gets [`SECURITY`]: a sandbox CSP (no script, no plugins,
//! no same-origin access even for `text/html`), `nosniff` and a same-origin
//! resource policy.
//!
//! Requests pass on only [`REQUEST_ALLOWED`]: a plugin never sees the
//! client's cookies or `Authorization`, and learns who the user is from the
//! host (`x-callboard-user`, set only when a trusted proxy named the user).

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Request headers a plugin receives, as the client sent them: content
/// negotiation, conditional requests, the body's type and size, and
/// tracing. Never credentials (`cookie`, `authorization`), never proxy
/// headers (`x-forwarded-*`), never `origin`/`referer`.
pub const REQUEST_ALLOWED: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-length",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
    "user-agent",
    "x-request-id",
];

/// The request header through which the host tells a plugin who the user
/// is (only when a trusted proxy said so).
pub const USER_HEADER: &str = "x-callboard-user";

/// Response headers a plugin may set: the body's description, caching and
/// validators, and `location` (site-relative only, so the portal is no
/// open redirect).
pub const RESPONSE_ALLOWED: &[&str] = &[
    "accept-ranges",
    "age",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-range",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "location",
    "retry-after",
    "vary",
];

/// Set on every response under `/api/plugins` (name, value), replacing
/// whatever the plugin said.
pub const SECURITY: &[(&str, &str)] = &[
    ("content-security-policy", "sandbox; default-src 'none'"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-resource-policy", "same-origin"),
    ("referrer-policy", "same-origin"),
];

/// The client's request headers a plugin may see (see [`REQUEST_ALLOWED`]),
/// plus the user the host vouches for.
pub fn forwarded(headers: &HeaderMap, user: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| REQUEST_ALLOWED.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if let Some(user) = user {
        out.push((USER_HEADER.to_owned(), user.to_owned()));
    }
    out
}

/// The caps on a plugin response's headers.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Most headers, counted before any is dropped.
    pub count: usize,
    /// Most bytes of names and values together.
    pub bytes: usize,
}

/// A plugin's response headers filtered through [`RESPONSE_ALLOWED`];
/// `Err` says how the plugin went over a cap (the caller answers 502
/// naming the plugin).
pub fn filter_response(
    plugin: &str,
    headers: Vec<(String, String)>,
    caps: Caps,
) -> Result<HeaderMap, String> {
    if headers.len() > caps.count {
        return Err(format!(
            "{} response headers are over the limit of {}",
            headers.len(),
            caps.count
        ));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > caps.bytes {
        return Err(format!(
            "{bytes} bytes of response headers are over the limit of {} bytes",
            caps.bytes
        ));
    }
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            tracing::debug!(plugin, "dropped a response header with an invalid name");
            continue;
        };
        if !RESPONSE_ALLOWED.contains(&name.as_str()) {
            tracing::debug!(plugin, header = %name, "dropped a response header that is not allowed");
            continue;
        }
        if name == header::LOCATION && !is_site_relative(&value) {
            tracing::debug!(plugin, "dropped a location that is not site-relative");
            continue;
        }
        let Ok(value) = HeaderValue::try_from(value) else {
            tracing::debug!(plugin, header = %name, "dropped a response header with an invalid value");
            continue;
        };
        out.append(name, value);
    }
    Ok(out)
}

/// `/path` on this site, which no browser reads as another host.
fn is_site_relative(href: &str) -> bool {
    crate::views::safe_href(href).is_some_and(|h| h.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        count: 64,
        bytes: 16 << 10,
    };

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_allowed_response_headers_pass() {
        let out = filter_response(
            "p",
            pairs(&[
                ("content-type", "text/csv"),
                ("set-cookie", "a=b"),
                ("content-security-policy", "default-src *"),
                ("access-control-allow-origin", "*"),
                ("x-callboard-plugin", "hello@9"),
                ("clear-site-data", "\"*\""),
                ("refresh", "0"),
                ("location", "https://evil.example/"),
                ("etag", "\"1\""),
            ]),
            CAPS,
        )
        .unwrap();
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "etag"]);
        let out = filter_response("p", pairs(&[("location", "/plugins/p/x")]), CAPS).unwrap();
        assert_eq!(out["location"], "/plugins/p/x");
        let out = filter_response("p", pairs(&[("location", "/\t/evil.example")]), CAPS).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn caps_count_every_header_sent() {
        let many: Vec<(String, String)> = (0..65).map(|i| (format!("x-{i}"), "v".into())).collect();
        assert!(
            filter_response("p", many, CAPS)
                .unwrap_err()
                .contains("65 response headers")
        );
        let big = vec![("x-big".to_owned(), "a".repeat(16 << 10))];
        assert!(
            filter_response("p", big, CAPS)
                .unwrap_err()
                .contains("bytes of response headers")
        );
    }

    #[test]
    fn credentials_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("session=s"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.insert("x-forwarded-user", HeaderValue::from_static("admin"));
        headers.insert("x-callboard-user", HeaderValue::from_static("admin"));
        headers.insert("accept", HeaderValue::from_static("text/csv"));
        let out = forwarded(&headers, Some("alice"));
        assert_eq!(
            out,
            pairs(&[("accept", "text/csv"), ("x-callboard-user", "alice")])
        );
    }
}
