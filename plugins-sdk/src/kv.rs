//! This plugin's key-value storage, persisted by the host. Keys are private
//! to the plugin; usage counts against a quota the operator sets.

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::callboard::plugin::kv as wit;

/// Why a storage operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The write would exceed the quota.
    QuotaExceeded {
        /// Bytes in use.
        used_bytes: u64,
        /// The quota.
        limit_bytes: u64,
    },
    /// The value is over the size limit (carried).
    ValueTooLarge(u64),
    /// The key is empty or over the length limit (carried).
    InvalidKey(u32),
    /// [`increment`] found a value that is not an 8-byte integer.
    NotAnInteger,
    /// The operator has not granted this plugin storage.
    Denied,
    /// The host could not complete the operation.
    Unavailable(String),
    /// A stored value is not valid JSON for the requested type.
    Json(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::QuotaExceeded {
                used_bytes,
                limit_bytes,
            } => {
                write!(
                    f,
                    "key-value quota exceeded ({used_bytes} of {limit_bytes} bytes used)"
                )
            }
            KvError::ValueTooLarge(max) => write!(f, "value is larger than {max} bytes"),
            KvError::InvalidKey(max) => write!(f, "key must be 1-{max} bytes"),
            KvError::NotAnInteger => f.write_str("stored value is not an 8-byte integer"),
            KvError::Denied => f.write_str("key-value storage is not granted to this plugin"),
            KvError::Unavailable(why) => write!(f, "key-value storage unavailable: {why}"),
            KvError::Json(why) => write!(f, "stored value is not valid JSON: {why}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<wit::Error> for KvError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::QuotaExceeded(q) => KvError::QuotaExceeded {
                used_bytes: q.used_bytes,
                limit_bytes: q.limit_bytes,
            },
            wit::Error::ValueTooLarge(max) => KvError::ValueTooLarge(max),
            wit::Error::InvalidKey(max) => KvError::InvalidKey(max),
            wit::Error::NotAnInteger => KvError::NotAnInteger,
            wit::Error::Denied => KvError::Denied,
            wit::Error::Unavailable(why) => KvError::Unavailable(why),
        }
    }
}

/// The value under `key`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    Ok(wit::get(key)?)
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    Ok(wit::set(key, value)?)
}

/// Removes `key`; true if it existed.
pub fn delete(key: &str) -> Result<bool, KvError> {
    Ok(wit::delete(key)?)
}

/// Atomically adds `delta` to the counter under `key` (missing counts as 0)
/// and returns the new value.
pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
    Ok(wit::increment(key, delta)?)
}

/// Up to `limit` keys starting with `prefix`, ascending.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    Ok(wit::list_keys(prefix, limit)?)
}

/// `(used, limit)` in bytes.
pub fn usage() -> Result<(u64, u64), KvError> {
    let q = wit::usage()?;
    Ok((q.used_bytes, q.limit_bytes))
}

/// The value under `key`, parsed as JSON.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    match get(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| KvError::Json(e.to_string())),
        None => Ok(None),
    }
}

/// Stores `value` under `key` as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value).map_err(|e| KvError::Json(e.to_string()))?;
    set(key, &bytes)
}
