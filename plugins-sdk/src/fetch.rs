//! Outbound HTTP(S) to the hosts the operator granted this plugin
//! (`capabilities.http-hosts`). Any other host is refused with
//! [`FetchError::Denied`] before a connection is made.
//!
//! ```no_run
//! use callboard_sdk::fetch;
//!
//! let runs: serde_json::Value = fetch::get("https://api.github.com/repos/o/r/actions/runs")
//!     .header("authorization", "Bearer t")
//!     .timeout_ms(2_000)
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # Ok::<(), fetch::FetchError>(())
//! ```

use serde::de::DeserializeOwned;

use crate::bindings::callboard::plugin::http as wit;

/// Why no usable response arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The host is not granted to this plugin (carried).
    Denied(String),
    /// The URL is malformed or not http(s).
    InvalidUrl(String),
    /// No complete response within the timeout.
    Timeout,
    /// The body is over the operator's cap (carried, in bytes).
    TooLarge(u64),
    /// DNS, connection refused, TLS, reset...
    Connection(String),
    /// The server answered with an error status (from [`FetchResponse::error_for_status`]).
    Status(u16),
    /// The body is not the JSON expected.
    Json(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Denied(host) => {
                write!(f, "calls to {host} are not granted to this plugin")
            }
            FetchError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            FetchError::Timeout => f.write_str("no response within the timeout"),
            FetchError::TooLarge(cap) => write!(f, "response is larger than {cap} bytes"),
            FetchError::Connection(why) => write!(f, "cannot connect: {why}"),
            FetchError::Status(status) => write!(f, "server answered HTTP {status}"),
            FetchError::Json(why) => write!(f, "response is not the expected JSON: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<wit::Error> for FetchError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(host) => FetchError::Denied(host),
            wit::Error::InvalidUrl(why) => FetchError::InvalidUrl(why),
            wit::Error::Timeout => FetchError::Timeout,
            wit::Error::TooLarge(cap) => FetchError::TooLarge(cap),
            wit::Error::Connection(why) => FetchError::Connection(why),
        }
    }
}

/// A request being built; see [`get`] and [`request`].
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until sent"]
pub struct FetchRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: Option<u32>,
}

/// A `GET` of `url`.
pub fn get(url: impl Into<String>) -> FetchRequest {
    request("GET", url)
}

/// A request with any method.
pub fn request(method: &str, url: impl Into<String>) -> FetchRequest {
    FetchRequest {
        method: method.to_ascii_uppercase(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: None,
    }
}

impl FetchRequest {
    /// Adds a header (the name is lower-cased).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// How long to wait at most (the host may cap it lower).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request and waits for the whole response.
    pub fn send(self) -> Result<FetchResponse, FetchError> {
        let response = wit::send(&self.into_wit())?;
        Ok(FetchResponse::from_wit(response))
    }

    fn into_wit(self) -> wit::Request {
        wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Most requests one [`send_all`] takes.
pub const MAX_BATCH: usize = 32;

/// Sends several requests at once (at most [`MAX_BATCH`]), concurrently,
/// and waits for all: the results are in the order of the requests, so
/// asking ten clusters costs the slowest answer, not the sum (plugin API
/// 0.4). Each response has the host's size cap, and their bodies together
/// at most four times that cap: past it, the answers still arriving are
/// [`FetchError::TooLarge`] with the batch's total (ask for less, e.g. a
/// `limit=`, or split the batch).
pub fn send_all(requests: Vec<FetchRequest>) -> Vec<Result<FetchResponse, FetchError>> {
    let requests: Vec<wit::Request> = requests.into_iter().map(FetchRequest::into_wit).collect();
    wit::send_all(&requests)
        .into_iter()
        .map(|r| r.map(FetchResponse::from_wit).map_err(FetchError::from))
        .collect()
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl FetchResponse {
    fn from_wit(response: wit::Response) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Err(FetchError::Status)` unless the status is 2xx.
    pub fn error_for_status(self) -> Result<Self, FetchError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(FetchError::Status(self.status))
        }
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, FetchError> {
        serde_json::from_slice(&self.body).map_err(|e| FetchError::Json(e.to_string()))
    }
}
