//! **A test seam**: where plugins' outbound requests go instead of the
//! network, so a plugin's own tests (`callboard-plugin-harness`) can answer
//! them in-process.
//!
//! A [`Transport`] replaces only the wire. Everything else the http
//! capability does runs as in production, before and after it: the grant
//! check of every hop (a host the plugin was not granted is refused with
//! `denied`, and an address literal still needs an address grant), the
//! dropped headers, the operator's credentials added at the hop to their
//! host only, redirects followed by hand (each hop checked again, credentials
//! left behind off the first origin), the timeout and the response size cap.
//! Names are not resolved under a transport: it answers for any host the
//! grants allow.
//!
//! Production never sets one; [`PluginHost::set_http_transport`](crate::plugins::PluginHost::set_http_transport)
//! does, once, before plugins are installed.

use super::{OutError, OutRequest, OutResponse};

/// Answers one hop of a plugin's outbound request (the request as the host
/// would send it: checked, with the plugin's headers less those the host
/// owns, plus the operator's credentials for that host). A redirect answer
/// (3xx with `location`) is followed by the host, checked again.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Answers `request`; an `Err` is what the plugin sees (e.g.
    /// [`OutError::Connection`] for an unreachable host).
    async fn send(&self, request: OutRequest) -> Result<OutResponse, OutError>;
}

/// The request a [`reqwest::RequestBuilder`] would send, as a transport sees it.
pub(super) fn out_request(
    builder: reqwest::RequestBuilder,
    timeout_ms: Option<u32>,
) -> Result<OutRequest, OutError> {
    let request = builder
        .build()
        .map_err(|e| OutError::InvalidUrl(format!("cannot build the request: {e}")))?;
    Ok(OutRequest {
        method: request.method().as_str().to_owned(),
        url: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        timeout_ms,
    })
}
