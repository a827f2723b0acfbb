//! Usage events: one middleware around every route publishes what a request
//! was (page view, entity view, API call, search, plugin call) to the event
//! bus after the response is built. When no plugin subscribes to usage
//! events it does nothing but one lock-free check, and publishing itself
//! never waits (see [`crate::plugins::events`]).
//!
//! Who: a signed-in person's user ref (the request's
//! [`crate::identity::Identity`]), else the `x-forwarded-user` header an
//! authenticating proxy sets, taken only from a proxy listed in
//! `[proxy] trusted` ([`trusted_user`]), else a
//! pseudonymous visitor id kept in the `callboard_visitor` cookie, which
//! HTML pages set on first visit.

use std::{
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::Response,
};

use crate::plugins::{
    PluginHost,
    events::{Event, Stream},
};

/// Attached to a response by handlers that ran a search, so the search and
/// its result count are published.
#[derive(Debug, Clone)]
pub struct SearchNote {
    /// What was searched for.
    pub text: String,
    /// How many entities matched.
    pub results: u64,
}

const VISITOR_COOKIE: &str = "callboard_visitor";

fn visitor_of(request: &Request) -> Option<&str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VISITOR_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The user a trusted proxy names in `x-forwarded-user`: `None` unless the
/// connection comes from `[proxy] trusted` (anyone else could type the
/// header), and unless the name is one value of printable characters
/// within `max_user_bytes`. This is the only place the host derives who a
/// request is from.
pub fn trusted_user(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    proxy: &crate::config::ProxyConfig,
) -> Option<String> {
    if !peer.is_some_and(|p| proxy.trusts(p)) {
        return None;
    }
    let mut values = headers.get_all("x-forwarded-user").iter();
    let value = values.next()?;
    if values.next().is_some() {
        // Two answers to "who is this": neither is trusted.
        return None;
    }
    let user = value.to_str().ok()?.trim();
    (!user.is_empty()
        && user.len() <= proxy.max_user_bytes
        && user.bytes().all(|b| (0x20..0x7f).contains(&b)))
    .then(|| user.to_owned())
}

