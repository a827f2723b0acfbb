//! What the portal offers a plugin call beyond storage, as the runtime
//! sees it: the call's [`Caller`] (the principal the plugin is told, what
//! it may read, and its [`Rights`]: permission checks and search as that
//! principal) and the [`Portal`]'s index of plugins' documents.
//!
//! Both are implemented above the runtime (`crate::identity::callers`),
//! so the runtime never sees the policy, a session or a credential: it
//! hands the plugin a [`Principal`], and asks.

use std::sync::Arc;

pub use callboard_plugin_contract::Principal;

use super::call::CatalogReader;

/// Who one call runs for.
#[derive(Clone)]
pub struct Caller {
    /// What the plugin is told.
    pub principal: Principal,
    /// What the `catalog` interface may read for this call.
    pub reader: CatalogReader,
    /// What the `permissions` and `search` interfaces answer for this call.
    pub rights: Arc<dyn Rights>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Default for Caller {
    /// For callers outside the portal's routes (benchmarks, tests): reads
    /// every entity, holds no permission, searches nothing.
    fn default() -> Self {
        Self {
            principal: Principal::Anonymous,
            reader: CatalogReader::All,
            rights: Arc::new(NoRights),
        }
    }
}

/// One search hit, as a plugin sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// `software-catalog`, `techdocs`, or a plugin's type.
    pub doc_type: String,
    pub title: String,
    /// A snippet around the matches.
    pub text: String,
    pub location: String,
    pub entity_ref: Option<String>,
}

/// One document a plugin contributes to the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The plugin's own key.
    pub id: String,
    /// Empty: the plugin's id.
    pub doc_type: String,
    pub title: String,
    pub text: String,
    pub location: String,
    pub entity_ref: Option<String>,
    /// One of the plugin's declared permissions.
    pub permission: Option<String>,
}

/// Why an index operation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    /// A document or query is malformed; says which.
    #[error("{0}")]
    Invalid(String),
    /// Over the plugin's cap.
    #[error("at most {0} documents per plugin")]
    TooMany(u32),
    /// The index failed (logged).
    #[error("{0}")]
    Unavailable(String),
}

/// The caller's rights, asked by the `permissions` and `search` interfaces.
#[async_trait::async_trait]
pub trait Rights: Send + Sync {
    /// Whether the caller holds `permission` (on entity `entity_ref`, when
    /// given: its conditions are checked against it, and an entity the
    /// caller may not read is never allowed). `Err`: the ref is malformed.
    async fn allows(&self, permission: &str, entity_ref: Option<&str>) -> Result<bool, String>;

    /// The index searched as the caller.
    async fn search(
        &self,
        term: String,
        types: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError>;
}

/// No rights at all.
pub struct NoRights;

#[async_trait::async_trait]
impl Rights for NoRights {
    async fn allows(&self, _: &str, _: Option<&str>) -> Result<bool, String> {
        Ok(false)
    }

    async fn search(&self, _: String, _: Vec<String>, _: usize) -> Result<Vec<Hit>, IndexError> {
        Ok(Vec::new())
    }
}

/// The portal's side of the runtime: service principals and the index of
/// plugins' documents. Set once at start-up ([`super::PluginHost::attach_portal`]).
#[async_trait::async_trait]
pub trait Portal: Send + Sync {
    /// Plugin `plugin`'s own service principal (`plugin:<id>`), for event
    /// batches and ticks.
    fn service(&self, plugin: &str) -> Caller;

    /// Adds or replaces plugin `plugin`'s documents, all or nothing.
    async fn put_documents(&self, plugin: &str, docs: Vec<Document>) -> Result<(), IndexError>;

    /// Removes plugin `plugin`'s documents with these ids.
    async fn remove_documents(&self, plugin: &str, ids: Vec<String>) -> Result<(), IndexError>;

    /// Removes every document of plugin `plugin`.
    async fn clear_documents(&self, plugin: &str) -> Result<(), IndexError>;
}
