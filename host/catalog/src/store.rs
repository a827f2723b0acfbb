//! SQLite storage: schema, migrations, connections and entity writes.
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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::entity_ref::EntityRef;
use crate::error::CatalogError;
use crate::relations::relations_of;

/// Ordered migrations; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE locations (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (type, target)
);
CREATE TABLE entities (
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
CREATE INDEX entities_location ON entities (location_id);
CREATE INDEX entities_name ON entities (name, id);
CREATE TABLE search (
    entity_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    original TEXT,
    PRIMARY KEY (entity_id, key, value)
) WITHOUT ROWID;
CREATE TABLE relations (
    origin_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    type TEXT NOT NULL COLLATE NOCASE,
    target TEXT NOT NULL,
    target_display TEXT NOT NULL,
    PRIMARY KEY (origin_id, source, type, target)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE fts USING fts5 (doc, tokenize = 'trigram');
"#];

/// Secondary indexes of `search` and `relations` (part of migration 1; kept
/// apart so that bulk loads can rebuild them).
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS search_kv ON search (key, value);
CREATE INDEX IF NOT EXISTS relations_source ON relations (source, type, target, target_display);
";

/// Page cache of the writing connection, in KiB.
const WRITER_CACHE_KB: u32 = 32_000;

/// A location's first load rebuilds the secondary indexes instead of
/// updating them when the catalog holds fewer entities than this.
const BULK_MAX_EXISTING: i64 = 1000;

/// Values longer than this are not searchable (Backstage skips long values too;
/// it keeps API definitions out of the index).
const MAX_SEARCH_VALUE: usize = 1000;

/// Fields the full-text index holds; `fullTextFilterFields` within this set are
/// answered from FTS5, others by scanning `search`.
pub const FULL_TEXT_FIELDS: &[&str] = &[
    "kind",
    "metadata.name",
    "metadata.title",
    "metadata.description",
    "metadata.tags",
    "spec.type",
    "spec.lifecycle",
    "spec.owner",
    "spec.system",
];

/// The database: one writer and a bounded pool of readers (WAL lets them
/// run beside it).
pub(crate) struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// Signalled when a read connection is returned.
    returned: Condvar,
}

/// A read connection taken from the pool.
struct Lease<'s> {
    store: &'s Store,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.store.release(self.conn.take());
    }
}

/// Idle read connections and how many exist; never more than `max` (each
/// holds its own page cache), so a burst of reads waits instead of opening
/// one connection per blocking thread.
struct Readers {
    idle: Vec<Connection>,
    open: usize,
    max: usize,
}

impl Store {
    pub(crate) fn open(path: &Path, max_readers: usize) -> Result<Self, CatalogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut conn = connect(path)?;
        // The writer touches every index page of a large load; a bigger cache
        // saves re-reading them. Readers need much less.
        conn.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KB};"))?;
        migrate(&mut conn)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                open: 0,
                max: max_readers.max(1),
            }),
            returned: Condvar::new(),
        })
    }

    /// Runs `f` on a pooled read connection.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let conn = {
            let mut pool = self
                .readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if let Some(conn) = pool.idle.pop() {
                    break Some(conn);
                }
                if pool.open < pool.max {
                    pool.open += 1;
                    break None;
                }
                pool = self
                    .returned
                    .wait(pool)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        // Released on drop, so a panicking reader cannot leak its slot.
        // (a panic drops the connection and frees its slot).
        let mut lease = Lease { store: self, conn };
        let conn = match lease.conn.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        lease.conn = Some(conn);
        result
    }

    /// Returns a read connection to the pool (`None`: one failed to open).
    fn release(&self, conn: Option<Connection>) {
        let mut pool = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match conn {
            Some(conn) => pool.idle.push(conn),
            None => pool.open -= 1,
        }
        drop(pool);
        self.returned.notify_one();
    }

    /// Runs `f` in one write transaction; nothing is written unless it succeeds.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// Refreshes the planner's statistics after large writes.
    pub(crate) fn optimize(&self) -> Result<(), CatalogError> {
        let conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute_batch("PRAGMA optimize;")?;
        Ok(())
    }
}

fn connect(path: &Path) -> Result<Connection, CatalogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // synchronous=NORMAL in WAL mode keeps every commit atomic; a power loss
    // may only drop the last commits, never corrupt the file.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16000;",
    )?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), CatalogError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > supported {
        return Err(CatalogError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i == 0 {
            tx.execute_batch(INDEXES)?;
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// A registered location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocationRow {
    /// UUID.
    pub id: String,
    /// `file` or `url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path, glob or URL.
    pub target: String,
}

pub(crate) fn location_rows(
    conn: &Connection,
    source: Option<&str>,
) -> Result<Vec<(LocationRow, String)>, CatalogError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, type, target, source FROM locations ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            LocationRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                target: r.get(2)?,
            },
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if source.is_none_or(|s| s == row.1) {
            out.push(row);
        }
    }
    Ok(out)
}

