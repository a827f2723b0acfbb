//! The catalog in SQLite: schema, reads, and the ingestion writer.
//!
//! Layout, chosen for 100k+ entities:
//! - `entities`: one row per entity with the stored JSON (without relations,
//!   which are spliced in when read) and lower-cased identity columns.
//! - `search`: every leaf value of every entity as `(entity_id, key, value)`,
//!   lower-cased like Backstage's search table, but keyed by entity (cheap
//!   per-entity probes and deletes) with a covering `(key, value, original)`
//!   index (cheap filters and facets).
//! - `relations`: both directions of every relation, tagged with the entity
//!   whose spec produced them, so deleting or changing one entity never needs
//!   to touch the others' rows.
//! - `fts`: an FTS5 trigram index over the fields the full-text filter reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use callboard_store::catalog::{
    AncestryRow, ApplySummary, Change, EntityRecord, Finish, LocationRow, LocationSource,
    LocationWriter, ORPHAN_ANNOTATION, Put, SourceRow,
};
use callboard_store::coord::CATALOG_TOPIC;
use callboard_store::query::{FacetCount, Page, Position, Predicate, Selection, Start};
use callboard_store::{CatalogStore, Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use crate::coord::SqliteFeed;
use crate::db::Db;
use crate::{Res, query};

/// Ordered migrations; the index + 1 is the schema version.
pub(crate) const MIGRATIONS: &[&str] = &[
    concat!(
        r#"
CREATE TABLE IF NOT EXISTS locations (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (type, target)
);
CREATE TABLE IF NOT EXISTS entities (
    id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    location_id TEXT,
    parent_ref TEXT,
    location_key TEXT,
    hash TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    generation INTEGER NOT NULL,
    orphan INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_location ON entities (location_id);
CREATE INDEX IF NOT EXISTS entities_name ON entities (name, id);
CREATE TABLE IF NOT EXISTS search (
    entity_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    original TEXT,
    PRIMARY KEY (entity_id, key, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relations (
    origin_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    type TEXT NOT NULL COLLATE NOCASE,
    target TEXT NOT NULL,
    target_display TEXT NOT NULL,
    PRIMARY KEY (origin_id, source, type, target)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (doc, tokenize = 'trigram');
"#,
        "
CREATE INDEX IF NOT EXISTS search_kv ON search (key, value);
CREATE INDEX IF NOT EXISTS relations_source ON relations (source, type, target, target_display);
"
    ),
    SOURCES_V2,
    RELATIONS_TARGET_V3,
    crate::search::SEARCH_V4,
    crate::search::SEARCH_VOCAB_V5,
];

/// Content hashes of the files and URLs a location read cleanly, and the
/// entities by source (a one-file refresh).
const SOURCES_V2: &str = "
CREATE TABLE IF NOT EXISTS sources (
    location_id TEXT NOT NULL,
    key TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (location_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entities_source ON entities (location_key);
";

/// Relations by type and target, with their source: drives a query by a
/// relation condition such as the owner scope of a restricted reader
/// (`relations.ownedby IN (<their ownership refs>)`), which otherwise is
/// probed once per entity a page walks.
const RELATIONS_TARGET_V3: &str = "
CREATE INDEX IF NOT EXISTS relations_target ON relations (type, target, source);
";

/// Secondary indexes of `search`, `relations` and `entities`, rebuilt
/// after bulk loads.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS search_kv ON search (key, value);
CREATE INDEX IF NOT EXISTS relations_source ON relations (source, type, target, target_display);
CREATE INDEX IF NOT EXISTS relations_target ON relations (type, target, source);
CREATE INDEX IF NOT EXISTS entities_source ON entities (location_key);
";

/// A location's first load rebuilds the secondary indexes instead of
/// updating them when the catalog holds fewer entities than this.
const BULK_MAX_EXISTING: i64 = 1000;

pub(crate) struct SqliteCatalog {
    db: Arc<Db>,
    feed: Arc<SqliteFeed>,
}

impl SqliteCatalog {
    pub(crate) fn new(db: Arc<Db>, feed: Arc<SqliteFeed>) -> Self {
        Self { db, feed }
    }

    /// Runs a write that changes entities, appending its changes to the
    /// feed in the same transaction, and wakes followers after the commit.
    async fn write_changes<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Res<(T, Vec<Change>)> + Send + 'static,
    ) -> Result<(T, Vec<Change>)> {
        let (out, changes, seq) = self
            .db
            .write(move |tx| {
                let (out, changes) = f(tx)?;
                let seq = append_changes(tx, &changes)?;
                Ok((out, changes, seq))
            })
            .await?;
        if let Some(seq) = seq {
            self.feed.notify(seq);
        }
        Ok((out, changes))
    }
}

/// Appends catalog changes to the feed (one row per write); its sequence
/// number, if anything changed.
fn append_changes(tx: &Transaction<'_>, changes: &[Change]) -> Res<Option<i64>> {
    if changes.is_empty() {
        return Ok(None);
    }
    let payload = serde_json::to_string(changes)
        .map_err(|e| StoreError::Backend(format!("encoding catalog changes: {e}")))?;
    Ok(Some(crate::coord::append(tx, CATALOG_TOPIC, &payload)?))
}

fn render_value(conn: &Connection, key: &str, body: &str) -> Res<Value> {
    let mut text = String::with_capacity(body.len() + 256);
    query::render(&mut *query::relations_of(conn)?, key, body, &mut text)?;
    Ok(serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("stored entity {key}: {e}")))?)
}

fn render_raw(relations: &mut rusqlite::Statement<'_>, key: &str, body: &str) -> Res<String> {
    let mut text = String::with_capacity(body.len() + 256);
    query::render(relations, key, body, &mut text)?;
    callboard_store::query::debug_check_json(key, &text);
    Ok(text)
}

fn get_where(conn: &Connection, column: &str, value: &str) -> Res<Option<Value>> {
    let sql = format!("SELECT ref, body FROM entities WHERE {column} = ?1");
    let row: Option<(String, String)> = conn
        .prepare_cached(&sql)?
        .query_row([value], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(key, body)| render_value(conn, &key, &body))
        .transpose()
}

#[async_trait::async_trait]
impl CatalogStore for SqliteCatalog {
    async fn get_by_ref(&self, key: &str) -> Result<Option<Value>> {
        let key = key.to_owned();
        self.db.read(move |c| get_where(c, "ref", &key)).await
    }

    async fn get_by_uid(&self, uid: &str) -> Result<Option<Value>> {
        let uid = uid.to_owned();
        self.db.read(move |c| get_where(c, "uid", &uid)).await
    }

    async fn get_by_keys(
        &self,
        keys: &[Option<String>],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<Value>>> {
        let keys = keys.to_vec();
        let predicate = predicate.cloned();
        self.db
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT id, body FROM entities WHERE ref = ?1")?;
                let mut out = Vec::with_capacity(keys.len());
                for key in &keys {
                    let Some(key) = key else {
                        out.push(None);
                        continue;
                    };
                    let row: Option<(i64, String)> = stmt
                        .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()?;
                    let Some((id, body)) = row else {
                        out.push(None);
                        continue;
                    };
                    if let Some(p) = &predicate
                        && !query::matches(conn, p, id)?
                    {
                        out.push(None);
                        continue;
                    }
                    out.push(Some(render_value(conn, key, &body)?));
                }
                Ok(out)
            })
            .await
    }

    async fn query(&self, selection: &Selection, start: &Start, limit: usize) -> Result<Page> {
        let limit = limit.min(callboard_store::query::MAX_PAGE);
        let (selection, start) = (selection.clone(), start.clone());
        let db = self.db.clone();
        self.db
            .read(move |conn| {
                let (after, reverse, offset) = match &start {
                    Start::Beginning => (None, false, 0),
                    Start::Offset(n) => (None, false, *n),
                    Start::After(p) => (Some(p), false, 0),
                    Start::Before(p) => (Some(p), true, 0),
                };
                let mut rows = Vec::new();
                query::select(
                    conn,
                    db.estimates(),
                    &selection,
                    true,
                    after,
                    reverse,
                    offset,
                    Some(limit + 1),
                    |row| {
                        rows.push(row);
                        Ok(true)
                    },
                )?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                if reverse {
                    rows.reverse();
                }
                let first = rows.first().map(|r| r.position.clone());
                let last = rows.last().map(|r| r.position.clone());
                let mut relations = query::relations_of(conn)?;
                let items = rows
                    .iter()
                    .map(|r| render_raw(&mut relations, &r.key, &r.body))
                    .collect::<Res<_>>()?;
                Ok(Page {
                    items,
                    first,
                    last,
                    more,
                })
            })
            .await
    }

    async fn page_end(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Option<Position>> {
        let (selection, start) = (selection.clone(), start.clone());
        let db = self.db.clone();
        self.db
            .read(move |conn| {
                let (after, offset) = match &start {
                    Start::Beginning | Start::Before(_) => (None, 0),
                    Start::Offset(n) => (None, *n),
                    Start::After(p) => (Some(p), 0),
                };
                // Only the last row of the page is kept: memory stays flat
                // whatever `limit` the caller asks for.
                let mut seen = 0usize;
                let mut end = None;
                let mut more = false;
                query::select(
                    conn,
                    db.estimates(),
                    &selection,
                    false,
                    after,
                    false,
                    offset,
                    Some(limit.saturating_add(1)),
                    |row| {
                        seen += 1;
                        if seen > limit {
                            more = true;
                        }
                        if seen == limit.max(1) {
                            end = Some(row.position);
                        }
                        Ok(!more)
                    },
                )?;
                Ok(if more { end } else { None })
            })
            .await
    }

    async fn count(&self, selection: &Selection) -> Result<u64> {
        let selection = selection.clone();
        let db = self.db.clone();
        self.db
            .read(move |conn| query::count(conn, db.estimates(), &selection))
            .await
    }

    async fn facets(
        &self,
        facets: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<BTreeMap<String, Vec<FacetCount>>> {
        let (facets, predicate) = (facets.to_vec(), predicate.cloned());
        let db = self.db.clone();
        self.db
            .read(move |conn| query::facets(conn, db.estimates(), &facets, predicate.as_ref()))
            .await
    }

    async fn stream(
        &self,
        selection: Selection,
        start: Start,
        limit: Option<usize>,
        sink: tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()> {
        let db = self.db.clone();
        self.db
            .read(move |conn| {
                let (after, offset) = match &start {
                    Start::Beginning | Start::Before(_) => (None, 0),
                    Start::Offset(n) => (None, *n),
                    Start::After(p) => (Some(p), 0),
                };
                let mut relations = query::relations_of(conn)?;
                query::select(
                    conn,
                    db.estimates(),
                    &selection,
                    true,
                    after,
                    false,
                    offset,
                    limit,
                    |row| {
                        let mut text = String::with_capacity(row.body.len() + 256);
                        query::render(&mut relations, &row.key, &row.body, &mut text)?;
                        // The receiver went away: stop reading.
                        Ok(sink.blocking_send(Ok(text)).is_ok())
                    },
                )
            })
            .await
    }

    async fn ancestry(&self, key: &str) -> Result<Option<Vec<AncestryRow>>> {
        let key = key.to_owned();
        self.db
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT body, parent_ref FROM entities WHERE ref = ?1")?;
                let mut items = Vec::new();
                let mut next = Some(key);
                let mut seen = HashSet::new();
                while let Some(key) = next.take() {
                    if !seen.insert(key.clone()) {
                        break;
                    }
                    let row: Option<(String, Option<String>)> = stmt
                        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    let Some((body, parent)) = row else {
                        if items.is_empty() {
                            return Ok(None);
                        }
                        break;
                    };
                    items.push(AncestryRow {
                        entity: render_value(conn, &key, &body)?,
                        parent: parent.clone(),
                    });
                    next = parent;
                }
                Ok(Some(items))
            })
            .await
    }

    async fn count_outside(&self, location_id: &str) -> Result<u64> {
        let id = location_id.to_owned();
        self.db
            .read(move |conn| {
                let n: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM entities WHERE location_id IS NULL OR location_id != ?1",
                    )?
                    .query_row([&id], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn delete_by_uid(&self, uid: &str) -> Result<Vec<Change>> {
        let uid = uid.to_owned();
        let ((), changes) = self
            .write_changes(move |tx| {
                let row: Option<(i64, String, Option<String>, Option<String>)> = tx
                    .query_row(
                        "SELECT id, ref, location_id, location_key FROM entities WHERE uid = ?1",
                        [&uid],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let mut changes = Vec::new();
                if let Some((id, key, location, source)) = row {
                    // Its source must be read again for the entity to return.
                    tx.execute(
                        "DELETE FROM sources WHERE location_id = ?1 AND key = ?2",
                        params![location, source],
                    )?;
                    delete_entities(tx, &[(id, key)], &mut changes)?;
                }
                Ok(((), changes))
            })
            .await?;
        Ok(changes)
    }

    async fn locations(&self, source: Option<&str>) -> Result<Vec<(LocationRow, LocationSource)>> {
        let source = source.map(str::to_owned);
        self.db
            .read(move |conn| location_rows(conn, source.as_deref()))
            .await
    }

    async fn location(&self, id: &str) -> Result<Option<LocationRow>> {
        let id = id.to_owned();
        self.db.read(move |conn| location_by_id(conn, &id)).await
    }

    async fn location_by_target(&self, kind: &str, target: &str) -> Result<Option<LocationRow>> {
        let (kind, target) = (kind.to_owned(), target.to_owned());
        self.db
            .read(move |conn| location_by_target(conn, &kind, &target))
            .await
    }

    async fn location_of_entity(&self, key: &str) -> Result<Option<LocationRow>> {
        let key = key.to_owned();
        self.db
            .read(move |conn| {
                let id: Option<Option<String>> = conn
                    .prepare_cached("SELECT location_id FROM entities WHERE ref = ?1")?
                    .query_row([key], |row| row.get(0))
                    .optional()?;
                match id.flatten() {
                    Some(id) => location_by_id(conn, &id),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn insert_location(
        &self,
        row: &LocationRow,
        source: &str,
    ) -> Result<(LocationRow, bool)> {
        let (row, source) = (row.clone(), source.to_owned());
        self.db
            .write(move |tx| {
                if let Some(existing) = location_by_target(tx, &row.kind, &row.target)? {
                    return Ok((existing, false));
                }
                insert_location(tx, &row, &source)?;
                Ok((row, true))
            })
            .await
    }

    async fn remove_location(&self, id: &str) -> Result<Option<Vec<Change>>> {
        let id = id.to_owned();
        let (found, changes) = self
            .write_changes(move |tx| {
                if tx.execute("DELETE FROM locations WHERE id = ?1", [&id])? == 0 {
                    return Ok((false, Vec::new()));
                }
                tx.execute("DELETE FROM sources WHERE location_id = ?1", [&id])?;
                let mut changes = Vec::new();
                let ids = entities_of_location(tx, &id)?;
                delete_entities(tx, &ids, &mut changes)?;
                Ok((true, changes))
            })
            .await?;
        Ok(found.then_some(changes))
    }

    async fn sync_locations(
        &self,
        source: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<Change>> {
        let (source, wanted) = (source.to_owned(), wanted.to_vec());
        let ((), changes) = self
            .write_changes(move |tx| {
                let mut changes = Vec::new();
                for (row, _) in location_rows(tx, Some(&source))? {
                    if !wanted
                        .iter()
                        .any(|(k, t)| *k == row.kind && *t == row.target)
                    {
                        tx.execute("DELETE FROM locations WHERE id = ?1", [&row.id])?;
                        tx.execute("DELETE FROM sources WHERE location_id = ?1", [&row.id])?;
                        let ids = entities_of_location(tx, &row.id)?;
                        delete_entities(tx, &ids, &mut changes)?;
                    }
                }
                for (kind, target) in &wanted {
                    if location_by_target(tx, kind, target)?.is_none() {
                        let row = LocationRow {
                            id: uuid::Uuid::new_v4().to_string(),
                            kind: kind.clone(),
                            target: target.clone(),
                        };
                        insert_location(tx, &row, &source)?;
                    }
                }
                Ok(((), changes))
            })
            .await?;
        Ok(changes)
    }

    async fn begin(&self, location_id: &str) -> Result<Option<Box<dyn LocationWriter>>> {
        ingest_writer(
            self.db.clone(),
            self.feed.clone(),
            location_id.to_owned(),
            None,
        )
        .await
    }

    async fn sources(&self, location_id: &str) -> Result<Vec<SourceRow>> {
        let location_id = location_id.to_owned();
        self.db
            .read(move |conn| {
                let mut sources: BTreeMap<String, SourceRow> = BTreeMap::new();
                let mut stmt =
                    conn.prepare_cached("SELECT key, hash FROM sources WHERE location_id = ?1")?;
                let mut rows = stmt.query([&location_id])?;
                while let Some(row) = rows.next()? {
                    let key: String = row.get(0)?;
                    let hash = row.get(1)?;
                    sources.insert(
                        key.clone(),
                        SourceRow {
                            key,
                            hash,
                            entities: Vec::new(),
                        },
                    );
                }
                if sources.is_empty() {
                    return Ok(Vec::new());
                }
                let mut stmt = conn.prepare_cached(
                    "SELECT location_key, ref FROM entities WHERE location_id = ?1 AND orphan = 0",
                )?;
                let mut rows = stmt.query([&location_id])?;
                while let Some(row) = rows.next()? {
                    let Some(source) = row.get::<_, Option<String>>(0)? else {
                        continue;
                    };
                    if let Some(s) = sources.get_mut(&source) {
                        s.entities.push(row.get(1)?);
                    }
                }
                Ok(sources.into_values().collect())
            })
            .await
    }

    async fn source(&self, location_id: &str, key: &str) -> Result<Option<SourceRow>> {
        let (location_id, key) = (location_id.to_owned(), key.to_owned());
        self.db
            .read(move |conn| {
                let hash: Option<String> = conn
                    .prepare_cached("SELECT hash FROM sources WHERE location_id = ?1 AND key = ?2")?
                    .query_row(params![location_id, key], |r| r.get(0))
                    .optional()?;
                let Some(hash) = hash else {
                    return Ok(None);
                };
                let mut stmt = conn.prepare_cached(
                    "SELECT ref FROM entities WHERE location_key = ?2 AND location_id = ?1 AND orphan = 0",
                )?;
                let entities = stmt
                    .query_map(params![location_id, key], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(Some(SourceRow {
                    key,
                    hash,
                    entities,
                }))
            })
            .await
    }

    async fn begin_source(
        &self,
        location_id: &str,
        source: &str,
    ) -> Result<Option<Box<dyn LocationWriter>>> {
        ingest_writer(
            self.db.clone(),
            self.feed.clone(),
            location_id.to_owned(),
            Some(source.to_owned()),
        )
        .await
    }

    async fn optimize(&self) -> Result<()> {
        self.db
            .write(|tx| Ok(tx.execute_batch("PRAGMA optimize;")?))
            .await
    }
}

// ----- the ingestion writer -----

/// What the async side asks of the writer's thread.
enum Command {
    /// The records come back with the answer, to be freed off the
    /// writer's thread (a load's one serial stage).
    Put(
        Vec<EntityRecord>,
        tokio::sync::oneshot::Sender<(Result<Vec<Put>>, Vec<EntityRecord>)>,
    ),
    Finish(
        Finish,
        tokio::sync::oneshot::Sender<Result<(ApplySummary, Vec<Change>)>>,
    ),
}

/// One location's write: a thread of the blocking pool holds the writing
/// connection and one transaction until `finish` commits it; dropping the
/// writer closes the channel and the thread rolls back.
struct SqliteWriter {
    commands: std::sync::mpsc::Sender<Command>,
}

fn gone() -> StoreError {
    StoreError::Backend("the catalog writer stopped".into())
}

async fn ingest_writer(
    db: Arc<Db>,
    feed: Arc<SqliteFeed>,
    location_id: String,
    source: Option<String>,
) -> Result<Option<Box<dyn LocationWriter>>> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<bool>>();
    let (commands, rx) = std::sync::mpsc::channel::<Command>();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.writer();
        let run = || -> Res<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if location_by_id(&tx, &location_id)?.is_none() {
                let _ = ready_tx.send(Ok(false));
                return Ok(());
            }
            let mut writer = Writer::new(&tx, &location_id, source)?;
            let _ = ready_tx.send(Ok(true));
            while let Ok(command) = rx.recv() {
                match command {
                    Command::Put(records, reply) => {
                        let result = records
                            .iter()
                            .map(|r| writer.put(r))
                            .collect::<Res<Vec<_>>>()
                            .map_err(StoreError::from);
                        let failed = result.is_err();
                        let _ = reply.send((result, records));
                        if failed {
                            return Ok(());
                        }
                    }
                    Command::Finish(done, reply) => {
                        let result = (|| -> Res<_> {
                            let (summary, changes) = writer.finish(&done)?;
                            let seq = append_changes(&tx, &changes)?;
                            Ok((summary, changes, seq))
                        })();
                        let result = match result {
                            Ok((summary, changes, seq)) => db.commit(tx).map(|()| {
                                if let Some(seq) = seq {
                                    feed.notify(seq);
                                }
                                (summary, changes)
                            }),
                            Err(e) => Err(StoreError::from(e)),
                        };
                        let _ = reply.send(result);
                        return Ok(());
                    }
                }
            }
            // The async side dropped the writer: `tx` rolls back on drop.
            Ok(())
        };
        if let Err(e) = run() {
            tracing::debug!("catalog writer: {}", StoreError::from(e));
        }
        // A location's write fills the writer's page cache; give it back
        // rather than keep it for the next refresh.
        let _ = conn.execute_batch("PRAGMA shrink_memory;");
    });
    match ready_rx.await {
        Ok(Ok(true)) => Ok(Some(Box::new(SqliteWriter { commands }))),
        Ok(Ok(false)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(gone()),
    }
}

#[async_trait::async_trait]
impl LocationWriter for SqliteWriter {
    async fn put(&mut self, records: Vec<EntityRecord>) -> Result<Vec<Put>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Put(records, reply))
            .map_err(|_| gone())?;
        let (result, records) = answer.await.map_err(|_| gone())?;
        drop(records);
        result
    }

    async fn finish(self: Box<Self>, done: Finish) -> Result<(ApplySummary, Vec<Change>)> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Finish(done, reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

struct Existing {
    id: i64,
    uid: String,
    generation: i64,
    spec_hash: String,
    hash: String,
    location_key: Option<String>,
    orphan: bool,
}

/// Stores one location's entities as they stream in, inside one
/// transaction: new and changed ones are written, entities claimed by another
/// location are refused (the first owner keeps them), and on [`Writer::finish`]
/// the entities the location no longer lists are marked orphan, except those
/// in `keep` (from files that could not be read), which get that status.
struct Writer<'t, 'c> {
    tx: &'t Transaction<'c>,
    location_id: String,
    /// Writing one source of the location only.
    source: Option<String>,
    existing: HashMap<String, Existing>,
    seen: HashSet<String>,
    bulk: bool,
    /// The catalog held no entity when the write began (under the write
    /// lock): no other location can own one, so none is looked up.
    alone: bool,
    summary: ApplySummary,
    changes: Vec<Change>,
}

impl<'t, 'c> Writer<'t, 'c> {
    fn new(tx: &'t Transaction<'c>, location_id: &str, source: Option<String>) -> Res<Self> {
        let mut existing = HashMap::new();
        {
            let mut stmt = match &source {
                None => tx.prepare_cached(&format!(
                    "SELECT {EXISTING} FROM entities WHERE location_id = ?1 AND ?2 IS NULL"
                ))?,
                Some(_) => tx.prepare_cached(&format!(
                    "SELECT {EXISTING} FROM entities WHERE location_key = ?2 AND location_id = ?1"
                ))?,
            };
            let rows = stmt.query_map(params![location_id, source], existing_row)?;
            for row in rows {
                let (key, e) = row?;
                existing.insert(key, e);
            }
        }
        // A first load into a small catalog builds the secondary indexes once
        // at the end (a sort) instead of updating them row by row: several
        // times faster. Still one transaction; readers keep their snapshot.
        let total: Option<i64> = if source.is_none() && existing.is_empty() {
            Some(tx.query_row("SELECT count(*) FROM entities", [], |r| r.get(0))?)
        } else {
            None
        };
        let bulk = total.is_some_and(|t| t < BULK_MAX_EXISTING);
        let alone = total == Some(0);
        if bulk {
            tx.execute_batch(
                "DROP INDEX IF EXISTS search_kv; DROP INDEX IF EXISTS relations_source;
                 DROP INDEX IF EXISTS relations_target; DROP INDEX IF EXISTS entities_source;",
            )?;
        }
        Ok(Self {
            tx,
            location_id: location_id.to_owned(),
            source,
            existing,
            seen: HashSet::new(),
            bulk,
            alone,
            summary: ApplySummary::default(),
            changes: Vec::new(),
        })
    }

    fn put(&mut self, record: &EntityRecord) -> Res<Put> {
        let key = &record.key;
        if self.seen.contains(key) {
            return Ok(Put::Duplicate);
        }
        if !self.alone && !self.existing.contains_key(key) {
            let owner: Option<(Option<String>, (String, Existing))> = self
                .tx
                .prepare_cached(&format!(
                    "SELECT location_id, {EXISTING} FROM entities WHERE ref = ?1"
                ))?
                .query_row([key], |r| Ok((r.get(0)?, existing_row_at(r, 1)?)))
                .optional()?;
            match owner {
                Some((Some(owner), _)) if owner != self.location_id => {
                    return Ok(Put::Conflict(owner));
                }
                // Writing one source: another source of the location
                // provides it (unless it is an orphan, which this one takes).
                Some((_, (_, e))) if self.source.is_some() => {
                    if !e.orphan {
                        return Ok(Put::Duplicate);
                    }
                    self.existing.insert(key.clone(), e);
                }
                _ => {}
            }
        }
        match self.existing.get(key) {
            Some(e) if e.hash == record.hash && !e.orphan => self.summary.unchanged += 1,
            Some(e) => {
                write_entity(self.tx, Some(e), record, &self.location_id)?;
                self.summary.updated += 1;
                self.changes.push(Change::Changed(key.clone()));
            }
            None => {
                write_entity(self.tx, None, record, &self.location_id)?;
                self.summary.added += 1;
                self.changes.push(Change::Added(key.clone()));
            }
        }
        self.seen.insert(key.clone());
        Ok(Put::Stored)
    }

    fn finish(mut self, done: &Finish) -> Res<(ApplySummary, Vec<Change>)> {
        if self.bulk {
            self.tx.execute_batch(INDEXES)?;
        }
        let keep = &done.keep;
        for (key, e) in &self.existing {
            if self.seen.contains(key) {
                continue;
            }
            if !e.orphan
                && e.location_key
                    .as_ref()
                    .is_some_and(|k| done.unchanged.contains(k))
            {
                // Its source was not read again: its content is the same.
                self.summary.unchanged += 1;
                continue;
            }
            let failed_file = e
                .location_key
                .as_ref()
                .and_then(|k| keep.get(k))
                .or_else(|| keep.get(key));
            if let Some(status) = failed_file {
                // Its source could not be read: keep the last good version and say why.
                set_status(self.tx, e.id, status)?;
                self.changes.push(Change::Changed(key.clone()));
            } else if !e.orphan {
                mark_orphan(self.tx, e.id)?;
                self.summary.orphaned += 1;
                self.changes.push(Change::Changed(key.clone()));
            }
        }
        self.tx.execute(
            "DELETE FROM sources WHERE location_id = ?1 AND (?2 IS NULL OR key = ?2)",
            params![self.location_id, self.source],
        )?;
        let mut insert = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO sources (location_id, key, hash) VALUES (?1, ?2, ?3)",
        )?;
        for (key, hash) in &done.hashes {
            insert.execute(params![self.location_id, key, hash])?;
        }
        Ok((self.summary, self.changes))
    }
}

/// The columns of [`Existing`], after the ref.
const EXISTING: &str = "ref, id, uid, generation, spec_hash, hash, location_key, orphan";

fn existing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Existing)> {
    existing_row_at(r, 0)
}

/// An [`EXISTING`] row starting at column `at`.
fn existing_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(String, Existing)> {
    Ok((
        r.get(at)?,
        Existing {
            id: r.get(at + 1)?,
            uid: r.get(at + 2)?,
            generation: r.get(at + 3)?,
            spec_hash: r.get(at + 4)?,
            hash: r.get(at + 5)?,
            location_key: r.get(at + 6)?,
            orphan: r.get(at + 7)?,
        },
    ))
}

fn write_entity(
    tx: &Transaction<'_>,
    existing: Option<&Existing>,
    record: &EntityRecord,
    location_id: &str,
) -> Res<i64> {
    let (hash, spec_hash) = (record.hash.as_str(), record.spec_hash.as_str());
    let (uid, generation) = match existing {
        Some(e) if e.spec_hash == spec_hash => (e.uid.clone(), e.generation),
        Some(e) => (e.uid.clone(), e.generation + 1),
        None => (uuid::Uuid::new_v4().to_string(), 1),
    };
    let body = record.entity.with_identity(&uid, hash, generation);
    let id = match existing {
        Some(e) => {
            tx.prepare_cached(
                "UPDATE entities SET kind = ?2, namespace = ?3, name = ?4, location_id = ?5, parent_ref = ?6,
                 location_key = ?7, hash = ?8, spec_hash = ?9, generation = ?10, orphan = 0, body = ?11 WHERE id = ?1",
            )?
            .execute(params![
                e.id,
                record.kind,
                record.namespace,
                record.name,
                location_id,
                record.parent_ref,
                record.location_key,
                hash,
                spec_hash,
                generation,
                body
            ])?;
            clear_index(tx, e.id)?;
            e.id
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO entities (ref, uid, kind, namespace, name, location_id, parent_ref, location_key,
                 hash, spec_hash, generation, orphan, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12)",
            )?
            .execute(params![
                record.key,
                uid,
                record.kind,
                record.namespace,
                record.name,
                location_id,
                record.parent_ref,
                record.location_key,
                hash,
                spec_hash,
                generation,
                body
            ])?;
            tx.last_insert_rowid()
        }
    };
    write_index(tx, id, record)?;
    // The catalog's own fields are searchable too (e.g. `metadata.uid=...`).
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO search (entity_id, key, value, original) VALUES (?1, ?2, ?3, NULL)",
    )?;
    insert.execute(params![id, "metadata.uid", uid])?;
    insert.execute(params![id, "metadata.etag", hash])?;
    insert.execute(params![id, "metadata.generation", generation.to_string()])?;
    Ok(id)
}

fn clear_index(tx: &Transaction<'_>, id: i64) -> Res<()> {
    tx.prepare_cached(
        "DELETE FROM search_docs WHERE grp = (SELECT 'entity:' || ref FROM entities WHERE id = ?1)",
    )?
    .execute([id])?;
    tx.prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM relations WHERE origin_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM fts WHERE rowid = ?1")?
        .execute([id])?;
    Ok(())
}

fn write_index(tx: &Transaction<'_>, id: i64, record: &EntityRecord) -> Res<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO search (entity_id, key, value, original) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (key, value, original) in &record.rows {
        insert.execute(params![id, key, value, original])?;
    }
    tx.prepare_cached("INSERT INTO fts (rowid, doc) VALUES (?1, ?2)")?
        .execute(params![id, record.doc])?;
    crate::search::replace_group(
        tx,
        &callboard_store::search::entity_group(&record.key),
        std::slice::from_ref(&record.search),
    )?;
    let mut rel = tx.prepare_cached(
        "INSERT OR IGNORE INTO relations (origin_id, source, type, target, target_display) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in &record.relations {
        rel.execute(params![id, r.source, r.kind, r.target, r.target_display])?;
    }
    Ok(())
}

fn load_body(tx: &Transaction<'_>, id: i64) -> Res<Value> {
    let body: String = tx
        .prepare_cached("SELECT body FROM entities WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("stored entity {id}: {e}")))?)
}

/// Rewrites a body; an empty hash makes the next successful read rewrite
/// the entity. Status and annotations other than the orphan flag are not
/// searchable, so the index rows stay.
fn rewrite_body(tx: &Transaction<'_>, id: i64, value: &Value, orphan: bool) -> Res<()> {
    tx.prepare_cached("UPDATE entities SET body = ?2, orphan = ?3, hash = '' WHERE id = ?1")?
        .execute(params![id, value.to_string(), orphan])?;
    Ok(())
}

fn mark_orphan(tx: &Transaction<'_>, id: i64) -> Res<()> {
    let mut value = load_body(tx, id)?;
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(ORPHAN_ANNOTATION.into(), Value::String("true".into()));
        }
    }
    rewrite_body(tx, id, &value, true)?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO search (entity_id, key, value, original) VALUES (?1, ?2, 'true', NULL)",
    )?
    .execute(params![id, format!("metadata.annotations.{ORPHAN_ANNOTATION}")])?;
    Ok(())
}

fn set_status(tx: &Transaction<'_>, id: i64, status: &Value) -> Res<()> {
    let mut value = load_body(tx, id)?;
    if let Some(root) = value.as_object_mut() {
        root.insert("status".into(), status.clone());
    }
    rewrite_body(tx, id, &value, false)
}

/// Deletes entities by id, with their index rows.
fn delete_entities(
    tx: &Transaction<'_>,
    ids: &[(i64, String)],
    changes: &mut Vec<Change>,
) -> Res<()> {
    for (id, key) in ids {
        clear_index(tx, *id)?;
        tx.prepare_cached("DELETE FROM entities WHERE id = ?1")?
            .execute([id])?;
        changes.push(Change::Removed(key.clone()));
    }
    Ok(())
}

fn entities_of_location(conn: &Connection, location_id: &str) -> Res<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, ref FROM entities WHERE location_id = ?1")?;
    let rows = stmt.query_map([location_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn location_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocationRow> {
    Ok(LocationRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        target: r.get(2)?,
    })
}

fn location_rows(conn: &Connection, source: Option<&str>) -> Res<Vec<(LocationRow, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, type, target, source FROM locations ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| Ok((location_from(r)?, r.get::<_, String>(3)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if source.is_none_or(|s| s == row.1) {
            out.push(row);
        }
    }
    Ok(out)
}

fn location_by_id(conn: &Connection, id: &str) -> Res<Option<LocationRow>> {
    Ok(conn
        .prepare_cached("SELECT id, type, target FROM locations WHERE id = ?1")?
        .query_row([id], location_from)
        .optional()?)
}

fn location_by_target(conn: &Connection, kind: &str, target: &str) -> Res<Option<LocationRow>> {
    Ok(conn
        .prepare_cached("SELECT id, type, target FROM locations WHERE type = ?1 AND target = ?2")?
        .query_row([kind, target], location_from)
        .optional()?)
}

fn insert_location(tx: &Transaction<'_>, row: &LocationRow, source: &str) -> Res<()> {
    tx.execute(
        "INSERT INTO locations (id, type, target, source) VALUES (?1, ?2, ?3, ?4)",
        params![row.id, row.kind, row.target, source],
    )?;
    Ok(())
}
