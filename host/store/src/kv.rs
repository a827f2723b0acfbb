//! Plugins' key-value data: every row is keyed by (plugin id, key), and the
//! host only ever passes the calling plugin's own id. Usage (key bytes +
//! value bytes) is kept per plugin in the same transaction as the write, so
//! the quota holds under concurrent requests on every replica.

use crate::StoreError;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// A plugin's key-value limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes (keys + values).
    pub bytes: u64,
    /// Largest value.
    pub max_value_bytes: u64,
}

/// Why a key-value operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    /// The write would exceed the plugin's quota.
    #[error("key-value quota exceeded: {used} of {limit} bytes used")]
    QuotaExceeded {
        /// Bytes in use before the write.
        used: u64,
        /// The quota.
        limit: u64,
    },
    /// The value is larger than allowed.
    #[error("value larger than {0} bytes")]
    ValueTooLarge(u64),
    /// The key is empty or too long.
    #[error("key must be 1-{MAX_KEY_BYTES} bytes")]
    InvalidKey,
    /// `increment` on a value that is not 8 bytes.
    #[error("value is not an 8-byte integer")]
    NotAnInteger,
    /// The database failed.
    #[error("key-value storage: {0}")]
    Store(#[from] StoreError),
}

/// Checks a key's length (every backend calls it first).
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey);
    }
    Ok(())
}

/// Plugins' key-value storage.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync {
    /// The value under `key` for `plugin`.
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Stores `value` within the plugin's quota.
    async fn set(&self, plugin: &str, key: &str, value: &[u8], quota: Quota)
    -> Result<(), KvError>;
    /// Removes `key`; true if it existed.
    async fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError>;
    /// Adds `delta` to the little-endian i64 under `key` (0 if absent),
    /// atomically; returns the new value.
    async fn increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError>;
    /// Up to `limit` of the plugin's keys starting with `prefix`, ascending.
    async fn list_keys(
        &self,
        plugin: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, KvError>;
    /// Bytes the plugin uses.
    async fn usage(&self, plugin: &str) -> Result<u64, KvError>;
    /// Deletes everything the plugin stored.
    async fn purge(&self, plugin: &str) -> Result<(), KvError>;
}
