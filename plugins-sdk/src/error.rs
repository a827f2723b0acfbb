//! One error type for handlers, views and actions, so an author writes `?`
//! instead of a `match` per call: every SDK error converts into [`Error`],
//! which carries the HTTP status it answers with.
//!
//! ```
//! use callboard_sdk::{Error, Params, Request, Response, Router, kv};
//!
//! fn visits(_: &Request, _: &Params) -> Result<Response, Error> {
//!     let n = kv::increment("visits", 1)?; // a storage failure answers 503
//!     Ok(Response::json(&serde_json::json!({ "visits": n })))
//! }
//!
//! let router = Router::new().post("/visits", visits);
//! # let _ = router;
//! ```

use crate::{
    Response, catalog::CatalogError, fetch::FetchError, kv::KvError, permissions::PermissionError,
    search::SearchError,
};

/// An error with the HTTP status it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The HTTP status (4xx for the caller's mistakes and refusals, 5xx for
    /// failures).
    pub status: u16,
    /// What went wrong, shown to the caller.
    pub message: String,
}

impl Error {
    /// An error with `status`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 403: the principal may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404: nothing there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// As a response in Backstage's error shape.
    pub fn into_response(self) -> Response {
        Response::error(self.status, self.message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    /// A plain message: 500.
    fn from(message: String) -> Self {
        Self::new(500, message)
    }
}

impl From<&str> for Error {
    /// A plain message: 500.
    fn from(message: &str) -> Self {
        Self::new(500, message)
    }
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        let status = match e {
            KvError::QuotaExceeded { .. } => 507,
            KvError::ValueTooLarge(_) => 413,
            KvError::InvalidKey(_) => 400,
            KvError::Denied | KvError::NotAnInteger | KvError::Json(_) => 500,
            KvError::Unavailable(_) => 503,
        };
        Self::new(status, e.to_string())
    }
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        let status = match e {
            CatalogError::Invalid(_) => 400,
            CatalogError::Unavailable(_) => 503,
            CatalogError::Denied | CatalogError::Json(_) => 500,
        };
        Self::new(status, e.to_string())
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        let status = match e {
            FetchError::Timeout => 504,
            FetchError::Denied(_) | FetchError::InvalidUrl(_) => 500,
            _ => 502,
        };
        Self::new(status, e.to_string())
    }
}

impl From<PermissionError> for Error {
    fn from(e: PermissionError) -> Self {
        let status = match e {
            PermissionError::NotAllowed(_) => 403,
            PermissionError::Invalid(_) => 400,
            PermissionError::Unknown(_) => 500,
        };
        Self::new(status, e.to_string())
    }
}

impl From<SearchError> for Error {
    fn from(e: SearchError) -> Self {
        let status = match e {
            SearchError::Invalid(_) => 400,
            SearchError::Unavailable(_) => 503,
            SearchError::Denied | SearchError::TooMany(_) => 500,
        };
        Self::new(status, e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    /// A body that is not the JSON expected: 400.
    fn from(e: serde_json::Error) -> Self {
        Self::new(400, format!("invalid JSON: {e}"))
    }
}

/// What a route handler may return: a [`Response`], or a `Result` whose
/// error becomes a response with its status.
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl<E: Into<Error>> IntoResponse for Result<Response, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(response) => response,
            Err(e) => e.into().into_response(),
        }
    }
}
