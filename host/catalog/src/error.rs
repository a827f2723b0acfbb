//! The catalog's error type.

use crate::validation::ValidationError;

/// Everything the catalog can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database could not be opened, migrated, read or written.
    #[error("catalog database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database file or its folder could not be created.
    #[error("catalog database {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A schema newer than this build understands.
    #[error("catalog database schema version {found} is newer than this build ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
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