pub(crate) fn location_by_id(
    conn: &Connection,
    id: &str,
) -> Result<Option<LocationRow>, CatalogError> {
    Ok(conn
        .prepare_cached("SELECT id, type, target FROM locations WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(LocationRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                target: r.get(2)?,
            })
        })
        .optional()?)
}

pub(crate) fn location_by_target(
    conn: &Connection,
    kind: &str,
    target: &str,
) -> Result<Option<LocationRow>, CatalogError> {
    Ok(conn
        .prepare_cached("SELECT id, type, target FROM locations WHERE type = ?1 AND target = ?2")?
        .query_row([kind, target], |r| {
            Ok(LocationRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                target: r.get(2)?,
            })
        })
        .optional()?)
}

pub(crate) fn insert_location(
    tx: &Transaction<'_>,
    row: &LocationRow,
    source: &str,
) -> Result<(), CatalogError> {
    tx.execute(
        "INSERT INTO locations (id, type, target, source) VALUES (?1, ?2, ?3, ?4)",
        params![row.id, row.kind, row.target, source],
    )?;
    Ok(())
}

/// An entity produced by ingestion, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct EntityRecord {
    pub(crate) entity_ref: EntityRef,
    /// The processed entity: defaults, annotations and status applied; no
    /// uid/etag/generation/relations.
    pub(crate) entity: Value,
    pub(crate) parent_ref: Option<String>,
    pub(crate) location_key: String,
    /// Hashes and index rows, computed by the reading side so the writer
    /// only writes (reading and writing run on different cores).
    pub(crate) prepared: Option<Prepared>,
}

/// The CPU work of storing an entity, done ahead of the transaction.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    hash: String,
    spec_hash: String,
    /// `(key, lower-cased value, value as written if different)`.
    rows: Vec<(String, String, Option<String>)>,
    /// `(source, type, target, target as displayed)`.
    relations: Vec<(String, &'static str, String, String)>,
    doc: String,
}

impl Prepared {
    pub(crate) fn of(entity: &Value, r: &EntityRef) -> Self {
        let mut flat = Vec::with_capacity(32);
        flatten(entity, &mut String::new(), &mut flat);
        let mut doc = String::new();
        let mut rows = Vec::with_capacity(flat.len());
        for (key, original) in flat {
            if FULL_TEXT_FIELDS.contains(&key.as_str()) {
                doc.push_str(&original);
                doc.push('\n');
            }
            let value = original.to_lowercase();
            // The value as written is only stored when it differs, to keep rows small.
            let original = (value != original).then_some(original);
            rows.push((key, value, original));
        }
        let relations = relations_of(entity, r)
            .into_iter()
            .map(|rel| {
                (
                    rel.source.key(),
                    rel.kind,
                    rel.target.key(),
                    rel.target.to_string(),
                )
            })
            .collect();
        Self {
            hash: hash_json(entity),
            spec_hash: hash_json(entity.get("spec").unwrap_or(&Value::Null)),
            rows,
            relations,
            doc,
        }
    }
}

/// What a write did to one entity, for change notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new entity.
    Added(String),
    /// A changed entity.
    Changed(String),
    /// A removed entity.
    Removed(String),
}

/// Counts from applying one location's entities.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplySummary {
    /// Entities added.
    pub added: usize,
    /// Entities whose content changed.
    pub updated: usize,
    /// Entities read again without change.
    pub unchanged: usize,
    /// Entities the location no longer lists, now marked orphan.
    pub orphaned: usize,
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

