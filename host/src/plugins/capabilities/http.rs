//! `callboard:plugin/http` (API 0.3+): outbound HTTP(S) to the hosts the
//! operator granted the plugin.
//!
//! Every hop (the request and each redirect, followed by hand) is checked
//! before anything is sent: the URL's host and port against the grants
//! ([`grant`]), then every address the name resolves to (internal
//! addresses need an explicit address grant; the portal's own address is
//! never reachable), and the connection goes to exactly those addresses: the
//! client for a name is pinned to them and has no resolver of its own, and no
//! proxy. Headers the host owns (`Host`, hop-by-hop) are dropped, and
//! credentials are not carried to another origin by a redirect. The response
//! is read in chunks so the size cap holds without buffering more.
//!
//! The operator's credentials for a granted host ([`credentials`]) are
//! added at the hop that goes to that host and nowhere else; the plugin
//! never sees them. `send-all` (API 0.4) runs requests concurrently.
//!
//! Tests may put a [`Transport`] in place of the network (a test seam:
//! [`transport`]); the checks and bounds above apply to it all the same.

pub mod credentials;
pub mod grant;
pub mod transport;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use reqwest::{Method, redirect::Policy};

pub use self::transport::Transport;
use self::{
    credentials::Bound,
    grant::{HostGrant, UrlHost},
};
use crate::plugins::state::Grants;

/// An outbound request, as every API version's `http.request` carries it.
#[derive(Debug, Clone)]
pub struct OutRequest {
    /// Upper-case method.
    pub method: String,
    /// Absolute http(s) URL.
    pub url: String,
    /// Headers as the plugin set them.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The plugin's own timeout, capped by the host's.
    pub timeout_ms: Option<u32>,
}

/// An outbound response.
#[derive(Debug, Clone)]
pub struct OutResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes (within the operator's cap).
    pub body: Vec<u8>,
}

/// Why no response arrived (every API version's `http.error`).
#[derive(Debug, Clone)]
pub enum OutError {
    /// Not a granted host; carries the host.
    Denied(String),
    /// Malformed or not http(s).
    InvalidUrl(String),
    /// No complete response in time.
    Timeout,
    /// Over the response cap; carries it.
    TooLarge(u64),
    /// Connecting or talking failed.
    Connection(String),
}

/// Most requests one `send-all` takes.
pub const MAX_BATCH: usize = 32;

/// The bodies of one `send-all`'s responses together may be this many
/// times the per-response cap (`http_max_response_bytes`); past it, the
/// responses still arriving answer `too-large` with the batch's total.
/// Without it, 32 responses at the cap would make the host hold 32 times
/// the cap for one call, more than the instance could take in.
pub const BATCH_BYTES_FACTOR: u64 = 4;

/// What the responses of one `send-all` may still bring back, shared by its
/// requests.
#[derive(Clone)]
struct BatchBytes {
    left: Arc<std::sync::atomic::AtomicU64>,
    total: u64,
}

impl BatchBytes {
    fn new(total: u64) -> Self {
        Self {
            left: Arc::new(std::sync::atomic::AtomicU64::new(total)),
            total,
        }
    }

    /// Charges `bytes`, or refuses them if the batch has not that many left.
    fn take(&self, bytes: u64) -> Result<(), OutError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.left
            .fetch_update(Relaxed, Relaxed, |left| left.checked_sub(bytes))
            .map(|_| ())
            .map_err(|_| OutError::TooLarge(self.total))
    }
}

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// Pinned clients kept for reuse (their connection pools); past this many
/// the cache starts over.
const MAX_PINNED: usize = 64;

/// Request headers a plugin may not set: the host derives them from the
/// URL and body, or they are hop-by-hop and would let a plugin steer the
/// connection (`Host` would pick another virtual host than the one checked).
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Credentials a redirect to another origin does not carry.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// A host name (or address literal), the checked addresses a client is
/// pinned to, and the credential binding whose TLS settings it carries.
type PinKey = (String, Vec<SocketAddr>, Option<usize>);

