//! Installed plugin files, shared by replicas: one row per plugin with its
//! signed component and licence; every change appends a
//! [`PLUGINS_TOPIC`] event in the same transaction.

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::plugins::{PLUGINS_TOPIC, PluginEntry, PluginFiles, StoredPlugin};
use serde_json::{Value, json};

use crate::Db;
use crate::coord::append;
use crate::error::pg;

/// Plugin files on PostgreSQL.
pub(crate) struct PgPlugins {
    db: Arc<Db>,
}

impl PgPlugins {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The event of a change (`digest` is null for a removal).
fn event(id: &str, digest: Option<&str>) -> Value {
    json!({"id": id, "digest": digest})
}

#[async_trait::async_trait]
impl PluginFiles for PgPlugins {
    async fn put(&self, id: &str, digest: &str, wasm: &[u8], license: Option<&str>) -> Result<i64> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        tx.execute(
            "DELETE FROM plugin_removals WHERE id = $1 AND digest = $2",
            &[&id, &digest],
        )
        .await
        .map_err(|e| pg(&e))?;
        let row = tx
            .query_one(
                "INSERT INTO plugin_files AS p (id, digest, wasm, license, revision)
             VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest, wasm = EXCLUDED.wasm,
                 license = coalesce(EXCLUDED.license, p.license), revision = p.revision + 1
             RETURNING revision",
                &[&id, &digest, &wasm, &license],
            )
            .await
            .map_err(|e| pg(&e))?;
        let revision: i64 = row.try_get(0).map_err(|e| pg(&e))?;
        append(tx.client(), PLUGINS_TOPIC, &event(id, Some(digest))).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(revision)
    }

    async fn put_license(&self, id: &str, license: &str) -> Result<Option<i64>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let Some(row) = tx
            .query_opt(
                "UPDATE plugin_files SET license = $2, revision = revision + 1 WHERE id = $1
                 RETURNING digest, revision",
                &[&id, &license],
            )
            .await
            .map_err(|e| pg(&e))?
        else {
            return Ok(None);
        };
        let digest: String = row.try_get(0).map_err(|e| pg(&e))?;
        let revision: i64 = row.try_get(1).map_err(|e| pg(&e))?;
        append(tx.client(), PLUGINS_TOPIC, &event(id, Some(&digest))).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(Some(revision))
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let Some(row) = tx
            .query_opt(
                "DELETE FROM plugin_files WHERE id = $1 RETURNING digest",
                &[&id],
            )
            .await
            .map_err(|e| pg(&e))?
        else {
            return Ok(false);
        };
        let digest: String = row.try_get(0).map_err(|e| pg(&e))?;
        tx.execute(
            "INSERT INTO plugin_removals (id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &digest],
        )
        .await
        .map_err(|e| pg(&e))?;
        append(tx.client(), PLUGINS_TOPIC, &event(id, None)).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(true)
    }

    async fn removed(&self) -> Result<Vec<(String, String)>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT id, digest FROM plugin_removals ORDER BY id, digest",
                &[],
            )
            .await
            .map_err(|e| pg(&e))?;
        crate::error::pairs(&rows)
    }

    async fn list(&self) -> Result<Vec<PluginEntry>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT id, digest, revision FROM plugin_files ORDER BY id",
                &[],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| {
                Ok(PluginEntry {
                    id: r.try_get(0).map_err(|e| pg(&e))?,
                    digest: r.try_get(1).map_err(|e| pg(&e))?,
                    revision: r.try_get(2).map_err(|e| pg(&e))?,
                })
            })
            .collect()
    }

    async fn get(&self, id: &str) -> Result<Option<StoredPlugin>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT id, digest, wasm, license, revision FROM plugin_files WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(|e| pg(&e))?;
        row.map(|r| {
            Ok(StoredPlugin {
                id: r.try_get(0).map_err(|e| pg(&e))?,
                digest: r.try_get(1).map_err(|e| pg(&e))?,
                wasm: r.try_get(2).map_err(|e| pg(&e))?,
                license: r.try_get(3).map_err(|e| pg(&e))?,
                revision: r.try_get(4).map_err(|e| pg(&e))?,
            })
        })
        .transpose()
    }
}