pub(crate) fn hash_json(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Stores one location's entities as they stream in, inside one
/// transaction: new and changed ones are written, entities claimed by another
/// location are refused (the first owner keeps them), and on [`Writer::finish`]
/// the entities the location no longer lists are marked orphan, except those
/// in `keep` (from files that could not be read), which get that status.
pub(crate) struct Writer<'t, 'c> {
    tx: &'t Transaction<'c>,
    location_id: String,
    existing: HashMap<String, Existing>,
    seen: HashSet<String>,
    bulk: bool,
    pub(crate) summary: ApplySummary,
    pub(crate) changes: Vec<Change>,
}

/// What [`Writer::put`] did with a record.
pub(crate) enum Put {
    /// Stored (or unchanged).
    Stored,
    /// Another location owns the entity; its id.
    Conflict(String),
    /// Listed twice by this location; the first one was kept.
    Duplicate,
}

impl<'t, 'c> Writer<'t, 'c> {
    pub(crate) fn new(tx: &'t Transaction<'c>, location_id: &str) -> Result<Self, CatalogError> {
        let mut existing = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT ref, id, uid, generation, spec_hash, hash, location_key, orphan FROM entities WHERE location_id = ?1",
            )?;
            let rows = stmt.query_map([location_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Existing {
                        id: r.get(1)?,
                        uid: r.get(2)?,
                        generation: r.get(3)?,
                        spec_hash: r.get(4)?,
                        hash: r.get(5)?,
                        location_key: r.get(6)?,
                        orphan: r.get(7)?,
                    },
                ))
            })?;
            for row in rows {
                let (key, e) = row?;
                existing.insert(key, e);
            }
        }
        // A first load into a small catalog builds the secondary indexes once
        // at the end (a sort) instead of updating them row by row: several
        // times faster. Still one transaction; readers keep their snapshot.
        let total: i64 = tx.query_row("SELECT count(*) FROM entities", [], |r| r.get(0))?;
        let bulk = existing.is_empty() && total < BULK_MAX_EXISTING;
        if bulk {
            tx.execute_batch(
                "DROP INDEX IF EXISTS search_kv; DROP INDEX IF EXISTS relations_source;",
            )?;
        }
        Ok(Self {
            tx,
            location_id: location_id.to_owned(),
            existing,
            seen: HashSet::new(),
            bulk,
            summary: ApplySummary::default(),
            changes: Vec::new(),
        })
    }

    pub(crate) fn put(&mut self, record: &EntityRecord) -> Result<Put, CatalogError> {
        let key = record.entity_ref.key();
        if self.seen.contains(&key) {
            return Ok(Put::Duplicate);
        }
        if !self.existing.contains_key(&key) {
            let owner: Option<Option<String>> = self
                .tx
                .prepare_cached("SELECT location_id FROM entities WHERE ref = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()?;
            if let Some(Some(owner)) = owner
                && owner != self.location_id
            {
                return Ok(Put::Conflict(owner));
            }
        }
        let computed;
        let prepared = match &record.prepared {
            Some(p) => p,
            None => {
                computed = Prepared::of(&record.entity, &record.entity_ref);
                &computed
            }
        };
        let hash = &prepared.hash;
        match self.existing.get(&key) {
            Some(e) if e.hash == *hash && !e.orphan => self.summary.unchanged += 1,
            Some(e) => {
                write_entity(self.tx, Some(e), record, prepared, &self.location_id)?;
                self.summary.updated += 1;
                self.changes.push(Change::Changed(key.clone()));
            }
            None => {
                write_entity(self.tx, None, record, prepared, &self.location_id)?;
                self.summary.added += 1;
                self.changes.push(Change::Added(key.clone()));
            }
        }
        self.seen.insert(key);
        Ok(Put::Stored)
    }

    pub(crate) fn finish(
        mut self,
        keep: &HashMap<String, Value>,
    ) -> Result<(ApplySummary, Vec<Change>), CatalogError> {
        if self.bulk {
            self.tx.execute_batch(INDEXES)?;
        }
        for (key, e) in &self.existing {
            if self.seen.contains(key) {
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
        Ok((self.summary, self.changes))
    }
}

fn write_entity(
    tx: &Transaction<'_>,
    existing: Option<&Existing>,
    record: &EntityRecord,
    prepared: &Prepared,
    location_id: &str,
) -> Result<i64, CatalogError> {
    let (hash, spec_hash) = (prepared.hash.as_str(), prepared.spec_hash.as_str());
    let (uid, generation) = match existing {
        Some(e) if e.spec_hash == spec_hash => (e.uid.clone(), e.generation),
        Some(e) => (e.uid.clone(), e.generation + 1),
        None => (uuid::Uuid::new_v4().to_string(), 1),
    };
    let mut entity = record.entity.clone();
    if let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("uid".into(), Value::String(uid.clone()));
        metadata.insert("etag".into(), Value::String(hash.to_owned()));
        metadata.insert("generation".into(), Value::from(generation));
    }
    let body = entity.to_string();
    let r = &record.entity_ref;
    let id = match existing {
        Some(e) => {
            tx.prepare_cached(
                "UPDATE entities SET kind = ?2, namespace = ?3, name = ?4, location_id = ?5, parent_ref = ?6,
                 location_key = ?7, hash = ?8, spec_hash = ?9, generation = ?10, orphan = 0, body = ?11 WHERE id = ?1",
            )?
            .execute(params![
                e.id,
                r.kind.to_lowercase(),
                r.namespace.to_lowercase(),
                r.name.to_lowercase(),
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
                r.key(),
                uid,
                r.kind.to_lowercase(),
                r.namespace.to_lowercase(),
                r.name.to_lowercase(),
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
    write_index(tx, id, prepared)?;
    // The catalog's own fields are searchable too (e.g. `metadata.uid=...`).
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO search (entity_id, key, value, original) VALUES (?1, ?2, ?3, NULL)",
    )?;
    insert.execute(params![id, "metadata.uid", uid])?;
    insert.execute(params![id, "metadata.etag", hash])?;
    insert.execute(params![id, "metadata.generation", generation.to_string()])?;
    Ok(id)
}

fn clear_index(tx: &Transaction<'_>, id: i64) -> Result<(), CatalogError> {
    tx.prepare_cached("DELETE FROM search WHERE entity_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM relations WHERE origin_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM fts WHERE rowid = ?1")?
        .execute([id])?;
    Ok(())
}

fn index_entity(
    tx: &Transaction<'_>,
    id: i64,
    entity: &Value,
    r: &EntityRef,
) -> Result<(), CatalogError> {
    write_index(tx, id, &Prepared::of(entity, r))
}

fn write_index(tx: &Transaction<'_>, id: i64, prepared: &Prepared) -> Result<(), CatalogError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO search (entity_id, key, value, original) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (key, value, original) in &prepared.rows {
        insert.execute(params![id, key, value, original])?;
    }
    tx.prepare_cached("INSERT INTO fts (rowid, doc) VALUES (?1, ?2)")?
        .execute(params![id, prepared.doc])?;
    let mut rel = tx.prepare_cached(
        "INSERT OR IGNORE INTO relations (origin_id, source, type, target, target_display) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (source, kind, target, display) in &prepared.relations {
        rel.execute(params![id, source, kind, target, display])?;
    }
    Ok(())
}

/// Leaf values by dotted, lower-cased path; arrays repeat their path.
/// Relations and status are not searchable this way (relations have their own
/// table).
fn flatten(value: &Value, path: &mut String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && (k == "relations" || k == "status") {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.to_lowercase());
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                // Backstage also matches primitive items as `<path>.<item>=true`
                // (e.g. `metadata.tags.java`); the query layer answers that
                // form from these rows rather than storing it twice.
                flatten(item, path, out);
            }
        }
        Value::String(s) if s.len() <= MAX_SEARCH_VALUE => out.push((path.clone(), s.clone())),
        Value::String(_) => {}
        Value::Null => {}
        Value::Bool(b) => out.push((path.clone(), b.to_string())),
        Value::Number(n) => out.push((path.clone(), n.to_string())),
    }
}

