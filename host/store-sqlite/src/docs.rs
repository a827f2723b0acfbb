//! Rendered TechDocs sites in `catalog.sqlite`, beside the search index, so
//! a build's pages and their search documents commit together.

use std::collections::BTreeMap;
use std::sync::Arc;

use callboard_store::Result;
use callboard_store::docs::{
    AssetRow, DocsStore, PageRow, SiteRow, SiteUpdate, page_group, site_group_prefix,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Res;
use crate::db::Db;

pub(crate) const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS docs_sites (
    entity_ref TEXT PRIMARY KEY,
    meta TEXT NOT NULL,
    manifest TEXT NOT NULL,
    built_at INTEGER NOT NULL,
    etag TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs_pages (
    entity_ref TEXT NOT NULL,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    html TEXT NOT NULL,
    meta TEXT NOT NULL,
    hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (entity_ref, path)
);
CREATE TABLE IF NOT EXISTS docs_assets (
    entity_ref TEXT NOT NULL,
    path TEXT NOT NULL,
    content_type TEXT NOT NULL,
    hash TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (entity_ref, path)
);
"];

pub(crate) struct SqliteDocs {
    db: Arc<Db>,
}

impl SqliteDocs {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn site_from(r: &Row<'_>, with_manifest: bool) -> rusqlite::Result<SiteRow> {
    Ok(SiteRow {
        entity_ref: r.get(0)?,
        meta: json(&r.get::<_, String>(1)?),
        manifest: if with_manifest {
            json(&r.get::<_, String>(2)?)
        } else {
            serde_json::Value::Null
        },
        built_at: r.get(3)?,
        etag: r.get(4)?,
    })
}

fn remove_site(tx: &Connection, entity_ref: &str) -> Res<bool> {
    let n = tx
        .prepare_cached("DELETE FROM docs_sites WHERE entity_ref = ?1")?
        .execute([entity_ref])?;
    tx.prepare_cached("DELETE FROM docs_pages WHERE entity_ref = ?1")?
        .execute([entity_ref])?;
    tx.prepare_cached("DELETE FROM docs_assets WHERE entity_ref = ?1")?
        .execute([entity_ref])?;
    let prefix = format!(
        "{}%",
        crate::query::escape_like(&site_group_prefix(entity_ref))
    );
    tx.prepare_cached("DELETE FROM search_docs WHERE grp LIKE ?1 ESCAPE '\\'")?
        .execute([prefix])?;
    Ok(n > 0)
}

#[async_trait::async_trait]
impl DocsStore for SqliteDocs {
    async fn put_site(&self, entity_ref: &str, update: SiteUpdate) -> Result<()> {
        let entity_ref = entity_ref.to_owned();
        self.db
            .write(move |tx| {
                if let Some(site) = &update.site {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO docs_sites (entity_ref, meta, manifest, built_at, etag)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        entity_ref,
                        site.meta.to_string(),
                        site.manifest.to_string(),
                        site.built_at,
                        site.etag
                    ])?;
                }
                let mut page = tx.prepare_cached(
                    "INSERT OR REPLACE INTO docs_pages (entity_ref, path, title, html, meta, hash, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for p in &update.pages {
                    page.execute(params![
                        entity_ref,
                        p.path,
                        p.title,
                        p.html,
                        p.meta.to_string(),
                        p.hash,
                        p.updated_at
                    ])?;
                }
                let mut gone =
                    tx.prepare_cached("DELETE FROM docs_pages WHERE entity_ref = ?1 AND path = ?2")?;
                for path in &update.removed_pages {
                    gone.execute(params![entity_ref, path])?;
                    crate::search::replace_group(tx, &page_group(&entity_ref, path), &[])?;
                }
                for (path, docs) in &update.search {
                    crate::search::replace_group(tx, &page_group(&entity_ref, path), docs)?;
                }
                let mut asset = tx.prepare_cached(
                    "INSERT OR REPLACE INTO docs_assets (entity_ref, path, content_type, hash, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for a in &update.assets {
                    asset.execute(params![entity_ref, a.path, a.content_type, a.hash, a.bytes])?;
                }
                let mut gone =
                    tx.prepare_cached("DELETE FROM docs_assets WHERE entity_ref = ?1 AND path = ?2")?;
                for path in &update.removed_assets {
                    gone.execute(params![entity_ref, path])?;
                }
                Ok(())
            })
            .await
    }

    async fn site(&self, entity_ref: &str, manifest: bool) -> Result<Option<SiteRow>> {
        let entity_ref = entity_ref.to_owned();
        self.db
            .read(move |conn| {
                let sql = if manifest {
                    "SELECT entity_ref, meta, manifest, built_at, etag FROM docs_sites WHERE entity_ref = ?1"
                } else {
                    "SELECT entity_ref, meta, '', built_at, etag FROM docs_sites WHERE entity_ref = ?1"
                };
                Ok(conn
                    .prepare_cached(sql)?
                    .query_row([entity_ref], |r| site_from(r, manifest))
                    .optional()?)
            })
            .await
    }

    async fn sites(&self) -> Result<Vec<SiteRow>> {
        self.db
            .read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT entity_ref, meta, '', built_at, etag FROM docs_sites ORDER BY entity_ref",
                )?;
                let rows = stmt.query_map([], |r| site_from(r, false))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn page(&self, entity_ref: &str, path: &str) -> Result<Option<PageRow>> {
        let (entity_ref, path) = (entity_ref.to_owned(), path.to_owned());
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT path, title, html, meta, hash, updated_at FROM docs_pages
                         WHERE entity_ref = ?1 AND path = ?2",
                    )?
                    .query_row([entity_ref, path], |r| {
                        Ok(PageRow {
                            path: r.get(0)?,
                            title: r.get(1)?,
                            html: r.get(2)?,
                            meta: json(&r.get::<_, String>(3)?),
                            hash: r.get(4)?,
                            updated_at: r.get(5)?,
                        })
                    })
                    .optional()?)
            })
            .await
    }

    async fn page_titles(&self, entity_ref: &str) -> Result<Vec<(String, String)>> {
        let entity_ref = entity_ref.to_owned();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT path, title FROM docs_pages WHERE entity_ref = ?1 ORDER BY path",
                )?;
                let rows = stmt.query_map([entity_ref], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn asset(&self, entity_ref: &str, path: &str) -> Result<Option<AssetRow>> {
        let (entity_ref, path) = (entity_ref.to_owned(), path.to_owned());
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT path, content_type, hash, bytes FROM docs_assets
                         WHERE entity_ref = ?1 AND path = ?2",
                    )?
                    .query_row([entity_ref, path], |r| {
                        Ok(AssetRow {
                            path: r.get(0)?,
                            content_type: r.get(1)?,
                            hash: r.get(2)?,
                            bytes: r.get(3)?,
                        })
                    })
                    .optional()?)
            })
            .await
    }

    async fn asset_hashes(&self, entity_ref: &str) -> Result<BTreeMap<String, String>> {
        let entity_ref = entity_ref.to_owned();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT path, hash FROM docs_assets WHERE entity_ref = ?1")?;
                let rows = stmt.query_map([entity_ref], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn remove_site(&self, entity_ref: &str) -> Result<bool> {
        let entity_ref = entity_ref.to_owned();
        self.db.write(move |tx| remove_site(tx, &entity_ref)).await
    }
}
