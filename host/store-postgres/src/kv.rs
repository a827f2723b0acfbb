//! Plugins' key-value data.
//!
//! Writes run in a transaction that first takes a transaction-scoped
//! advisory lock on the plugin, so usage (kept in `kv_usage` in the same
//! transaction) stays exact under concurrent writes from every replica.
//! Keys are stored as `bytea`: byte order (like SQLite's `BINARY`) and no
//! restriction on the characters a key holds.

use std::sync::Arc;

use callboard_store::kv::{KvError, KvStore, Quota, check_key};
use callboard_store::{Result, StoreError};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::Client;

use crate::Db;
use crate::error::pg;

/// First key of the two-key advisory locks on a plugin's data.
const KV_LOCK_CLASS: i32 = 0x6b76; // "kv"

/// Plugins' key-value data on PostgreSQL.
pub(crate) struct PgKv {
    db: Arc<Db>,
}

impl PgKv {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// Opens a write transaction holding the plugin's lock; returns it with the
/// plugin's usage.
async fn begin<'c>(client: &'c mut Object, plugin: &str) -> Result<(Transaction<'c>, u64)> {
    let tx = client.transaction().await.map_err(|e| pg(&e))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&KV_LOCK_CLASS, &plugin],
    )
    .await
    .map_err(|e| pg(&e))?;
    let used = usage(tx.client(), plugin).await?;
    Ok((tx, used))
}

/// Stores the plugin's new usage and commits.
async fn commit(tx: Transaction<'_>, plugin: &str, used: u64, after: u64) -> Result<()> {
    if after != used {
        if after == 0 {
            tx.execute("DELETE FROM kv_usage WHERE plugin = $1", &[&plugin])
                .await
                .map_err(|e| pg(&e))?;
        } else {
            tx.execute(
                "INSERT INTO kv_usage (plugin, bytes) VALUES ($1, $2)
                 ON CONFLICT (plugin) DO UPDATE SET bytes = EXCLUDED.bytes",
                &[&plugin, &to_sql(after)],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
    }
    tx.commit().await.map_err(|e| pg(&e))
}

fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

async fn usage(c: &Client, plugin: &str) -> Result<u64, StoreError> {
    let row = c
        .query_opt("SELECT bytes FROM kv_usage WHERE plugin = $1", &[&plugin])
        .await
        .map_err(|e| pg(&e))?;
    Ok(row
        .map(|r| r.try_get::<_, i64>(0))
        .transpose()
        .map_err(|e| pg(&e))?
        .map_or(0, from_sql))
}

/// Bytes of an entry (key + value), if it exists.
async fn entry_size(c: &Client, plugin: &str, key: &str) -> Result<Option<u64>, StoreError> {
    let row = c
        .query_opt(
            "SELECT octet_length(key) + octet_length(value) FROM kv WHERE plugin = $1 AND key = $2",
            &[&plugin, &key.as_bytes()],
        )
        .await
        .map_err(|e| pg(&e))?;
    Ok(row
        .map(|r| r.try_get::<_, i32>(0))
        .transpose()
        .map_err(|e| pg(&e))?
        .map(|n| u64::try_from(n).unwrap_or(0)))
}

async fn put(c: &Client, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (plugin, key) DO UPDATE SET value = EXCLUDED.value",
        &[&plugin, &key.as_bytes(), &value],
    )
    .await
    .map_err(|e| pg(&e))?;
    Ok(())
}

#[async_trait::async_trait]
impl KvStore for PgKv {
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
                &[&plugin, &key.as_bytes()],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(row
            .map(|r| r.try_get::<_, Vec<u8>>(0))
            .transpose()
            .map_err(|e| pg(&e))?)
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
        let mut client = self.db.get().await?;
        let (tx, used) = begin(&mut client, plugin).await?;
        let c = tx.client();
        let old = entry_size(c, plugin, key).await?;
        let new = (key.len() + value.len()) as u64;
        let after = used.saturating_sub(old.unwrap_or(0)) + new;
        if after > quota.bytes && new > old.unwrap_or(0) {
            return Err(KvError::QuotaExceeded {
                used,
                limit: quota.bytes,
            });
        }
        put(c, plugin, key, value).await?;
        Ok(commit(tx, plugin, used, after).await?)
    }

    async fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let mut client = self.db.get().await?;
        let (tx, used) = begin(&mut client, plugin).await?;
        let c = tx.client();
        let Some(old) = entry_size(c, plugin, key).await? else {
            return Ok(false);
        };
        c.execute(
            "DELETE FROM kv WHERE plugin = $1 AND key = $2",
            &[&plugin, &key.as_bytes()],
        )
        .await
        .map_err(|e| pg(&e))?;
        commit(tx, plugin, used, used.saturating_sub(old)).await?;
        Ok(true)
    }

    async fn increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError> {
        check_key(key)?;
        let mut client = self.db.get().await?;
        let (tx, used) = begin(&mut client, plugin).await?;
        let c = tx.client();
        let current = c
            .query_opt(
                "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
                &[&plugin, &key.as_bytes()],
            )
            .await
            .map_err(|e| pg(&e))?
            .map(|r| r.try_get::<_, Vec<u8>>(0))
            .transpose()
            .map_err(|e| pg(&e))?;
        let (value, after) = match current {
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
        put(c, plugin, key, &value.to_le_bytes()).await?;
        commit(tx, plugin, used, after).await?;
        Ok(value)
    }

    async fn list_keys(
        &self,
        plugin: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, KvError> {
        let client = self.db.get().await?;
        // `key >= prefix` starts the scan at the prefix; keys with the prefix
        // sort contiguously, so the first one without it ends the list.
        let rows = client
            .query(
                "SELECT key FROM kv WHERE plugin = $1 AND key >= $2 ORDER BY key LIMIT $3",
                &[&plugin, &prefix.as_bytes(), &i64::from(limit)],
            )
            .await
            .map_err(|e| pg(&e))?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: Vec<u8> = row.try_get(0).map_err(|e| pg(&e))?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let key = String::from_utf8(key).map_err(|_| {
                StoreError::Corrupt(format!("key-value key of {plugin} is not UTF-8"))
            })?;
            keys.push(key);
        }
        Ok(keys)
    }

    async fn usage(&self, plugin: &str) -> Result<u64, KvError> {
        let client = self.db.get().await?;
        Ok(usage(&client, plugin).await?)
    }

    async fn purge(&self, plugin: &str) -> Result<(), KvError> {
        let mut client = self.db.get().await?;
        let (tx, used) = begin(&mut client, plugin).await?;
        tx.execute("DELETE FROM kv WHERE plugin = $1", &[&plugin])
            .await
            .map_err(|e| pg(&e))?;
        Ok(commit(tx, plugin, used, 0).await?)
    }
}
