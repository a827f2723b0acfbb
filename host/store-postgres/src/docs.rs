//! Rendered TechDocs sites, beside the search index, so a build's pages
//! and their search documents commit together.

use std::collections::BTreeMap;
use std::sync::Arc;

use callboard_store::Result;
use callboard_store::docs::{
    AssetRow, DocsStore, PageRow, SiteRow, SiteUpdate, page_group, site_group_prefix,
};
use callboard_store::search::SearchDoc;
use serde_json::Value;
use tokio_postgres::Row;

use crate::Db;
use crate::error::pg;
use crate::query::escape_like;

/// The manifest as text: it is read and written whole by the builder only,
/// and a `jsonb` column made every one-page rebuild parse and re-encode a
/// megabyte on the server (a 5,000-page site's manifest); stored
/// uncompressed, as compressing it again on every rebuild costs more than
/// the space it saves.
pub(crate) const DOCS_V2: &str = r#"
ALTER TABLE docs_sites ALTER COLUMN manifest TYPE text USING manifest::text;
ALTER TABLE docs_sites ALTER COLUMN manifest SET STORAGE EXTERNAL;
"#;

/// The `docs` store's first migration.
pub(crate) const DOCS_V1: &str = r#"
CREATE TABLE IF NOT EXISTS docs_sites (
    entity_ref text COLLATE "C" PRIMARY KEY,
    meta jsonb NOT NULL,
    manifest jsonb NOT NULL,
    built_at bigint NOT NULL,
    etag text NOT NULL
);
CREATE TABLE IF NOT EXISTS docs_pages (
    entity_ref text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    title text NOT NULL,
    html text NOT NULL,
    meta jsonb NOT NULL,
    hash text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (entity_ref, path)
);
CREATE TABLE IF NOT EXISTS docs_assets (
    entity_ref text COLLATE "C" NOT NULL,
    path text COLLATE "C" NOT NULL,
    content_type text NOT NULL,
    hash text NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (entity_ref, path)
);
"#;

pub(crate) struct PgDocs {
    db: Arc<Db>,
}

impl PgDocs {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// PostgreSQL text cannot hold NUL characters.
fn clean(s: &str) -> String {
    s.replace('\0', "")
}

/// JSON for a `jsonb` column (which refuses `\u0000`).
fn jsonb(v: &Value) -> Value {
    serde_json::from_str(&v.to_string().replace("\\u0000", "")).unwrap_or(Value::Null)
}

fn site_from(row: &Row) -> SiteRow {
    SiteRow {
        entity_ref: row.get(0),
        meta: row.get(1),
        manifest: row
            .get::<_, Option<&str>>(2)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null),
        built_at: row.get(3),
        etag: row.get(4),
    }
}

