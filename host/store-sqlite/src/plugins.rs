//! Shared plugin files in `catalog.sqlite` (with the feed, so an install
//! and its event commit together). Single-node the plugins folder is the
//! source of truth; this store serves the same contract for conformance and
//! for tools that read it.

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::plugins::{PLUGINS_TOPIC, PluginEntry, PluginFiles, StoredPlugin};
use rusqlite::{OptionalExtension, params};

use crate::coord::{SqliteFeed, append};
use crate::db::Db;

pub(crate) const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS plugin_files (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    wasm BLOB NOT NULL,
    license TEXT,
    revision INTEGER NOT NULL
) WITHOUT ROWID;",
    "
CREATE TABLE IF NOT EXISTS plugin_removals (
    id TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (id, digest)
) WITHOUT ROWID;",
];

pub(crate) struct SqlitePlugins {
    db: Arc<Db>,
    feed: Arc<SqliteFeed>,
}

impl SqlitePlugins {
    pub(crate) fn new(db: Arc<Db>, feed: Arc<SqliteFeed>) -> Self {
        Self { db, feed }
    }
}

fn event(id: &str, digest: Option<&str>) -> String {
    serde_json::json!({"id": id, "digest": digest}).to_string()
}

#[async_trait::async_trait]
impl PluginFiles for SqlitePlugins {
    async fn put(&self, id: &str, digest: &str, wasm: &[u8], license: Option<&str>) -> Result<i64> {
        let (id, digest, wasm, license) = (
            id.to_owned(),
            digest.to_owned(),
            wasm.to_vec(),
            license.map(str::to_owned),
        );
        let (seq, revision) = self
            .db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM plugin_removals WHERE id = ?1 AND digest = ?2",
                    params![id, digest],
                )?;
                let revision: i64 = tx.query_row(
                    "INSERT INTO plugin_files (id, digest, wasm, license, revision)
                     VALUES (?1, ?2, ?3, ?4, 1)
                     ON CONFLICT (id) DO UPDATE SET digest = ?2, wasm = ?3,
                       license = coalesce(?4, license), revision = revision + 1
                     RETURNING revision",
                    params![id, digest, wasm, license],
                    |r| r.get(0),
                )?;
                Ok((
                    append(tx, PLUGINS_TOPIC, &event(&id, Some(&digest)))?,
                    revision,
                ))
            })
            .await?;
        self.feed.notify(seq);
        Ok(revision)
    }

    async fn put_license(&self, id: &str, license: &str) -> Result<Option<i64>> {
        let (id, license) = (id.to_owned(), license.to_owned());
        let seq = self
            .db
            .write(move |tx| {
                let digest: Option<String> = tx
                    .query_row("SELECT digest FROM plugin_files WHERE id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let Some(digest) = digest else {
                    return Ok(None);
                };
                let revision: i64 = tx.query_row(
                    "UPDATE plugin_files SET license = ?2, revision = revision + 1 WHERE id = ?1 RETURNING revision",
                    params![id, license],
                    |r| r.get(0),
                )?;
                Ok(Some((append(tx, PLUGINS_TOPIC, &event(&id, Some(&digest)))?, revision)))
            })
            .await?;
        Ok(seq.map(|(seq, revision)| {
            self.feed.notify(seq);
            revision
        }))
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let seq = self
            .db
            .write(move |tx| {
                let digest: Option<String> = tx
                    .query_row(
                        "DELETE FROM plugin_files WHERE id = ?1 RETURNING digest",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(digest) = digest else {
                    return Ok(None);
                };
                tx.execute(
                    "INSERT OR IGNORE INTO plugin_removals (id, digest) VALUES (?1, ?2)",
                    params![id, digest],
                )?;
                Ok(Some(append(tx, PLUGINS_TOPIC, &event(&id, None))?))
            })
            .await?;
        if let Some(seq) = seq {
            self.feed.notify(seq);
        }
        Ok(seq.is_some())
    }

    async fn removed(&self) -> Result<Vec<(String, String)>> {
        self.db
            .read(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT id, digest FROM plugin_removals ORDER BY id, digest")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn list(&self) -> Result<Vec<PluginEntry>> {
        self.db
            .read(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT id, digest, revision FROM plugin_files ORDER BY id")?;
                let rows = stmt.query_map([], |r| {
                    Ok(PluginEntry {
                        id: r.get(0)?,
                        digest: r.get(1)?,
                        revision: r.get(2)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<StoredPlugin>> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT id, digest, wasm, license, revision FROM plugin_files WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(StoredPlugin {
                        id: r.get(0)?,
                        digest: r.get(1)?,
                        wasm: r.get(2)?,
                        license: r.get(3)?,
                        revision: r.get(4)?,
                    })
                })
                .optional()?)
            })
            .await
    }
}
