//! Callboard's storage and coordination boundary.
//!
//! Everything Callboard keeps (the catalog, plugin key-value data, API
//! tokens, access policies, the audit log) and every way replicas agree
//! (leases on periodic work, the change feed) is a trait here, with the
//! records and the error they share. This crate names no
//! database driver: `callboard-store-sqlite` (the embedded default) and
//! `callboard-store-postgres` (replicas) implement the traits, and the
//! catalog and the host only ever see them through [`Stores`].
//!
//! Every method is async. A backend whose driver blocks (SQLite) runs the
//! work on a bounded blocking pool, never on the async workers.
//!
//! The `testing` feature adds the conformance suite both backends pass
//! ([`testing::conformance`]) and a private PostgreSQL cluster for tests
//! ([`testing::postgres`]).

pub mod access;
pub mod catalog;
pub mod coord;
pub mod docs;
mod error;
pub mod kv;
pub mod metrics;
pub mod plugins;
pub mod query;
pub mod search;
pub mod sessions;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

pub use access::{AuditLog, PolicyStore, TokenStore};
pub use catalog::{CatalogStore, LocationWriter};
pub use coord::{Counters, Feed, FeedEvent, Lease, Leases};
pub use docs::DocsStore;
pub use error::StoreError;
pub use kv::KvStore;
pub use plugins::PluginFiles;
pub use search::SearchStore;
pub use sessions::SessionStore;

/// Result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One opened backend: every store shares its connections.
#[derive(Clone)]
pub struct Stores {
    /// The software catalog.
    pub catalog: Arc<dyn CatalogStore>,
    /// Plugins' key-value data.
    pub kv: Arc<dyn KvStore>,
    /// Leases on work that must happen once per period.
    pub leases: Arc<dyn Leases>,
    /// The change feed every replica follows.
    pub feed: Arc<dyn Feed>,
    /// Installed plugin files, shared by replicas.
    pub plugins: Arc<dyn PluginFiles>,
    /// Server-side sessions, shared by replicas.
    pub sessions: Arc<dyn SessionStore>,
    /// Counters summed over replicas.
    pub counters: Arc<dyn Counters>,
    /// API tokens of service principals, shared by replicas.
    pub tokens: Arc<dyn TokenStore>,
    /// Versions of the access policy (publication on the feed).
    pub policies: Arc<dyn PolicyStore>,
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
    /// The search index (catalog entities, docs, plugins' documents).
    pub search: Arc<dyn SearchStore>,
    /// Rendered TechDocs sites.
    pub docs: Arc<dyn DocsStore>,
    /// Health and schema of the backend.
    pub admin: Arc<dyn Admin>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("backend", &self.admin.backend())
            .finish_non_exhaustive()
    }
}

/// The schema of one store, as `callboard db status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaStatus {
    /// Which store (`catalog`, `kv`, and the coordination tables: `feed`
    /// and `leases` single-node, `coordination` on PostgreSQL).
    pub store: String,
    /// Version the database holds.
    pub version: i64,
    /// Newest version this build knows.
    pub supported: i64,
}

/// Health and schema of a backend.
#[async_trait::async_trait]
pub trait Admin: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Where the data lives, without credentials (a file path, or
    /// `postgres://user@host:port/db`).
    fn location(&self) -> String;
    /// A cheap round trip: `Err(StoreError::Unavailable)` while the database
    /// cannot be reached.
    async fn ping(&self) -> Result<()>;
    /// The schema version of each store.
    async fn schema(&self) -> Result<Vec<SchemaStatus>>;
    /// A secret every replica shares (the admin token): stores `candidate`
    /// under `name` unless a value is there, and returns the stored value.
    /// Two replicas starting together get the same one.
    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String>;
    /// This replica's connection pool now (for metrics).
    fn pool(&self) -> PoolStatus;
}

/// A connection pool's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open.
    pub open: usize,
    /// Connections open and idle.
    pub idle: usize,
    /// Most connections the pool opens.
    pub max: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}
