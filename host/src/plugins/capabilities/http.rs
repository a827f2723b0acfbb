//! `callboard:plugin/http` (API 0.3+): outbound HTTP(S) to the hosts the
//! operator granted the plugin. The host is checked before anything is
//! sent, redirects are followed by hand so each hop is checked too, and the
//! response is read in chunks so the size cap holds without buffering more.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, redirect::Policy};

use crate::plugins::{
    bindings::v0_3_0::callboard::plugin::http as wit,
    manifest::Capabilities,
    state::{Grants, HostState},
};

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// The outbound client every plugin shares (one connection pool), with the
/// operator's limits.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
    max_body: u64,
}

impl HttpClient {
    /// A client with the operator's timeout cap and response size cap.
    pub fn new(timeout: Duration, max_body: u64) -> Self {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .user_agent(concat!("callboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            client,
            timeout,
            max_body,
        }
    }
}

/// `url` parsed, if it is an http(s) URL whose host is granted.
fn checked_url(url: &str, granted: &Capabilities) -> Result<reqwest::Url, wit::Error> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| wit::Error::InvalidUrl(format!("{url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(wit::Error::InvalidUrl(format!(
            "{url}: only http and https are allowed"
        )));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| wit::Error::InvalidUrl(format!("{url}: no host")))?;
    // `Url` keeps IPv6 literals in brackets; grants name them without.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if !granted.allows_host(bare) {
        return Err(wit::Error::Denied(bare.to_owned()));
    }
    Ok(parsed)
}

/// Sends `request` if its host (and every redirect's) is granted.
async fn send_checked(
    grants: Arc<Grants>,
    request: wit::Request,
) -> Result<wit::Response, wit::Error> {
    let http = &grants.http;
    let granted = &grants.capabilities;
    let mut url = checked_url(&request.url, granted)?;
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| wit::Error::InvalidUrl(format!("invalid method {:?}", request.method)))?;
    let mut method = method;
    let mut body = request.body;
    for _ in 0..=MAX_REDIRECTS {
        let mut builder = http.client.request(method.clone(), url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .body(body.clone())
            .send()
            .await
            .map_err(|e| connection_error(&e))?;
        if response.status().is_redirection()
            && let Some(location) = response.headers().get(reqwest::header::LOCATION)
        {
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| wit::Error::Connection("invalid redirect location".into()))?;
            url = checked_url(next.as_str(), granted)?;
            if response.status() == reqwest::StatusCode::SEE_OTHER
                || (method == Method::POST && matches!(response.status().as_u16(), 301 | 302))
            {
                method = Method::GET;
                body = Vec::new();
            }
            continue;
        }
        return read_response(response, http.max_body).await;
    }
    Err(wit::Error::Connection(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

async fn read_response(
    mut response: reqwest::Response,
    max_body: u64,
) -> Result<wit::Response, wit::Error> {
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(wit::Error::TooLarge(max_body));
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
            return Err(wit::Error::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(wit::Response {
        status,
        headers,
        body,
    })
}

fn connection_error(e: &reqwest::Error) -> wit::Error {
    if e.is_timeout() {
        return wit::Error::Timeout;
    }
    // The chain says what failed (refused, DNS, TLS), the top level only
    // "error sending request".
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    wit::Error::Connection(message)
}

impl wit::Host for HostState {
    async fn send(&mut self, request: wit::Request) -> Result<wit::Response, wit::Error> {
        let asked = request
            .timeout_ms
            .map_or(Duration::MAX, |ms| Duration::from_millis(ms.into()));
        let timeout = asked.min(self.grants.http.timeout).min(self.remaining());
        let url = request.url.clone();
        let result =
            match tokio::time::timeout(timeout, send_checked(self.grants.clone(), request)).await {
                Ok(result) => result,
                Err(_) => Err(wit::Error::Timeout),
            };
        if let Err(e) = &result {
            tracing::info!(plugin = %self.label, %url, "outbound request failed: {e:?}");
        }
        result
    }
}