/// The outbound client every plugin shares, with the operator's limits.
#[derive(Clone)]
pub struct HttpClient {
    /// For address literals: never resolves a name.
    direct: reqwest::Client,
    /// Clients pinned to checked addresses, by (host, addresses).
    pinned: Arc<Mutex<HashMap<PinKey, reqwest::Client>>>,
    /// The portal's own address, once it listens: never a plugin's target.
    own: Arc<OnceLock<SocketAddr>>,
    /// The host and port of `server.public_url`: the portal as users reach
    /// it (through a proxy that maps it back here), never a plugin's target.
    public: Arc<OnceLock<(String, u16)>>,
    /// Test seam: where requests go instead of the network (never set in
    /// production).
    transport: Arc<OnceLock<Arc<dyn Transport>>>,
    timeout: Duration,
    max_body: u64,
}

impl HttpClient {
    /// A client with the operator's timeout cap and response size cap.
    pub fn new(timeout: Duration, max_body: u64) -> Self {
        Self {
            direct: builder().build().unwrap_or_default(),
            pinned: Arc::default(),
            own: Arc::default(),
            public: Arc::default(),
            transport: Arc::default(),
            timeout,
            max_body,
        }
    }

    /// Records the address the portal listens on, so plugins cannot call it
    /// (a plugin calling its own routes would hold an instance per hop).
    pub fn set_own_address(&self, addr: SocketAddr) {
        let _ = self.own.set(addr);
    }

    /// Records `server.public_url`, so plugins cannot call the portal through
    /// the name users reach it by either. An unparsable URL is ignored here:
    /// the server's own checks report it.
    pub fn set_public_url(&self, url: &str) {
        if let Ok(url) = reqwest::Url::parse(url)
            && let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default())
        {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let _ = self.public.set((host.to_ascii_lowercase(), port));
        }
    }

    /// **Test seam**: sends every request to `transport` instead of the
    /// network, with the same checks and bounds (see [`transport`]). Once:
    /// `false` if a transport was set already (it stays).
    pub fn set_transport(&self, transport: Arc<dyn Transport>) -> bool {
        self.transport.set(transport).is_ok()
    }

    /// The test transport, if one is set.
    fn transport(&self) -> Option<&Arc<dyn Transport>> {
        self.transport.get()
    }

    /// Whether `host:port` names the portal's public URL.
    fn is_public(&self, host: &str, port: u16) -> bool {
        self.public
            .get()
            .is_some_and(|(h, p)| *p == port && h.eq_ignore_ascii_case(host.trim_end_matches('.')))
    }

    /// The client for `target`: connects to its checked addresses only,
    /// with the TLS settings of the operator's binding for that host.
    fn client_for(
        &self,
        target: &Target,
        bound: Option<&Bound>,
    ) -> Result<reqwest::Client, OutError> {
        let tls = bound.filter(|b| b.has_tls());
        let (name, tls) = match (&target.name, tls) {
            (None, None) => return Ok(self.direct.clone()),
            (Some(name), tls) => (name.clone(), tls),
            (None, Some(tls)) => (String::new(), Some(tls)),
        };
        let key = (name.clone(), target.addrs.clone(), tls.map(|b| b.id));
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = pinned.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = builder();
        if !name.is_empty() {
            builder = builder.resolve_to_addrs(&name, &target.addrs);
        }
        if let Some(tls) = tls {
            builder = tls.apply(builder);
        }
        let client = builder
            .build()
            .map_err(|e| OutError::Connection(format!("cannot build a client: {e}")))?;
        if pinned.len() >= MAX_PINNED {
            pinned.clear();
        }
        pinned.insert(key, client.clone());
        Ok(client)
    }

    /// Whether `addr` is the portal itself.
    fn is_own(&self, addr: SocketAddr) -> bool {
        let Some(own) = self.own.get() else {
            return false;
        };
        if addr.port() != own.port() {
            return false;
        }
        let ip = grant::canonical(addr.ip());
        let own_ip = grant::canonical(own.ip());
        if ip == own_ip || ip.is_unspecified() {
            return true;
        }
        // Listening on every interface: any address of this machine is the
        // portal. An address is local if a socket can bind to it.
        own_ip.is_unspecified() && (ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok())
    }
}

/// Shared settings: no redirects (followed by hand), no proxy (it would
/// resolve names itself), no resolver (names are pinned to checked addresses).
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(NoResolver))
        .user_agent(concat!("callboard/", env!("CARGO_PKG_VERSION")))
}

/// Refuses every lookup: a client only reaches addresses it was pinned to.
struct NoResolver;

impl reqwest::dns::Resolve for NoResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let message = format!("{} was not resolved through the grant check", name.as_str());
        Box::pin(async move { Err(message.into()) })
    }
}

