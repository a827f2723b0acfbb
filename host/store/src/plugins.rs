//! Installed plugin files and their licences, shared by every replica.
//!
//! Single-node, the plugins folder is the source of truth. With several
//! replicas on one database, this store is: an install through any replica
//! stores the signed file (and licence) here and appends a
//! [`PLUGINS_TOPIC`] event; every replica verifies, compiles (its own
//! compiled-code cache) and swaps what it reads here.

use crate::Result;

/// Feed topic of plugin installs, licence changes and removals
/// (payload: `{"id": ..., "digest": ...}`; a removal has no digest).
pub const PLUGINS_TOPIC: &str = "plugins";

/// One stored plugin, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntry {
    /// Plugin id.
    pub id: String,
    /// SHA-256 (hex) of the component file.
    pub digest: String,
    /// Increases with every change of the file or the licence.
    pub revision: i64,
}

/// One stored plugin with its file and licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlugin {
    /// Plugin id.
    pub id: String,
    /// SHA-256 (hex) of `wasm`.
    pub digest: String,
    /// The signed component file as uploaded.
    pub wasm: Vec<u8>,
    /// The licence file's text, if any.
    pub license: Option<String>,
    /// Increases with every change of the file or the licence.
    pub revision: i64,
}

/// The shared plugin files.
#[async_trait::async_trait]
pub trait PluginFiles: Send + Sync {
    /// Stores (or replaces) a plugin's file, keeping its licence unless
    /// `license` is given; appends a [`PLUGINS_TOPIC`] event in the same
    /// transaction. Returns the new revision.
    async fn put(&self, id: &str, digest: &str, wasm: &[u8], license: Option<&str>) -> Result<i64>;
    /// Stores a licence for a stored plugin and returns the new revision
    /// (`None` if there is no such plugin); appends a [`PLUGINS_TOPIC`]
    /// event.
    async fn put_license(&self, id: &str, license: &str) -> Result<Option<i64>>;
    /// Removes a plugin (false if there was none); appends a
    /// [`PLUGINS_TOPIC`] event. Its id and digest are remembered as
    /// removed ([`PluginFiles::removed`]) until that file is put again.
    async fn remove(&self, id: &str) -> Result<bool>;
    /// `(id, digest)` of the files removed and not put again since: a
    /// replica whose plugins folder still holds one of them must not import
    /// it back.
    async fn removed(&self) -> Result<Vec<(String, String)>>;
    /// Every stored plugin, by id.
    async fn list(&self) -> Result<Vec<PluginEntry>>;
    /// One plugin with its file.
    async fn get(&self, id: &str) -> Result<Option<StoredPlugin>>;
}
