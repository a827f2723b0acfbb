//! `callboard:plugin/kv`: per-plugin key-value storage in the host's SQLite
//! file `<data_dir>/kv.sqlite`.
//!
//! Every row is keyed by (plugin id, key), and the glue only ever passes the
//! calling plugin's own id, so one plugin cannot name another's keys. Usage
//! (key bytes + value bytes) is kept per plugin in the same transaction as the
//! write, so the quota holds under concurrent requests.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::plugins::{
    admission::Budgets,
    bindings::{v0_1_0, v0_2_0, v0_3_0},
    state::HostState,
};

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: u32 = 512;

const MIGRATIONS: &[&str] = &[
    // 1: the store.
    "CREATE TABLE kv (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value BLOB NOT NULL,
         PRIMARY KEY (plugin, key)
     ) WITHOUT ROWID;
     CREATE TABLE kv_usage (plugin TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;",
];

/// Why a key-value operation failed.
#[derive(Debug, thiserror::Error)]
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
    /// SQLite failed.
    #[error("key-value storage failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking pool could not run the operation (shutting down).
    #[error("key-value storage is unavailable: {0}")]
    Pool(String),
}

/// The key-value database shared by all plugins.
pub struct KvStore {
    // A few connections to the WAL database, so two plugins' reads proceed
    // at once; SQLite serializes the writers (IMMEDIATE transactions with a
    // busy timeout).
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// Connections kept open to the key-value database.
const CONNECTIONS: usize = 4;

impl KvStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let mut conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            if i == 0 {
                migrate(&mut conn)?;
            }
            conns.push(Mutex::new(conn));
        }
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free connection (or waits for one).
    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, KvError>) -> Result<R, KvError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(mut conn) = self.conns[(start + i) % n].try_lock() {
                return f(&mut conn);
            }
        }
        let mut conn = self.conns[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    /// The value under `key` for `plugin`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                    .query_row(params![plugin, key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Stores `value`, within `quota` bytes for the plugin.
    pub fn set(&self, plugin: &str, key: &str, value: &[u8], quota: Quota) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() as u64 > quota.max_value_bytes {
            return Err(KvError::ValueTooLarge(quota.max_value_bytes));
        }
        self.write(plugin, |tx, used| {
            let old = entry_size(tx, plugin, key)?;
            let new = (key.len() + value.len()) as u64;
            let after = used - old.unwrap_or(0) + new;
            if after > quota.bytes && new > old.unwrap_or(0) {
                return Err(KvError::QuotaExceeded {
                    used,
                    limit: quota.bytes,
                });
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![plugin, key, value])?;
            Ok((after, ()))
        })
    }

    /// Removes `key`; true if it existed.
    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        self.write(plugin, |tx, used| {
            let Some(old) = entry_size(tx, plugin, key)? else {
                return Ok((used, false));
            };
            tx.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?
                .execute(params![plugin, key])?;
            Ok((used - old, true))
        })
    }

    /// Adds `delta` to the integer under `key` atomically; returns the new value.
    pub fn increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError> {
        check_key(key)?;
        self.write(plugin, |tx, used| {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                .query_row(params![plugin, key], |r| r.get(0))
                .optional()?;
            let (value, used) = match current {
                Some(bytes) => {
                    let bytes: [u8; 8] = bytes.try_into().map_err(|_| KvError::NotAnInteger)?;
                    (i64::from_le_bytes(bytes).wrapping_add(delta), used)
                }
                None => {
                    let after = used + key.len() as u64 + 8;
                    if after > quota.bytes {
                        return Err(KvError::QuotaExceeded {
                            used,
                            limit: quota.bytes,
                        });
                    }
                    (delta, after)
                }
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![plugin, key, value.to_le_bytes().as_slice()])?;
            Ok((used, value))
        })
    }

    /// Up to `limit` of the plugin's keys starting with `prefix`, ascending.
    pub fn list_keys(
        &self,
        plugin: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
            )?;
            let mut keys = Vec::new();
            // `key >= prefix` starts the scan at the prefix; stop at the first
            // key past it. Over-fetching by the limit is enough because keys
            // with the prefix sort contiguously.
            let rows = stmt.query_map(params![plugin, prefix, limit], |r| r.get::<_, String>(0))?;
            for key in rows {
                let key = key?;
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key);
            }
            Ok(keys)
        })
    }

    /// Bytes the plugin uses.
    pub fn usage(&self, plugin: &str) -> Result<u64, KvError> {
        self.with(|c| usage(c, plugin))
    }

    /// Deletes everything the plugin stored.
    pub fn purge(&self, plugin: &str) -> Result<(), KvError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM kv WHERE plugin = ?1", [plugin])?;
            tx.execute("DELETE FROM kv_usage WHERE plugin = ?1", [plugin])?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Runs `f` in a write transaction with the plugin's usage; `f` returns
    /// the new usage, stored in the same transaction.
    fn write<R>(
        &self,
        plugin: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>, u64) -> Result<(u64, R), KvError>,
    ) -> Result<R, KvError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let used = usage(&tx, plugin)?;
            let (after, result) = f(&tx, used)?;
            if after != used {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO kv_usage (plugin, bytes) VALUES (?1, ?2)",
                )?
                .execute(params![plugin, to_sql(after)])?;
            }
            tx.commit()?;
            Ok(result)
        })
    }
}