/// One checked hop.
struct Target {
    url: reqwest::Url,
    /// The host name, or `None` for an address literal.
    name: Option<String>,
    /// Where to connect: every address checked.
    addrs: Vec<SocketAddr>,
}

/// Checks `url` against `grants` and resolves it; `Err` says why not.
async fn check(url: &str, grants: &[HostGrant], http: &HttpClient) -> Result<Target, OutError> {
    let url = reqwest::Url::parse(url).map_err(|e| OutError::InvalidUrl(format!("{url}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutError::InvalidUrl(format!(
            "{url}: only http and https are allowed"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| OutError::InvalidUrl(format!("{url}: no host")))?;
    // `Url` keeps IPv6 literals in brackets; grants name them without.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| OutError::InvalidUrl(format!("{url}: no port")))?;
    let literal = bare.parse::<IpAddr>().ok();
    let url_host = match literal {
        Some(ip) => UrlHost::Ip(grant::canonical(ip)),
        None => UrlHost::Name(&bare),
    };
    if !grants.iter().any(|g| g.allows_url(&url_host, port)) {
        return Err(OutError::Denied(bare));
    }
    if http.is_public(&bare, port) {
        tracing::warn!(%url, "outbound request to the portal's public URL refused");
        return Err(OutError::Denied(format!(
            "{bare}: the portal itself is never reachable from a plugin"
        )));
    }
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        // A test transport answers for the name itself: nothing to resolve
        // or connect to (the grant above was checked all the same).
        None if http.transport().is_some() => Vec::new(),
        None => tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|e| OutError::Connection(format!("cannot resolve {bare}: {e}")))?
            .collect(),
    };
    if addrs.is_empty() && (literal.is_some() || http.transport().is_none()) {
        return Err(OutError::Connection(format!("{bare} has no address")));
    }
    // Every address, not the first: the connection may use any of them.
    for addr in &addrs {
        let ip = grant::canonical(addr.ip());
        if http.is_own(*addr) {
            tracing::warn!(%url, %addr, "outbound request to the portal itself refused");
            return Err(OutError::Denied(format!(
                "{bare}: the portal itself is never reachable from a plugin"
            )));
        }
        if let Some(kind) = grant::internal_kind(ip)
            && !grants.iter().any(|g| g.allows_addr(ip, port))
        {
            tracing::warn!(%url, %addr, "outbound request to a {kind} address refused: no address grant");
            return Err(OutError::Denied(format!(
                "{bare}: resolves to a {kind} address, which needs an address grant"
            )));
        }
    }
    Ok(Target {
        name: literal.is_none().then_some(bare),
        url,
        addrs,
    })
}