/// The address the connection came from, when the server records it.
fn peer_of(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn new_visitor_id() -> Option<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// What [`track`] needs: the event bus (through the plugin runtime) and
/// the proxies trusted to name the user.
#[derive(Clone)]
pub struct Tracking {
    /// The runtime whose bus usage events go to.
    pub plugins: PluginHost,
    /// `[proxy]`.
    pub proxy: std::sync::Arc<crate::config::ProxyConfig>,
}

/// The middleware: `axum::middleware::from_fn_with_state(tracking, track)`.
pub async fn track(State(tracking): State<Tracking>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let bus = tracking.plugins.events();
    // Without subscribers only HTML pages need anything (the visitor
    // cookie), and no request pays for copying its path or headers.
    let wants = bus.wants(Stream::Usage);
    let may_be_page = request.method() == Method::GET && !request.uri().path().starts_with("/api/");
    if !wants && !may_be_page {
        return next.run(request).await;
    }
    // A signed-in person is named by their user ref; otherwise a trusted
    // proxy may name them.
    let forwarded_user = request
        .extensions()
        .get::<crate::identity::Identity>()
        .and_then(|i| i.user_ref().map(str::to_owned))
        .or_else(|| trusted_user(request.headers(), peer_of(&request), &tracking.proxy));
    let visitor = visitor_of(&request).map(str::to_owned);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;

    let is_page = may_be_page
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
    let mut new_visitor = None;
    if is_page && visitor.is_none() && forwarded_user.is_none() {
        new_visitor = new_visitor_id();
        if let Some(id) = &new_visitor
            && let Ok(cookie) = HeaderValue::from_str(&format!(
                "{VISITOR_COOKIE}={id}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"
            ))
        {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    if !wants {
        return response;
    }
    let user = forwarded_user.or_else(|| visitor.or(new_visitor).map(|v| format!("visitor:{v}")));
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_millis();
    let mut events = Vec::with_capacity(2);
    if let Some(rest) = path.strip_prefix("/api/plugins/") {
        let (plugin, sub) = rest.split_once('/').unwrap_or((rest, ""));
        events.push(
            Event::now("plugin-call", user.clone(), plugin)
                .with("path", format!("/{sub}"))
                .with("method", &method)
                .with("status", status)
                .with("duration-ms", duration_ms),
        );
    } else if path.starts_with("/api/") {
        if let Some(entity) = entity_of_api(&path).filter(|_| status == 200) {
            events.push(Event::now("entity-view", user.clone(), entity).with("via", "api"));
        }
        events.push(
            Event::now("api-call", user.clone(), path.as_str())
                .with("method", &method)
                .with("status", status)
                .with("duration-ms", duration_ms),
        );
    } else if is_page {
        if let Some(entity) = entity_of_page(&path).filter(|_| status == 200) {
            events.push(Event::now("entity-view", user.clone(), entity).with("via", "page"));
        }
        events.push(
            Event::now("page-view", user.clone(), path.as_str())
                .with("status", status)
                .with("duration-ms", duration_ms),
        );
    }
    if let Some(search) = response.extensions().get::<SearchNote>() {
        events
            .push(Event::now("search", user, search.text.as_str()).with("results", search.results));
    }
    for event in events {
        bus.publish(Stream::Usage, event);
    }
    response
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .to_lowercase()
}

/// `/catalog/{namespace}/{kind}/{name}` → `kind:namespace/name`.
fn entity_of_page(path: &str) -> Option<String> {
    let mut parts = path.strip_prefix("/catalog/")?.split('/');
    let (ns, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !name.is_empty())
        .then(|| format!("{}:{}/{}", decode(kind), decode(ns), decode(name)))
}

/// `/api/catalog/entities/by-name/{kind}/{namespace}/{name}` → `kind:namespace/name`.
fn entity_of_api(path: &str) -> Option<String> {
    let mut parts = path
        .strip_prefix("/api/catalog/entities/by-name/")?
        .split('/');
    let (kind, ns, name) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !name.is_empty())
        .then(|| format!("{}:{}/{}", decode(kind), decode(ns), decode(name)))
}

/// Publishes the catalog's changes as catalog events until the catalog
/// closes its channel.
///
/// Takes a receiver rather than the catalog: the caller subscribes before it
/// starts the refresh loop, so the first ingestion's changes are never sent
/// to a channel nobody listens on yet (a broadcast drops those).
pub async fn forward_catalog_events(
    mut rx: tokio::sync::broadcast::Receiver<callboard_catalog::CatalogEvent>,
    plugins: PluginHost,
) {
    use callboard_catalog::CatalogEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = match rx.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("catalog events: {n} changes missed by the event bus");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let bus = plugins.events();
        if !bus.wants(Stream::Catalog) {
            continue;
        }
        let (kind, entity) = match change {
            CatalogEvent::Added(r) => ("entity-added", r),
            CatalogEvent::Changed(r) => ("entity-changed", r),
            CatalogEvent::Removed(r) => ("entity-removed", r),
        };
        bus.publish(Stream::Catalog, Event::now(kind, None, entity));
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use crate::config::{ProxyConfig, TrustedProxy};

    #[test]
    fn only_trusted_proxies_name_the_user() {
        let proxy = ProxyConfig {
            trusted: vec![
                TrustedProxy::try_from("10.1.0.0/16".to_owned()).unwrap(),
                TrustedProxy::try_from("127.0.0.1".to_owned()).unwrap(),
            ],
            max_user_bytes: 16,
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-user", HeaderValue::from_static("alice"));
        let user = |h: &HeaderMap, peer: &str| super::trusted_user(h, peer.parse().ok(), &proxy);
        assert_eq!(user(&headers, "10.1.2.3").as_deref(), Some("alice"));
        assert_eq!(user(&headers, "::ffff:127.0.0.1").as_deref(), Some("alice"));
        assert_eq!(user(&headers, "10.2.0.1"), None);
        assert_eq!(user(&headers, "not an address"), None);
        assert_eq!(
            super::trusted_user(&headers, "10.1.2.3".parse().ok(), &ProxyConfig::default()),
            None,
            "nobody is trusted by default"
        );
        headers.insert(
            "x-forwarded-user",
            HeaderValue::from_static("a-very-long-user-name"),
        );
        assert_eq!(user(&headers, "10.1.2.3"), None);
        headers.insert(
            "x-forwarded-user",
            HeaderValue::from_bytes(b"al\tice").unwrap(),
        );
        assert_eq!(user(&headers, "10.1.2.3"), None);
        headers.insert(
            "x-forwarded-user",
            HeaderValue::from_bytes("ålice".as_bytes()).unwrap(),
        );
        assert_eq!(user(&headers, "10.1.2.3"), None);
        headers.insert("x-forwarded-user", HeaderValue::from_static("alice"));
        headers.append("x-forwarded-user", HeaderValue::from_static("admin"));
        assert_eq!(user(&headers, "10.1.2.3"), None);
        assert!(TrustedProxy::try_from("10.0.0.0/33".to_owned()).is_err());
        assert!(TrustedProxy::try_from("proxy.example".to_owned()).is_err());
    }

    #[test]
    fn entity_paths() {
        assert_eq!(
            super::entity_of_page("/catalog/default/component/Payments-API").as_deref(),
            Some("component:default/payments-api")
        );
        assert_eq!(super::entity_of_page("/catalog"), None);
        assert_eq!(
            super::entity_of_api("/api/catalog/entities/by-name/component/default/x").as_deref(),
            Some("component:default/x")
        );
    }
}