fn load_body(tx: &Transaction<'_>, id: i64) -> Result<(Value, EntityRef), CatalogError> {
    let (body, kind, namespace, name): (String, String, String, String) = tx
        .prepare_cached("SELECT body, kind, namespace, name FROM entities WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let value: Value = serde_json::from_str(&body)
        .map_err(|e| CatalogError::Task(format!("stored entity {id}: {e}")))?;
    let r = EntityRef::new(
        value.get("kind").and_then(Value::as_str).unwrap_or(&kind),
        value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(&namespace),
        value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(&name),
    );
    Ok((value, r))
}

fn rewrite_body(
    tx: &Transaction<'_>,
    id: i64,
    value: &Value,
    r: &EntityRef,
    orphan: bool,
    hash: &str,
) -> Result<(), CatalogError> {
    tx.prepare_cached("UPDATE entities SET body = ?2, orphan = ?3, hash = ?4 WHERE id = ?1")?
        .execute(params![id, value.to_string(), orphan, hash])?;
    clear_index(tx, id)?;
    index_entity(tx, id, value, r)
}

fn mark_orphan(tx: &Transaction<'_>, id: i64) -> Result<(), CatalogError> {
    let (mut value, r) = load_body(tx, id)?;
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(
                crate::ingest::ORPHAN_ANNOTATION.into(),
                Value::String("true".into()),
            );
        }
    }
    // An empty hash makes the next successful read rewrite the entity.
    rewrite_body(tx, id, &value, &r, true, "")
}

fn set_status(tx: &Transaction<'_>, id: i64, status: &Value) -> Result<(), CatalogError> {
    let (mut value, r) = load_body(tx, id)?;
    if let Some(root) = value.as_object_mut() {
        root.insert("status".into(), status.clone());
    }
    rewrite_body(tx, id, &value, &r, false, "")
}

/// Deletes entities by id, with their index rows.
pub(crate) fn delete_entities(
    tx: &Transaction<'_>,
    ids: &[(i64, String)],
    changes: &mut Vec<Change>,
) -> Result<(), CatalogError> {
    for (id, key) in ids {
        clear_index(tx, *id)?;
        tx.prepare_cached("DELETE FROM entities WHERE id = ?1")?
            .execute([id])?;
        changes.push(Change::Removed(key.clone()));
    }
    Ok(())
}

pub(crate) fn entities_of_location(
    conn: &Connection,
    location_id: &str,
) -> Result<Vec<(i64, String)>, CatalogError> {
    let mut stmt = conn.prepare_cached("SELECT id, ref FROM entities WHERE location_id = ?1")?;
    let rows = stmt.query_map([location_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