#[async_trait::async_trait]
impl DocsStore for PgDocs {
    async fn put_site(&self, entity_ref: &str, update: SiteUpdate) -> Result<()> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        if let Some(site) = &update.site {
            tx.execute(
                "INSERT INTO docs_sites (entity_ref, meta, manifest, built_at, etag)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (entity_ref) DO UPDATE SET meta = EXCLUDED.meta,
                   manifest = EXCLUDED.manifest, built_at = EXCLUDED.built_at, etag = EXCLUDED.etag",
                &[
                    &entity_ref,
                    &jsonb(&site.meta),
                    // JSON escapes NUL, so its text is valid `text`.
                    &site.manifest.to_string(),
                    &site.built_at,
                    &site.etag,
                ],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        let page = tx
            .prepare(
                "INSERT INTO docs_pages (entity_ref, path, title, html, meta, hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (entity_ref, path) DO UPDATE SET title = EXCLUDED.title,
                   html = EXCLUDED.html, meta = EXCLUDED.meta, hash = EXCLUDED.hash,
                   updated_at = EXCLUDED.updated_at",
            )
            .await
            .map_err(|e| pg(&e))?;
        for p in &update.pages {
            tx.execute(
                &page,
                &[
                    &entity_ref,
                    &clean(&p.path),
                    &clean(&p.title),
                    &clean(&p.html),
                    &jsonb(&p.meta),
                    &p.hash,
                    &p.updated_at,
                ],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        if !update.removed_pages.is_empty() {
            tx.execute(
                "DELETE FROM docs_pages WHERE entity_ref = $1 AND path = ANY($2)",
                &[&entity_ref, &update.removed_pages],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        let mut clear: Vec<String> = update
            .removed_pages
            .iter()
            .map(|p| page_group(entity_ref, p))
            .collect();
        let mut docs: Vec<(String, &SearchDoc)> = Vec::new();
        for (path, page_docs) in &update.search {
            let group = page_group(entity_ref, path);
            clear.push(group.clone());
            docs.extend(page_docs.iter().map(|d| (group.clone(), d)));
        }
        crate::search::write_docs(tx.client(), &clear, &docs).await?;
        for a in &update.assets {
            tx.execute(
                "INSERT INTO docs_assets (entity_ref, path, content_type, hash, bytes)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (entity_ref, path) DO UPDATE SET content_type = EXCLUDED.content_type,
                   hash = EXCLUDED.hash, bytes = EXCLUDED.bytes",
                &[
                    &entity_ref,
                    &clean(&a.path),
                    &a.content_type,
                    &a.hash,
                    &a.bytes,
                ],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        if !update.removed_assets.is_empty() {
            tx.execute(
                "DELETE FROM docs_assets WHERE entity_ref = $1 AND path = ANY($2)",
                &[&entity_ref, &update.removed_assets],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        tx.commit().await.map_err(|e| pg(&e))
    }

    async fn site(&self, entity_ref: &str, manifest: bool) -> Result<Option<SiteRow>> {
        let client = self.db.get().await?;
        let sql = if manifest {
            "SELECT entity_ref, meta, manifest, built_at, etag FROM docs_sites WHERE entity_ref = $1"
        } else {
            "SELECT entity_ref, meta, NULL::text, built_at, etag FROM docs_sites WHERE entity_ref = $1"
        };
        let row = client
            .query_opt(sql, &[&entity_ref])
            .await
            .map_err(|e| pg(&e))?;
        Ok(row.as_ref().map(site_from))
    }

    async fn sites(&self) -> Result<Vec<SiteRow>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT entity_ref, meta, NULL::text, built_at, etag FROM docs_sites ORDER BY entity_ref",
                &[],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(rows.iter().map(site_from).collect())
    }

    async fn page(&self, entity_ref: &str, path: &str) -> Result<Option<PageRow>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT path, title, html, meta, hash, updated_at FROM docs_pages
                 WHERE entity_ref = $1 AND path = $2",
                &[&entity_ref, &path],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(row.map(|r| PageRow {
            path: r.get(0),
            title: r.get(1),
            html: r.get(2),
            meta: r.get(3),
            hash: r.get(4),
            updated_at: r.get(5),
        }))
    }

    async fn page_titles(&self, entity_ref: &str) -> Result<Vec<(String, String)>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT path, title FROM docs_pages WHERE entity_ref = $1 ORDER BY path",
                &[&entity_ref],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn asset(&self, entity_ref: &str, path: &str) -> Result<Option<AssetRow>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT path, content_type, hash, bytes FROM docs_assets
                 WHERE entity_ref = $1 AND path = $2",
                &[&entity_ref, &path],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(row.map(|r| AssetRow {
            path: r.get(0),
            content_type: r.get(1),
            hash: r.get(2),
            bytes: r.get(3),
        }))
    }

    async fn asset_hashes(&self, entity_ref: &str) -> Result<BTreeMap<String, String>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT path, hash FROM docs_assets WHERE entity_ref = $1",
                &[&entity_ref],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn remove_site(&self, entity_ref: &str) -> Result<bool> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let n = tx
            .execute(
                "DELETE FROM docs_sites WHERE entity_ref = $1",
                &[&entity_ref],
            )
            .await
            .map_err(|e| pg(&e))?;
        for sql in [
            "DELETE FROM docs_pages WHERE entity_ref = $1",
            "DELETE FROM docs_assets WHERE entity_ref = $1",
        ] {
            tx.execute(sql, &[&entity_ref]).await.map_err(|e| pg(&e))?;
        }
        let prefix = format!("{}%", escape_like(&site_group_prefix(entity_ref)));
        tx.execute("DELETE FROM search_docs WHERE grp LIKE $1", &[&prefix])
            .await
            .map_err(|e| pg(&e))?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(n > 0)
    }
}
