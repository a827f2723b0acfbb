//! The catalog's error type.

use crate::validation::ValidationError;

/// Everything the catalog can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store failed (database unreachable, schema too new...).
    #[error("catalog {0}")]
    Store(callboard_store::StoreError),
    /// Bad input from a caller (filter syntax, cursor, location type...).
    #[error("{0}")]
    Input(String),
    /// An entity that fails validation.
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationError>),
    /// Something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something that exists already.
    #[error("{0}")]
    Conflict(String),
    /// A location could not be read (missing file, unreachable URL, bad YAML).
    #[error("{0}")]
    Location(String),
    /// A blocking task died.
    #[error("catalog task failed: {0}")]
    Task(String),
}

impl CatalogError {
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }
}

impl From<callboard_store::StoreError> for CatalogError {
    fn from(e: callboard_store::StoreError) -> Self {
        use callboard_store::StoreError;
        match e {
            // A caller's mistake reads the same whoever noticed it.
            StoreError::Input(m) => Self::Input(m),
            StoreError::NotFound(m) => Self::NotFound(m),
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::Store(other),
        }
    }
}
