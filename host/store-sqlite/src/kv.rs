//! Plugins' key-value data in `kv.sqlite`.

use std::sync::Arc;

use callboard_store::kv::{KvError, KvStore, Quota, check_key};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::db::Db;
use crate::{Error, Res};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the store.
    "CREATE TABLE IF NOT EXISTS kv (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value BLOB NOT NULL,
         PRIMARY KEY (plugin, key)
     ) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS kv_usage (plugin TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;",
];

pub(crate) struct SqliteKv {
    db: Arc<Db>,
}

/// A key-value failure inside a blocking call, or the database's.
fn kv_error(e: callboard_store::StoreError) -> KvError {
    KvError::Store(e)
}

/// Carries a [`KvError`] out of a blocking call as a store error and back.
struct Refused(KvError);

impl SqliteKv {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// Runs `f` in a write transaction with the plugin's usage; `f` returns
    /// the new usage, stored in the same transaction.
    async fn write<R: Send + 'static>(
        &self,
        plugin: &str,
        f: impl FnOnce(&Transaction<'_>, u64) -> Result<(u64, R), KvOrSql> + Send + 'static,
    ) -> Result<R, KvError> {
        let plugin = plugin.to_owned();
        let refused = Arc::new(std::sync::Mutex::new(None::<Refused>));
        let slot = refused.clone();
        let result = self
            .db
            .write(move |tx| {
                let used = usage(tx, &plugin)?;
                let (after, result) = match f(tx, used) {
                    Ok(v) => v,
                    Err(KvOrSql::Kv(e)) => {
                        *slot
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Refused(e));
                        return Err(Error::Store(callboard_store::StoreError::Input(
                            "refused".into(),
                        )));
                    }
                    Err(KvOrSql::Sql(e)) => return Err(e),
                };
                if after != used {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO kv_usage (plugin, bytes) VALUES (?1, ?2)",
                    )?
                    .execute(params![plugin, to_sql(after)])?;
                }
                Ok(result)
            })
            .await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let taken = refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                Err(taken.map_or_else(|| kv_error(e), |Refused(k)| k))
            }
        }
    }
}

/// A refusal (quota, not an integer) or a database error.
pub(crate) enum KvOrSql {
    Kv(KvError),
    Sql(Error),
}

impl From<rusqlite::Error> for KvOrSql {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(Error::Sql(e))
    }
}

impl From<Error> for KvOrSql {
    fn from(e: Error) -> Self {
        Self::Sql(e)
    }
}

#[async_trait::async_trait]
impl KvStore for SqliteKv {
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.db
            .read(move |c| {
                Ok(
                    c.prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                        .query_row(params![plugin, key], |r| r.get(0))
                        .optional()?,
                )
            })
            .await
            .map_err(kv_error)
    }

    async fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: Quota,
    ) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() as u64 > quota.max_value_bytes {
            return Err(KvError::ValueTooLarge(quota.max_value_bytes));
        }
        let (p, key, value) = (plugin.to_owned(), key.to_owned(), value.to_vec());
        self.write(plugin, move |tx, used| {
            let old = entry_size(tx, &p, &key)?;
            let new = (key.len() + value.len()) as u64;
            let after = used - old.unwrap_or(0).min(used) + new;
            if after > quota.bytes && new > old.unwrap_or(0) {
                return Err(KvOrSql::Kv(KvError::QuotaExceeded {
                    used,
                    limit: quota.bytes,
                }));
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![p, key, value])?;
            Ok((after, ()))
        })
        .await
    }

    async fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let (p, key) = (plugin.to_owned(), key.to_owned());
        self.write(plugin, move |tx, used| {
            let Some(old) = entry_size(tx, &p, &key)? else {
                return Ok((used, false));
            };
            tx.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?
                .execute(params![p, key])?;
            Ok((used.saturating_sub(old), true))
        })
        .await
    }

    async fn increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError> {
        check_key(key)?;
        let (p, key) = (plugin.to_owned(), key.to_owned());
        self.write(plugin, move |tx, used| {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?
                .query_row(params![p, key], |r| r.get(0))
                .optional()?;
            let (value, used) = match current {
                Some(bytes) => {
                    let bytes: [u8; 8] = bytes
                        .try_into()
                        .map_err(|_| KvOrSql::Kv(KvError::NotAnInteger))?;
                    (i64::from_le_bytes(bytes).wrapping_add(delta), used)
                }
                None => {
                    let after = used + key.len() as u64 + 8;
                    if after > quota.bytes {
                        return Err(KvOrSql::Kv(KvError::QuotaExceeded {
                            used,
                            limit: quota.bytes,
                        }));
                    }
                    (delta, after)
                }
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![p, key, value.to_le_bytes().as_slice()])?;
            Ok((used, value))
        })
        .await
    }

    async fn list_keys(
        &self,
        plugin: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
                )?;
                let mut keys = Vec::new();
                // `key >= prefix` starts the scan at the prefix; keys with the
                // prefix sort contiguously, so stop at the first one past it.
                let rows =
                    stmt.query_map(params![plugin, prefix, limit], |r| r.get::<_, String>(0))?;
                for key in rows {
                    let key = key?;
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    keys.push(key);
                }
                Ok(keys)
            })
            .await
            .map_err(kv_error)
    }

    async fn usage(&self, plugin: &str) -> Result<u64, KvError> {
        let plugin = plugin.to_owned();
        self.db
            .read(move |c| usage(c, &plugin))
            .await
            .map_err(kv_error)
    }

    async fn purge(&self, plugin: &str) -> Result<(), KvError> {
        let plugin = plugin.to_owned();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM kv WHERE plugin = ?1", [&plugin])?;
                tx.execute("DELETE FROM kv_usage WHERE plugin = ?1", [&plugin])?;
                Ok(())
            })
            .await
            .map_err(kv_error)
    }
}

fn usage(c: &Connection, plugin: &str) -> Res<u64> {
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

fn entry_size(c: &Connection, plugin: &str, key: &str) -> Res<Option<u64>> {
    let size: Option<i64> = c
        .prepare_cached(
            "SELECT length(CAST(key AS BLOB)) + length(value) FROM kv WHERE plugin = ?1 AND key = ?2",
        )?
        .query_row(params![plugin, key], |r| r.get(0))
        .optional()?;
    Ok(size.map(from_sql))
}
