//! The plugin's outbound HTTP in the harness: every request that passes the
//! host's checks (the grant, the headers, the operator's credentials) goes
//! to the stub instead of the network, and is recorded.

use std::sync::{Arc, Mutex};

pub use callboard::plugins::capabilities::http::{OutError, OutRequest, OutResponse, Transport};

/// A response with a JSON body.
pub fn json(status: u16, value: &impl serde::Serialize) -> OutResponse {
    OutResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// A response with a text body.
pub fn text(status: u16, body: impl Into<String>) -> OutResponse {
    OutResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.into().into_bytes(),
    }
}

/// A response with no body.
pub fn empty(status: u16) -> OutResponse {
    OutResponse {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A closure as a [`Transport`].
pub(crate) struct FnStub<F>(pub(crate) F);

#[async_trait::async_trait]
impl<F> Transport for FnStub<F>
where
    F: Fn(&OutRequest) -> OutResponse + Send + Sync,
{
    async fn send(&self, request: OutRequest) -> Result<OutResponse, OutError> {
        Ok((self.0)(&request))
    }
}

/// What the harness gives the host: records each request, then asks the
/// author's stub (without one, every request fails as unreachable: the
/// harness never reaches the network).
pub(crate) struct Recorder {
    pub(crate) stub: Option<Arc<dyn Transport>>,
    pub(crate) seen: Mutex<Vec<OutRequest>>,
}

#[async_trait::async_trait]
impl Transport for Recorder {
    async fn send(&self, request: OutRequest) -> Result<OutResponse, OutError> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        match &self.stub {
            Some(stub) => stub.send(request).await,
            None => Err(OutError::Connection(format!(
                "{} {}: the plugin harness has no HTTP stub (give one with `.http_stub(...)`); it never reaches the network",
                request.method, request.url
            ))),
        }
    }
}