fn migrate(conn: &mut Connection) -> Result<(), KvError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tx = conn.transaction()?;
    for (i, migration) in (0i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn usage(c: &Connection, plugin: &str) -> Result<u64, KvError> {
    let bytes: Option<i64> = c
        .prepare_cached("SELECT bytes FROM kv_usage WHERE plugin = ?1")?
        .query_row([plugin], |r| r.get(0))
        .optional()?;
    Ok(bytes.map_or(0, from_sql))
}

// SQLite integers are i64; sizes are never negative.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn entry_size(c: &Connection, plugin: &str, key: &str) -> Result<Option<u64>, KvError> {
    let size: Option<i64> = c
        .prepare_cached("SELECT length(CAST(key AS BLOB)) + length(value) FROM kv WHERE plugin = ?1 AND key = ?2")?
        .query_row(params![plugin, key], |r| r.get(0))
        .optional()?;
    Ok(size.map(from_sql))
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES as usize {
        return Err(KvError::InvalidKey);
    }
    Ok(())
}

/// A plugin's storage limits.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    /// Total bytes of keys plus values.
    pub bytes: u64,
    /// Largest single value.
    pub max_value_bytes: u64,
}

/// One plugin's access to the store, as its calls see it.
#[derive(Clone)]
pub struct KvAccess {
    pub(crate) store: Arc<KvStore>,
    /// The plugin id: the namespace of every key it touches.
    pub(crate) plugin: Arc<str>,
    /// Whether the plugin requested and was granted storage.
    pub(crate) granted: bool,
    pub(crate) quota: Quota,
}

/// Runs SQLite work `f` on the blocking pool (never on the async worker
/// that polls the plugin), mapping its error into the WIT error.
async fn off_worker<R, E>(
    budgets: Arc<Budgets>,
    f: impl FnOnce() -> Result<R, KvError> + Send + 'static,
) -> Result<R, E>
where
    R: Send + 'static,
    E: From<KvError>,
{
    match budgets.blocking(f).await {
        Ok(result) => result.map_err(E::from),
        Err(e) => Err(E::from(KvError::Pool(e))),
    }
}

impl KvAccess {
    /// `None` unless granted: the glue turns that into a typed `denied`
    /// error, never a trap.
    fn check(&self) -> Option<&Self> {
        self.granted.then_some(self)
    }
}

/// The WIT glue, identical for every API version that has this interface
/// (each version's bindings are distinct types).
macro_rules! kv_glue {
    ($wit:path) => {
        const _: () = {
            use $wit as wit;

            impl From<KvError> for wit::Error {
                fn from(e: KvError) -> Self {
                    match e {
                        KvError::QuotaExceeded { used, limit } => {
                            wit::Error::QuotaExceeded(wit::Quota {
                                used_bytes: used,
                                limit_bytes: limit,
                            })
                        }
                        KvError::ValueTooLarge(max) => wit::Error::ValueTooLarge(max),
                        KvError::InvalidKey => wit::Error::InvalidKey(MAX_KEY_BYTES),
                        KvError::NotAnInteger => wit::Error::NotAnInteger,
                        KvError::Sqlite(e) => {
                            tracing::error!(error = %e, "key-value storage failed");
                            wit::Error::Unavailable("storage failed; see the host log".into())
                        }
                        KvError::Pool(e) => {
                            tracing::error!(error = %e, "key-value storage failed");
                            wit::Error::Unavailable("storage failed; see the host log".into())
                        }
                    }
                }
            }

            impl wit::Host for HostState {
                async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.get(&kv.plugin, &key)
                    })
                    .await
                }

                async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.set(&kv.plugin, &key, &value, kv.quota)
                    })
                    .await
                }

                async fn delete(&mut self, key: String) -> Result<bool, wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.delete(&kv.plugin, &key)
                    })
                    .await
                }

                async fn increment(&mut self, key: String, delta: i64) -> Result<i64, wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.increment(&kv.plugin, &key, delta, kv.quota)
                    })
                    .await
                }

                async fn list_keys(
                    &mut self,
                    prefix: String,
                    limit: u32,
                ) -> Result<Vec<String>, wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.list_keys(&kv.plugin, &prefix, limit.min(10_000))
                    })
                    .await
                }

                async fn usage(&mut self) -> Result<wit::Quota, wit::Error> {
                    let kv = self.kv.check().ok_or(wit::Error::Denied)?.clone();
                    let limit = kv.quota.bytes;
                    let used = off_worker::<_, wit::Error>(self.budgets.clone(), move || {
                        kv.store.usage(&kv.plugin)
                    })
                    .await?;
                    Ok(wit::Quota {
                        used_bytes: used,
                        limit_bytes: limit,
                    })
                }
            }
        };
    };
}

kv_glue!(v0_1_0::callboard::plugin::kv);
kv_glue!(v0_2_0::callboard::plugin::kv);
kv_glue!(v0_3_0::callboard::plugin::kv);
