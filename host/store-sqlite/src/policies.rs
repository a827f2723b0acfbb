//! Access policy versions in `catalog.sqlite` (with the feed, so a
//! publication and its [`ACCESS_TOPIC`] event commit together). Every
//! change runs in one IMMEDIATE transaction on the file's writer: two
//! handles (or processes) on one file take turns, which makes `seed` and
//! `publish` race-free; partial unique indexes keep at most one draft and
//! one published version whatever happens.

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::access::{
    ACCESS_TOPIC, PolicyState, PolicyStore, PolicyVersion, SEED_AUTHOR, check_policy_document,
    check_text,
};
use rusqlite::{Connection, Row, params};

use crate::coord::{SqliteFeed, append};
use crate::db::Db;

/// Ids are AUTOINCREMENT: a discarded draft's id is never given again, so
/// a stale `publish(id)` cannot publish a newer draft.
pub(crate) const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS policy_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('draft', 'published', 'inactive')),
    document TEXT NOT NULL,
    author TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    published_ms INTEGER,
    published_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS policy_one_draft ON policy_versions (state) WHERE state = 'draft';
CREATE UNIQUE INDEX IF NOT EXISTS policy_one_published ON policy_versions (state) WHERE state = 'published';"];

/// The columns [`version`] reads, in its order.
const COLUMNS: &str = "id, state, document, author, created_ms, published_ms, published_by";

/// The event of a publication.
fn event(id: i64) -> String {
    serde_json::json!({ "version": id }).to_string()
}

/// A version read with [`COLUMNS`] (the state still as text).
fn raw(r: &Row<'_>) -> rusqlite::Result<(PolicyVersion, String)> {
    Ok((
        PolicyVersion {
            id: r.get(0)?,
            state: PolicyState::Draft,
            document: r.get(2)?,
            author: r.get(3)?,
            created_ms: r.get(4)?,
            published_ms: r.get(5)?,
            published_by: r.get(6)?,
        },
        r.get(1)?,
    ))
}

/// Versions matching `filter` (SQL after `WHERE`, which may use `?1` for
/// `param`; SQLite counts parameters up to the highest index, so an
/// unused `?1` is fine), newest first, at most `limit`.
fn select(c: &Connection, filter: &str, param: i64, limit: i64) -> crate::Res<Vec<PolicyVersion>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE {filter} ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![param, limit], raw)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut version, state) = row?;
        version.state = PolicyState::parse(&state)?;
        out.push(version);
    }
    Ok(out)
}

pub(crate) struct SqlitePolicies {
    db: Arc<Db>,
    feed: Arc<SqliteFeed>,
}

impl SqlitePolicies {
    pub(crate) fn new(db: Arc<Db>, feed: Arc<SqliteFeed>) -> Self {
        Self { db, feed }
    }

    /// The one version `filter` selects, if any.
    async fn one(&self, filter: &'static str, param: i64) -> Result<Option<PolicyVersion>> {
        self.db
            .read(move |c| Ok(select(c, filter, param, 1)?.into_iter().next()))
            .await
    }
}

#[async_trait::async_trait]
impl PolicyStore for SqlitePolicies {
    async fn published(&self) -> Result<Option<PolicyVersion>> {
        self.one("state = 'published'", 0).await
    }

    async fn version(&self, id: i64) -> Result<Option<PolicyVersion>> {
        self.one("id = ?1", id).await
    }

    async fn versions(&self, limit: usize) -> Result<Vec<PolicyVersion>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.read(move |c| select(c, "true", 0, limit)).await
    }

    async fn save_draft(&self, document: &str, author: &str, now_ms: i64) -> Result<i64> {
        check_policy_document(document, author)?;
        let (document, author) = (document.to_owned(), author.to_owned());
        self.db
            .write(move |tx| {
                // A new id at every save: a publish of the id a reviewer
                // saw refuses an edit made since.
                tx.execute("DELETE FROM policy_versions WHERE state = 'draft'", [])?;
                Ok(tx.query_row(
                    "INSERT INTO policy_versions (state, document, author, created_ms)
                     VALUES ('draft', ?1, ?2, ?3) RETURNING id",
                    params![document, author, now_ms],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    async fn discard_draft(&self) -> Result<bool> {
        self.db
            .write(|tx| {
                Ok(tx.execute("DELETE FROM policy_versions WHERE state = 'draft'", [])? > 0)
            })
            .await
    }

    async fn publish(&self, id: i64, by: &str, now_ms: i64) -> Result<bool> {
        check_text("policy publisher", by)?;
        let by = by.to_owned();
        let seq = self
            .db
            .write(move |tx| {
                let is_draft: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM policy_versions WHERE id = ?1 AND state = 'draft')",
                    [id],
                    |r| r.get(0),
                )?;
                if !is_draft {
                    return Ok(None);
                }
                tx.execute(
                    "UPDATE policy_versions SET state = 'inactive' WHERE state = 'published'",
                    [],
                )?;
                tx.execute(
                    "UPDATE policy_versions SET state = 'published', published_ms = ?2, published_by = ?3
                     WHERE id = ?1",
                    params![id, now_ms, by],
                )?;
                Ok(Some(append(tx, ACCESS_TOPIC, &event(id))?))
            })
            .await?;
        Ok(seq.map(|seq| self.feed.notify(seq)).is_some())
    }

    async fn seed(&self, document: &str, now_ms: i64) -> Result<bool> {
        check_policy_document(document, SEED_AUTHOR)?;
        let document = document.to_owned();
        let seq = self
            .db
            .write(move |tx| {
                let any: bool =
                    tx.query_row("SELECT EXISTS (SELECT 1 FROM policy_versions)", [], |r| {
                        r.get(0)
                    })?;
                if any {
                    return Ok(None);
                }
                let id: i64 = tx.query_row(
                    "INSERT INTO policy_versions
                         (state, document, author, created_ms, published_ms, published_by)
                     VALUES ('published', ?1, ?2, ?3, ?3, ?2) RETURNING id",
                    params![document, SEED_AUTHOR, now_ms],
                    |r| r.get(0),
                )?;
                Ok(Some(append(tx, ACCESS_TOPIC, &event(id))?))
            })
            .await?;
        Ok(seq.map(|seq| self.feed.notify(seq)).is_some())
    }
}