/// `scheme://host:port`, to tell when a redirect leaves the origin.
fn origin(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

/// Sends `request` if it (and every redirect) passes the checks.
async fn send_checked(
    grants: Arc<Grants>,
    request: OutRequest,
    batch: Option<BatchBytes>,
) -> Result<OutResponse, OutError> {
    let http = &grants.http;
    let allowed: Vec<HostGrant> = grants
        .capabilities
        .http_hosts
        .iter()
        .filter_map(|h| HostGrant::parse(h).ok())
        .collect();
    let mut target = check(&request.url, &allowed, http).await?;
    let first_origin = origin(&target.url);
    let mut method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| OutError::InvalidUrl(format!("invalid method {:?}", request.method)))?;
    let mut body = request.body;
    let mut left_origin = false;
    for _ in 0..=MAX_REDIRECTS {
        // The operator's binding for this hop's host, if any: its headers
        // replace the plugin's of the same name, its TLS settings pick the
        // client. Another host's hop never gets them.
        let bound = credentials::find(&grants.credentials, &target.url)
            .map(|b| b.usable().map_err(OutError::Connection))
            .transpose()?;
        let transport = http.transport();
        let client = match transport {
            Some(_) => http.direct.clone(),
            None => http.client_for(&target, bound)?,
        };
        let mut builder = client.request(method.clone(), target.url.clone());
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if DROPPED_HEADERS.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || (left_origin && CREDENTIAL_HEADERS.contains(&lower.as_str()))
                || bound.is_some_and(|b| b.sets_header(&lower))
            {
                continue;
            }
            builder = builder.header(name, value);
        }
        if let Some(bound) = bound {
            builder = bound.add_headers(builder);
        }
        let builder = builder.body(body.clone());
        let response = match transport {
            Some(transport) => Answer::Stub(
                transport
                    .send(transport::out_request(builder, request.timeout_ms)?)
                    .await?,
            ),
            None => Answer::Network(builder.send().await.map_err(|e| connection_error(&e))?),
        };
        let status = response.status();
        if (300..400).contains(&status)
            && let Some(location) = response.location()
        {
            let next = location
                .and_then(|l| target.url.join(l).ok())
                .ok_or_else(|| OutError::Connection("invalid redirect location".into()))?;
            if status == 303 || (method == Method::POST && matches!(status, 301 | 302)) {
                method = Method::GET;
                body = Vec::new();
            }
            target = check(next.as_str(), &allowed, http).await?;
            // Once off the first origin, credentials stay behind, even if a
            // later hop comes back.
            left_origin |= origin(&target.url) != first_origin;
            continue;
        }
        return match response {
            Answer::Network(response) => read_response(response, http.max_body, batch).await,
            Answer::Stub(response) if response.body.len() as u64 > http.max_body => {
                Err(OutError::TooLarge(http.max_body))
            }
            Answer::Stub(response) => {
                if let Some(batch) = &batch {
                    batch.take(response.body.len() as u64)?;
                }
                Ok(response)
            }
        };
    }
    Err(OutError::Connection(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// One hop's answer: from the network, or from a test [`Transport`].
enum Answer {
    Network(reqwest::Response),
    Stub(OutResponse),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Self::Network(r) => r.status().as_u16(),
            Self::Stub(r) => r.status,
        }
    }

    /// The `location` header: `None` without one, `Some(None)` when it is
    /// not text.
    fn location(&self) -> Option<Option<&str>> {
        match self {
            Self::Network(r) => r
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| l.to_str().ok()),
            Self::Stub(r) => r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| Some(v.as_str())),
        }
    }
}

async fn read_response(
    mut response: reqwest::Response,
    max_body: u64,
    batch: Option<BatchBytes>,
) -> Result<OutResponse, OutError> {
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(OutError::TooLarge(max_body));
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| connection_error(&e))? {
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(OutError::TooLarge(max_body));
        }
        if let Some(batch) = &batch {
            batch.take(chunk.len() as u64)?;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(OutResponse {
        status,
        headers,
        body,
    })
}

fn connection_error(e: &reqwest::Error) -> OutError {
    if e.is_timeout() {
        return OutError::Timeout;
    }
    // The chain says what failed (refused, DNS, TLS), the top level only
    // "error sending request".
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    OutError::Connection(message)
}

/// What the `http` glue sees of a call: the plugin's grants (hosts,
/// client, bound credentials) and what remains of the call's deadline.
pub struct HttpView<'a> {
    pub(in crate::plugins) label: &'a Arc<str>,
    pub(in crate::plugins) grants: &'a Arc<Grants>,
    /// What remained of the call's deadline when the host call began.
    pub(in crate::plugins) remaining: Duration,
}

/// The linker's projection onto [`HttpView`].
pub struct Http;

impl wasmtime::component::HasData for Http {
    type Data<'a> = HttpView<'a>;
}

impl HttpView<'_> {
    /// `http.send`: one request under the plugin's grant, within the
    /// host's timeout and what remains of the call.
    pub(in crate::plugins) async fn http_send(
        &mut self,
        request: OutRequest,
    ) -> Result<OutResponse, OutError> {
        send_one(
            self.grants.clone(),
            self.label.clone(),
            self.remaining,
            request,
            None,
        )
        .await
    }

    /// `http.send-all`: up to [`MAX_BATCH`] requests at once, concurrently;
    /// answers in their order. Each is checked and timed like `send`, and
    /// their bodies together are capped at [`BATCH_BYTES_FACTOR`] times the
    /// per-response cap.
    pub(in crate::plugins) async fn http_send_all(
        &mut self,
        requests: Vec<OutRequest>,
    ) -> Vec<Result<OutResponse, OutError>> {
        if requests.len() > MAX_BATCH {
            let refused = OutError::InvalidUrl(format!(
                "{} requests in one send-all; at most {MAX_BATCH}",
                requests.len()
            ));
            return requests.iter().map(|_| Err(refused.clone())).collect();
        }
        let remaining = self.remaining;
        let batch = BatchBytes::new(self.grants.http.max_body.saturating_mul(BATCH_BYTES_FACTOR));
        let mut set = tokio::task::JoinSet::new();
        for (i, request) in requests.into_iter().enumerate() {
            let sent = send_one(
                self.grants.clone(),
                self.label.clone(),
                remaining,
                request,
                Some(batch.clone()),
            );
            set.spawn(tracing::Instrument::in_current_span(async move {
                (i, sent.await)
            }));
        }
        let mut out: Vec<Option<Result<OutResponse, OutError>>> =
            (0..set.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, result)) => out[i] = Some(result),
                Err(e) => {
                    tracing::error!(plugin = %self.label, "an outbound request task failed: {e}")
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(OutError::Connection("the request was lost".into()))))
            .collect()
    }
}

