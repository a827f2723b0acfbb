//! The one error every store returns.

/// Why a storage operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection lost, server down, pool
    /// exhausted): the request may succeed later. HTTP 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A schema newer than this build understands.
    #[error("{store} database schema version {found} is newer than this build ({supported})")]
    SchemaTooNew {
        /// Which store.
        store: String,
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Bad input from a caller (filter syntax, cursor...).
    #[error("{0}")]
    Input(String),
    /// Something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something that exists already.
    #[error("{0}")]
    Conflict(String),
    /// Stored data this build cannot read.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Any other failure of the database or its files.
    #[error("database: {0}")]
    Backend(String),
}

impl StoreError {
    /// A caller's mistake.
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    /// Whether the database is (momentarily) out of reach.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