/// One outbound request, as `send` and each of `send-all`'s run it.
async fn send_one(
    grants: Arc<Grants>,
    label: Arc<str>,
    remaining: Duration,
    request: OutRequest,
    batch: Option<BatchBytes>,
) -> Result<OutResponse, OutError> {
    let asked = request
        .timeout_ms
        .map_or(Duration::MAX, |ms| Duration::from_millis(ms.into()));
    let timeout = asked.min(grants.http.timeout).min(remaining);
    let url = request.url.clone();
    // The host only: a URL's path and query may carry secrets.
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let span = tracing::info_span!("host_call", otel.name = "http.send", call = "http.send", server.address = %host);
    let sent = tokio::time::timeout(timeout, send_checked(grants, request, batch));
    let result = match tracing::Instrument::instrument(sent, span).await {
        Ok(result) => result,
        Err(_) => Err(OutError::Timeout),
    };
    if let Err(e) = &result {
        if matches!(e, OutError::Denied(_)) {
            crate::telemetry::metrics::plugin_denied(&label);
        }
        tracing::info!(plugin = %label, %host, "outbound request failed: {e:?}");
    }
    result
}

/// The WIT glue for every API version with this interface; `send_all`
/// adds API 0.4's `send-all`.
macro_rules! http_glue {
    ($wit:path) => {
        $crate::plugins::capabilities::http::http_glue!(@types $wit);
        const _: () = {
            use $crate::plugins::capabilities::http::HttpView;
            use $wit as wit;

            impl wit::Host for HttpView<'_> {
                async fn send(&mut self, request: wit::Request) -> Result<wit::Response, wit::Error> {
                    Ok(self.http_send(request.into()).await?.into())
                }
            }
        };
    };
    ($wit:path, send_all) => {
        $crate::plugins::capabilities::http::http_glue!(@types $wit);
        const _: () = {
            use $crate::plugins::capabilities::http::HttpView;
            use $wit as wit;

            impl wit::Host for HttpView<'_> {
                async fn send(&mut self, request: wit::Request) -> Result<wit::Response, wit::Error> {
                    Ok(self.http_send(request.into()).await?.into())
                }

                async fn send_all(
                    &mut self,
                    requests: Vec<wit::Request>,
                ) -> Vec<Result<wit::Response, wit::Error>> {
                    let requests = requests.into_iter().map(Into::into).collect();
                    self.http_send_all(requests)
                        .await
                        .into_iter()
                        .map(|r| r.map(Into::into).map_err(Into::into))
                        .collect()
                }
            }
        };
    };
    (@types $wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::http::{OutError, OutRequest, OutResponse};
            use $wit as wit;

            impl From<wit::Request> for OutRequest {
                fn from(r: wit::Request) -> Self {
                    OutRequest {
                        method: r.method,
                        url: r.url,
                        headers: r.headers,
                        body: r.body,
                        timeout_ms: r.timeout_ms,
                    }
                }
            }

            impl From<OutResponse> for wit::Response {
                fn from(r: OutResponse) -> Self {
                    wit::Response {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    }
                }
            }

            impl From<OutError> for wit::Error {
                fn from(e: OutError) -> Self {
                    match e {
                        OutError::Denied(h) => wit::Error::Denied(h),
                        OutError::InvalidUrl(why) => wit::Error::InvalidUrl(why),
                        OutError::Timeout => wit::Error::Timeout,
                        OutError::TooLarge(n) => wit::Error::TooLarge(n),
                        OutError::Connection(why) => wit::Error::Connection(why),
                    }
                }
            }
        };
    };
}

pub(in crate::plugins) use http_glue;
