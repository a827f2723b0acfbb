//! The catalog store: locations, entities with their search rows and
//! relations, queries, and the location writer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use callboard_store::catalog::{
    AncestryRow, ApplySummary, CatalogStore, Change, EntityRecord, Finish, LocationRow,
    LocationSource, LocationWriter, ORPHAN_ANNOTATION, Put, SourceRow,
};
use callboard_store::coord::CATALOG_TOPIC;
use callboard_store::query::{
    FacetCount, MAX_PAGE, Page, Position, Predicate, Selection, Splice, Start,
};
use callboard_store::{Result, StoreError};
use deadpool_postgres::{ClientWrapper, Object};
use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, IsolationLevel, Row};

use crate::Db;
use crate::error::{is_unique_violation, pg};
use crate::query::{self, SORT_COLUMNS, Window};

/// Rows fetched per round trip while streaming.
const STREAM_CHUNK: i32 = 256;

/// Longest search row (key + value + original, in bytes) that is indexed:
/// a btree entry must fit in a third of a page (about 2.7 KB).
const MAX_SEARCH_ROW_BYTES: usize = 2400;

/// The catalog on PostgreSQL.
pub(crate) struct PgCatalog {
    db: Arc<Db>,
}

impl PgCatalog {
    /// A location writer, for the whole location or one of its sources.
    async fn begin_writer(
        &self,
        location_id: &str,
        source: Option<&str>,
    ) -> Result<Option<Box<dyn LocationWriter>>> {
        let client = self.db.get().await?;
        let mut writer = PgWriter {
            client: Some(client),
            location_id: location_id.to_owned(),
            source: source.map(str::to_owned),
            existing: HashMap::new(),
            seen: HashSet::new(),
            summary: ApplySummary::default(),
            changes: Vec::new(),
            busy: false,
            committed: false,
        };
        let client = writer.client()?;
        client.batch_execute("BEGIN").await.map_err(|e| pg(&e))?;
        // Locks the location: a concurrent removal (or a second writer of
        // the same location) waits for this transaction, and this one waits
        // for a removal in progress and then finds nothing.
        let registered = client
            .query_opt(
                "SELECT 1 FROM locations WHERE id = $1 FOR UPDATE",
                &[&location_id],
            )
            .await
            .map_err(|e| pg(&e))?;
        if registered.is_none() {
            return Ok(None); // dropping the writer rolls back
        }
        let stmt = client
            .prepare_cached(
                "SELECT ref, id, uid, generation, spec_hash, hash, location_key, orphan
                 FROM entities WHERE location_id = $1 AND ($2::text IS NULL OR location_key = $2)",
            )
            .await
            .map_err(|e| pg(&e))?;
        let rows = client
            .query(&stmt, &[&location_id, &source])
            .await
            .map_err(|e| pg(&e))?;
        let mut existing = HashMap::with_capacity(rows.len());
        for r in &rows {
            let (key, e) = existing_row(r, 0)?;
            existing.insert(key, e);
        }
        writer.existing = existing;
        Ok(Some(Box::new(writer)))
    }

    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// Renders columns 2 and 3 of a row (body, [`query::relations`]): the
/// body with its relations spliced in.
fn render_row(row: &Row) -> Result<String> {
    let body: &str = row.try_get(2).map_err(|e| pg(&e))?;
    let relations: Vec<&str> = row.try_get(3).map_err(|e| pg(&e))?;
    let mut text = String::with_capacity(body.len() + 64 * relations.len() + 16);
    let mut splice = Splice::open(body, &mut text);
    for item in relations {
        let (kind, target) = query::split_relation(item)
            .ok_or_else(|| StoreError::Corrupt(format!("relation row {item:?}")))?;
        splice.push(kind, target);
    }
    splice.close();
    callboard_store::query::debug_check_json("a stored entity", &text);
    Ok(text)
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored entity: {e}")))
}

/// The position of a row of [`query::select`] with `n` sort values.
fn position(row: &Row, n: usize) -> Result<Position> {
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        values.push(
            row.try_get::<_, String>(SORT_COLUMNS + i)
                .map_err(|e| pg(&e))?,
        );
    }
    Ok(Position {
        values,
        id: row.try_get(0).map_err(|e| pg(&e))?,
    })
}

/// `SELECT id, ref, body, relations, parent_ref` of entities.
fn entity_columns() -> String {
    format!(
        "SELECT e.id, e.ref, e.body, {}, e.parent_ref FROM entities e",
        query::relations("e.ref"),
    )
}

fn location_row(row: &Row) -> Result<LocationRow> {
    Ok(LocationRow {
        id: row.try_get(0).map_err(|e| pg(&e))?,
        kind: row.try_get(1).map_err(|e| pg(&e))?,
        target: row.try_get(2).map_err(|e| pg(&e))?,
    })
}

/// Runs a dynamic statement in one round trip (parameters typed, nothing
/// prepared or cached).
async fn run(client: &Client, sql: &query::Sql) -> Result<Vec<Row>> {
    client
        .query_typed(&sql.text, &sql.typed())
        .await
        .map_err(|e| pg(&e))
}

/// Most statements one connection keeps prepared for [`run_prepared`];
/// past it the connection's statement cache is emptied (each statement is
/// closed on the server), so request shapes cannot grow it without bound.
const MAX_PREPARED: usize = 64;

/// Runs a statement whose best plan does not depend on its parameters'
/// values, prepared once per connection. PostgreSQL then reuses a plan
/// instead of planning at every call: planning was about 1 ms of a 2.4 ms
/// filtered page.
async fn run_prepared(client: &Object, sql: &query::Sql) -> Result<Vec<Row>> {
    if client.statement_cache.size() >= MAX_PREPARED {
        client.statement_cache.clear();
    }
    let statement = client
        .prepare_typed_cached(&sql.text, &sql.types())
        .await
        .map_err(|e| pg(&e))?;
    client
        .query(&statement, &sql.values())
        .await
        .map_err(|e| pg(&e))
}

/// Most facets counted at once (each on its own connection).
const MAX_PARALLEL_FACETS: usize = 4;

/// One facet's value counts, most frequent first.
async fn facet_counts(db: &Db, sql: &query::Sql) -> Result<Vec<FacetCount>> {
    let client = db.get().await?;
    let mut counts = Vec::new();
    for row in run(&client, sql).await? {
        let value: Option<String> = row.try_get(0).map_err(|e| pg(&e))?;
        let count: i64 = row.try_get(1).map_err(|e| pg(&e))?;
        counts.push(FacetCount {
            value: value.unwrap_or_default(),
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    Ok(counts)
}

/// Deletes entities and their index rows; `Removed` changes in id order.
async fn delete_entities(client: &Client, mut rows: Vec<(i64, String)>) -> Result<Vec<Change>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    rows.sort_by_key(|(id, _)| *id);
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let groups: Vec<String> = rows
        .iter()
        .map(|(_, key)| callboard_store::search::entity_group(key))
        .collect();
    let params: [&(dyn ToSql + Sync); 1] = [&ids];
    let search = client.execute("DELETE FROM search WHERE entity_id = ANY($1)", &params);
    let relations = client.execute("DELETE FROM relations WHERE origin_id = ANY($1)", &params);
    let entities = client.execute("DELETE FROM entities WHERE id = ANY($1)", &params);
    // The entities' own search documents; documents of other groups that
    // name them stay, hidden by scoped searches (as on SQLite).
    let group_params: [&(dyn ToSql + Sync); 1] = [&groups];
    let docs = client.execute("DELETE FROM search_docs WHERE grp = ANY($1)", &group_params);
    let (search, relations, entities, docs) = tokio::join!(search, relations, entities, docs);
    search.map_err(|e| pg(&e))?;
    relations.map_err(|e| pg(&e))?;
    entities.map_err(|e| pg(&e))?;
    docs.map_err(|e| pg(&e))?;
    Ok(rows
        .into_iter()
        .map(|(_, key)| Change::Removed(key))
        .collect())
}

/// Entities of a location, as `(id, ref)`.
async fn entities_of_location(client: &Client, location_id: &str) -> Result<Vec<(i64, String)>> {
    client
        .query(
            "SELECT id, ref FROM entities WHERE location_id = $1 ORDER BY id",
            &[&location_id],
        )
        .await
        .map_err(|e| pg(&e))?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(|e| pg(&e))?,
                r.try_get(1).map_err(|e| pg(&e))?,
            ))
        })
        .collect()
}

/// Appends catalog changes to the feed inside the caller's transaction.
async fn append_changes(client: &Client, changes: &[Change]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_value(changes)
        .map_err(|e| StoreError::Backend(format!("encoding changes: {e}")))?;
    crate::coord::append(client, CATALOG_TOPIC, &payload).await?;
    Ok(())
}

#[async_trait::async_trait]
impl CatalogStore for PgCatalog {
    async fn get_by_ref(&self, key: &str) -> Result<Option<Value>> {
        self.get_where("ref", key).await
    }

    async fn get_by_uid(&self, uid: &str) -> Result<Option<Value>> {
        self.get_where("uid", uid).await
    }

    async fn get_by_keys(
        &self,
        keys: &[Option<String>],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<Value>>> {
        let wanted: Vec<String> = keys.iter().flatten().cloned().collect();
        if wanted.is_empty() {
            return Ok(vec![None; keys.len()]);
        }
        let client = self.db.get().await?;
        let stmt = client
            .prepare_cached(&format!("{} WHERE e.ref = ANY($1)", entity_columns()))
            .await
            .map_err(|e| pg(&e))?;
        let rows = client.query(&stmt, &[&wanted]).await.map_err(|e| pg(&e))?;
        let mut found: HashMap<String, (i64, String)> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0).map_err(|e| pg(&e))?;
            let key: String = row.try_get(1).map_err(|e| pg(&e))?;
            found.insert(key, (id, render_row(row)?));
        }
        if let Some(p) = predicate
            && !found.is_empty()
        {
            let ids = found.values().map(|(id, _)| *id).collect();
            let sql = query::matching_ids(p, ids);
            let matching: HashSet<i64> = run(&client, &sql)
                .await?
                .iter()
                .map(|r| r.try_get::<_, i64>(0).map_err(|e| pg(&e)))
                .collect::<Result<_>>()?;
            found.retain(|_, (id, _)| matching.contains(id));
        }
        keys.iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| found.get(k))
                    .map(|(_, text)| parse(text))
                    .transpose()
            })
            .collect()
    }

    async fn query(&self, selection: &Selection, start: &Start, limit: usize) -> Result<Page> {
        let limit = limit.min(MAX_PAGE);
        let (after, reverse, offset) = match start {
            Start::Beginning => (None, false, 0),
            Start::Offset(n) => (None, false, *n),
            Start::After(p) => (Some(p), false, 0),
            Start::Before(p) => (Some(p), true, 0),
        };
        let sql = query::select(
            selection,
            &Window {
                with_body: true,
                after,
                reverse,
                offset,
                limit: Some(limit + 1),
            },
        );
        let client = self.db.get().await?;
        let mut rows = if query::plan_is_stable(selection) {
            run_prepared(&client, &sql).await?
        } else {
            run(&client, &sql).await?
        };
        drop(client);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if reverse {
            rows.reverse();
        }
        let n = selection.order.len();
        let first = rows.first().map(|r| position(r, n)).transpose()?;
        let last = rows.last().map(|r| position(r, n)).transpose()?;
        let items = rows.iter().map(render_row).collect::<Result<_>>()?;
        Ok(Page {
            items,
            first,
            last,
            more,
        })
    }

    async fn page_end(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Option<Position>> {
        let (after, offset) = match start {
            Start::Beginning | Start::Before(_) => (None, 0),
            Start::Offset(n) => (None, *n),
            Start::After(p) => (Some(p), 0),
        };
        // Only the last row of the page and the one after it are read.
        let keep = limit.max(1);
        let sql = query::select(
            selection,
            &Window {
                with_body: false,
                after,
                reverse: false,
                offset: offset.saturating_add(keep - 1),
                limit: Some(limit.saturating_add(1).saturating_sub(keep - 1)),
            },
        );
        let client = self.db.get().await?;
        let rows = run(&client, &sql).await?;
        let seen = rows.len() + keep - 1;
        if seen > limit {
            rows.first()
                .map(|r| position(r, selection.order.len()))
                .transpose()
        } else {
            Ok(None)
        }
    }

    async fn count(&self, selection: &Selection) -> Result<u64> {
        let sql = query::count(selection);
        let client = self.db.get().await?;
        let rows = run(&client, &sql).await?;
        let n: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| pg(&e))?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn facets(
        &self,
        facets: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<BTreeMap<String, Vec<FacetCount>>> {
        // Each facet is one aggregate over its search rows: they run at once,
        // each on its own pooled connection (a few at most).
        let mut out = BTreeMap::new();
        for names in facets.chunks(MAX_PARALLEL_FACETS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, name) in names.iter().enumerate() {
                let db = self.db.clone();
                let sql = query::facet(&name.to_lowercase(), predicate);
                tasks.spawn(async move { (i, facet_counts(&db, &sql).await) });
            }
            let mut results = vec![None; names.len()];
            while let Some(done) = tasks.join_next().await {
                let (i, counts) =
                    done.map_err(|e| StoreError::Backend(format!("facet task failed: {e}")))?;
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(counts?);
                }
            }
            for (name, counts) in names.iter().zip(results) {
                out.insert(name.clone(), counts.unwrap_or_default());
            }
        }
        Ok(out)
    }

    async fn stream(
        &self,
        selection: Selection,
        start: Start,
        limit: Option<usize>,
        sink: tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()> {
        let result = self.stream_into(&selection, &start, limit, &sink).await;
        if let Err(e) = &result {
            // The reader learns that the stream is cut short.
            let _ = sink.send(Err(e.clone())).await;
        }
        result
    }

    async fn count_outside(&self, location_id: &str) -> Result<u64> {
        let client = self.db.get().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM entities WHERE location_id IS DISTINCT FROM $1",
                &[&location_id],
            )
            .await
            .map_err(|e| pg(&e))?
            .try_get(0)
            .map_err(|e| pg(&e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn ancestry(&self, key: &str) -> Result<Option<Vec<AncestryRow>>> {
        let client = self.db.get().await?;
        let stmt = client
            .prepare_cached(&format!("{} WHERE e.ref = $1", entity_columns()))
            .await
            .map_err(|e| pg(&e))?;
        let mut items = Vec::new();
        let mut next = Some(key.to_owned());
        let mut seen = HashSet::new();
        while let Some(key) = next.take() {
            if !seen.insert(key.clone()) {
                break;
            }
            let Some(row) = client.query_opt(&stmt, &[&key]).await.map_err(|e| pg(&e))? else {
                if items.is_empty() {
                    return Ok(None);
                }
                break;
            };
            let parent: Option<String> = row.try_get(4).map_err(|e| pg(&e))?;
            items.push(AncestryRow {
                entity: parse(&render_row(&row)?)?,
                parent: parent.clone(),
            });
            next = parent;
        }
        Ok(Some(items))
    }

    async fn delete_by_uid(&self, uid: &str) -> Result<Vec<Change>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let rows: Vec<(i64, String)> = tx
            .query(
                "SELECT id, ref FROM entities WHERE uid = $1 FOR UPDATE",
                &[&uid],
            )
            .await
            .map_err(|e| pg(&e))?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(|e| pg(&e))?,
                    r.try_get(1).map_err(|e| pg(&e))?,
                ))
            })
            .collect::<Result<_>>()?;
        // Its source must be read again for the entity to return.
        tx.execute(
            "DELETE FROM sources s USING entities e
             WHERE e.uid = $1 AND s.location_id = e.location_id AND s.key = e.location_key",
            &[&uid],
        )
        .await
        .map_err(|e| pg(&e))?;
        let changes = delete_entities(tx.client(), rows).await?;
        append_changes(tx.client(), &changes).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(changes)
    }

    async fn locations(&self, source: Option<&str>) -> Result<Vec<(LocationRow, LocationSource)>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT id, type, target, source FROM locations
                 WHERE $1::text IS NULL OR source = $1 ORDER BY ord",
                &[&source],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| Ok((location_row(r)?, r.try_get(3).map_err(|e| pg(&e))?)))
            .collect()
    }

    async fn location(&self, id: &str) -> Result<Option<LocationRow>> {
        let client = self.db.get().await?;
        client
            .query_opt(
                "SELECT id, type, target FROM locations WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(|e| pg(&e))?
            .as_ref()
            .map(location_row)
            .transpose()
    }

    async fn location_by_target(&self, kind: &str, target: &str) -> Result<Option<LocationRow>> {
        let client = self.db.get().await?;
        location_by_target(&client, kind, target).await
    }

    async fn location_of_entity(&self, key: &str) -> Result<Option<LocationRow>> {
        let client = self.db.get().await?;
        client
            .query_opt(
                "SELECT l.id, l.type, l.target FROM entities e JOIN locations l ON l.id = e.location_id
                 WHERE e.ref = $1",
                &[&key],
            )
            .await
            .map_err(|e| pg(&e))?
            .as_ref()
            .map(location_row)
            .transpose()
    }

    async fn insert_location(
        &self,
        row: &LocationRow,
        source: &str,
    ) -> Result<(LocationRow, bool)> {
        let client = self.db.get().await?;
        // Another replica may register (or remove) the same target between
        // the two statements: try again a few times.
        for _ in 0..5 {
            let inserted = client
                .query_opt(
                    "INSERT INTO locations (id, type, target, source) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (type, target) DO NOTHING RETURNING id",
                    &[&row.id, &row.kind, &row.target, &source],
                )
                .await;
            match inserted {
                Ok(Some(_)) => return Ok((row.clone(), true)),
                Ok(None) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(format!(
                        "Location {} already exists",
                        row.id
                    )));
                }
                Err(e) => return Err(pg(&e)),
            }
            if let Some(existing) = location_by_target(&client, &row.kind, &row.target).await? {
                return Ok((existing, false));
            }
        }
        Err(StoreError::Conflict(format!(
            "Location {}:{} is being registered and removed concurrently",
            row.kind, row.target
        )))
    }

    async fn remove_location(&self, id: &str) -> Result<Option<Vec<Change>>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let removed = tx
            .execute("DELETE FROM locations WHERE id = $1", &[&id])
            .await
            .map_err(|e| pg(&e))?;
        if removed == 0 {
            return Ok(None);
        }
        let rows = entities_of_location(tx.client(), id).await?;
        let changes = delete_entities(tx.client(), rows).await?;
        append_changes(tx.client(), &changes).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(Some(changes))
    }

    async fn sync_locations(
        &self,
        source: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<Change>> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let current = tx
            .query(
                "SELECT id, type, target FROM locations WHERE source = $1 ORDER BY ord FOR UPDATE",
                &[&source],
            )
            .await
            .map_err(|e| pg(&e))?;
        let mut changes = Vec::new();
        for row in &current {
            let row = location_row(row)?;
            if wanted
                .iter()
                .any(|(k, t)| *k == row.kind && *t == row.target)
            {
                continue;
            }
            tx.execute("DELETE FROM locations WHERE id = $1", &[&row.id])
                .await
                .map_err(|e| pg(&e))?;
            let rows = entities_of_location(tx.client(), &row.id).await?;
            changes.extend(delete_entities(tx.client(), rows).await?);
        }
        for (kind, target) in wanted {
            let id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO locations (id, type, target, source) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (type, target) DO NOTHING",
                &[&id, kind, target, &source],
            )
            .await
            .map_err(|e| pg(&e))?;
        }
        append_changes(tx.client(), &changes).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(changes)
    }

    async fn begin(&self, location_id: &str) -> Result<Option<Box<dyn LocationWriter>>> {
        self.begin_writer(location_id, None).await
    }

    async fn begin_source(
        &self,
        location_id: &str,
        source: &str,
    ) -> Result<Option<Box<dyn LocationWriter>>> {
        self.begin_writer(location_id, Some(source)).await
    }

    async fn source(&self, location_id: &str, key: &str) -> Result<Option<SourceRow>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT s.hash, coalesce(
                     (SELECT array_agg(e.ref) FROM entities e
                      WHERE e.location_key = s.key AND e.location_id = s.location_id AND NOT e.orphan),
                     '{}')
                 FROM sources s WHERE s.location_id = $1 AND s.key = $2",
                &[&location_id, &key],
            )
            .await
            .map_err(|e| pg(&e))?;
        row.map(|r| {
            Ok(SourceRow {
                key: key.to_owned(),
                hash: r.try_get(0).map_err(|e| pg(&e))?,
                entities: r.try_get(1).map_err(|e| pg(&e))?,
            })
        })
        .transpose()
    }

    async fn sources(&self, location_id: &str) -> Result<Vec<SourceRow>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT s.key, s.hash, coalesce(
                     (SELECT array_agg(e.ref) FROM entities e
                      WHERE e.location_id = s.location_id AND e.location_key = s.key AND NOT e.orphan),
                     '{}')
                 FROM sources s WHERE s.location_id = $1 ORDER BY s.key",
                &[&location_id],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| {
                Ok(SourceRow {
                    key: r.try_get(0).map_err(|e| pg(&e))?,
                    hash: r.try_get(1).map_err(|e| pg(&e))?,
                    entities: r.try_get(2).map_err(|e| pg(&e))?,
                })
            })
            .collect()
    }

    async fn optimize(&self) -> Result<()> {
        let client = self.db.get().await?;
        // VACUUM also marks pages all-visible, which index-only scans (the
        // filters and facets) rely on; it may take longer than a statement
        // is allowed to.
        client
            .batch_execute("SET statement_timeout = 0")
            .await
            .map_err(|e| pg(&e))?;
        let result = client
            .batch_execute("VACUUM (ANALYZE) locations, entities, search, relations, search_docs, search_named")
            .await
            .map_err(|e| pg(&e));
        if client
            .batch_execute("RESET statement_timeout")
            .await
            .is_err()
        {
            // Never hand out a connection without its statement timeout.
            crate::Conn::discard(client);
        }
        result
    }
}

async fn location_by_target(
    client: &Client,
    kind: &str,
    target: &str,
) -> Result<Option<LocationRow>> {
    client
        .query_opt(
            "SELECT id, type, target FROM locations WHERE type = $1 AND target = $2",
            &[&kind, &target],
        )
        .await
        .map_err(|e| pg(&e))?
        .as_ref()
        .map(location_row)
        .transpose()
}

impl PgCatalog {
    async fn get_where(&self, column: &str, value: &str) -> Result<Option<Value>> {
        let client = self.db.get().await?;
        let stmt = client
            .prepare_cached(&format!("{} WHERE e.{column} = $1", entity_columns()))
            .await
            .map_err(|e| pg(&e))?;
        let row = client
            .query_opt(&stmt, &[&value])
            .await
            .map_err(|e| pg(&e))?;
        row.map(|r| parse(&render_row(&r)?)).transpose()
    }

    /// Streams through a portal inside a read-only snapshot, a chunk at a
    /// time, so memory stays flat whatever the selection's size.
    async fn stream_into(
        &self,
        selection: &Selection,
        start: &Start,
        limit: Option<usize>,
        sink: &tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()> {
        let (after, offset) = match start {
            Start::Beginning | Start::Before(_) => (None, 0),
            Start::Offset(n) => (None, *n),
            Start::After(p) => (Some(p), 0),
        };
        let sql = query::select(
            selection,
            &Window {
                with_body: true,
                after,
                reverse: false,
                offset,
                limit,
            },
        );
        let mut client = self.db.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| pg(&e))?;
        let stmt = tx
            .prepare_typed(&sql.text, &sql.types())
            .await
            .map_err(|e| pg(&e))?;
        let params: Vec<&(dyn ToSql + Sync)> = sql.typed().into_iter().map(|(p, _)| p).collect();
        let portal = tx.bind(&stmt, &params).await.map_err(|e| pg(&e))?;
        loop {
            if sink.is_closed() {
                break;
            }
            let rows = tx
                .query_portal(&portal, STREAM_CHUNK)
                .await
                .map_err(|e| pg(&e))?;
            let done = rows.len() < usize::try_from(STREAM_CHUNK).unwrap_or(usize::MAX);
            for row in &rows {
                if sink.send(Ok(render_row(row)?)).await.is_err() {
                    return Ok(());
                }
            }
            if done {
                break;
            }
        }
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(())
    }
}

/// What the writer knows of an entity the location had.
struct Existing {
    id: i64,
    uid: String,
    generation: i64,
    spec_hash: String,
    hash: String,
    location_key: Option<String>,
    orphan: bool,
}

/// What `put` decided for one record.
enum Outcome {
    Duplicate,
    Conflict(String),
    Unchanged,
    /// Index into the update batch.
    Update(usize),
    /// Index into the insert batch.
    Insert(usize),
}

/// An entity to write: identity, columns and index rows.
struct Write {
    key: String,
    uid: String,
    generation: i64,
    record: EntityRecord,
    body: String,
}

/// One location's write: an open transaction on a pooled connection owned
/// by the writer (explicit `BEGIN`/`COMMIT`, since a borrowed
/// `Transaction` could not be boxed).
struct PgWriter {
    /// `None` once finished.
    client: Option<crate::Conn>,
    location_id: String,
    /// Writing one source of the location only.
    source: Option<String>,
    existing: HashMap<String, Existing>,
    seen: HashSet<String>,
    summary: ApplySummary,
    changes: Vec<Change>,
    /// A `put` started and did not finish (its future was dropped or it
    /// failed): the transaction is in an unknown state.
    busy: bool,
    committed: bool,
}

impl PgWriter {
    fn client(&self) -> Result<&crate::Conn> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Backend("location writer already finished".into()))
    }

    async fn put_batch(&mut self, records: Vec<EntityRecord>) -> Result<Vec<Put>> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| StoreError::Backend("location writer already finished".into()))?;
        // Owners of the records this location did not have.
        let unknown: Vec<String> = records
            .iter()
            .filter(|r| !self.existing.contains_key(&r.key))
            .map(|r| r.key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let owners = owners_of(client, unknown).await?;
        // Writing one source: entities another source of the location
        // provides are duplicates, its orphans are taken over.
        let mut siblings: HashSet<String> = HashSet::new();
        if self.source.is_some() {
            let ours: Vec<&String> = owners
                .iter()
                .filter(|(_, owner)| owner.as_deref() == Some(self.location_id.as_str()))
                .map(|(key, _)| key)
                .collect();
            if !ours.is_empty() {
                let rows = client
                    .query(
                        "SELECT ref, id, uid, generation, spec_hash, hash, location_key, orphan
                         FROM entities WHERE ref = ANY($1)",
                        &[&ours],
                    )
                    .await
                    .map_err(|e| pg(&e))?;
                for r in &rows {
                    let (key, e) = existing_row(r, 0)?;
                    if e.orphan {
                        self.existing.insert(key, e);
                    } else {
                        siblings.insert(key);
                    }
                }
            }
        }
        let mut outcomes = Vec::with_capacity(records.len());
        let mut updates: Vec<(i64, Write)> = Vec::new();
        let mut inserts: Vec<Write> = Vec::new();
        for record in records {
            let key = record.key.clone();
            if self.seen.contains(&key) || siblings.contains(&key) {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            let existing = self.existing.get(&key);
            if existing.is_none()
                && let Some(Some(owner)) = owners.get(&key)
                && *owner != self.location_id
            {
                outcomes.push(Outcome::Conflict(owner.clone()));
                continue;
            }
            match existing {
                Some(e) if e.hash == record.hash && !e.orphan => outcomes.push(Outcome::Unchanged),
                Some(e) => {
                    let generation = if e.spec_hash == record.spec_hash {
                        e.generation
                    } else {
                        e.generation + 1
                    };
                    let write = prepare(key.clone(), e.uid.clone(), generation, record);
                    outcomes.push(Outcome::Update(updates.len()));
                    updates.push((e.id, write));
                }
                None => {
                    let write = prepare(key.clone(), uuid::Uuid::new_v4().to_string(), 1, record);
                    outcomes.push(Outcome::Insert(inserts.len()));
                    inserts.push(write);
                }
            }
            self.seen.insert(key);
        }

        let mut written: Vec<(i64, &Write)> = Vec::with_capacity(updates.len() + inserts.len());
        if !updates.is_empty() {
            update_entities(client, &self.location_id, &updates).await?;
            written.extend(updates.iter().map(|(id, w)| (*id, w)));
        }
        let mut refused: HashMap<usize, String> = HashMap::new();
        if !inserts.is_empty() {
            let ids = insert_entities(client, &self.location_id, &inserts).await?;
            let mut missing = Vec::new();
            for (i, w) in inserts.iter().enumerate() {
                match ids.get(&w.key) {
                    Some(id) => written.push((*id, w)),
                    None => missing.push(i),
                }
            }
            if !missing.is_empty() {
                // Another transaction stored the entity meanwhile: its owner
                // keeps it.
                let keys = missing.iter().map(|i| inserts[*i].key.clone()).collect();
                let owners = owners_of(client, keys).await?;
                for i in missing {
                    let owner = owners
                        .get(&inserts[i].key)
                        .cloned()
                        .flatten()
                        .unwrap_or_default();
                    refused.insert(i, owner);
                }
            }
        }
        if !written.is_empty() {
            index_entities(client, &written).await?;
        }

        let mut answers = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            answers.push(match outcome {
                Outcome::Duplicate => Put::Duplicate,
                Outcome::Conflict(owner) => Put::Conflict(owner),
                Outcome::Unchanged => {
                    self.summary.unchanged += 1;
                    Put::Stored
                }
                Outcome::Update(i) => {
                    self.summary.updated += 1;
                    self.changes.push(Change::Changed(updates[i].1.key.clone()));
                    Put::Stored
                }
                Outcome::Insert(i) => {
                    if let Some(owner) = refused.remove(&i) {
                        self.seen.remove(&inserts[i].key);
                        Put::Conflict(owner)
                    } else {
                        self.summary.added += 1;
                        self.changes.push(Change::Added(inserts[i].key.clone()));
                        Put::Stored
                    }
                }
            });
        }
        Ok(answers)
    }

    async fn finish_inner(&mut self, done: &Finish) -> Result<()> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| StoreError::Backend("location writer already finished".into()))?;
        let keep = &done.keep;
        let mut gone: Vec<(&String, &Existing)> = Vec::new();
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
            gone.push((key, e));
        }
        gone.sort_by_key(|(_, e)| e.id);
        // (id, status to set, or None to mark orphan)
        let mut edits: Vec<(i64, Option<&Value>)> = Vec::new();
        for (key, e) in gone {
            let failed_file = e
                .location_key
                .as_ref()
                .and_then(|k| keep.get(k))
                .or_else(|| keep.get(key));
            if let Some(status) = failed_file {
                // Its source could not be read: keep the last good version and say why.
                edits.push((e.id, Some(status)));
                self.changes.push(Change::Changed(key.clone()));
            } else if !e.orphan {
                edits.push((e.id, None));
                self.summary.orphaned += 1;
                self.changes.push(Change::Changed(key.clone()));
            }
        }
        if !edits.is_empty() {
            let ids: Vec<i64> = edits.iter().map(|(id, _)| *id).collect();
            let rows = client
                .query("SELECT id, body FROM entities WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(|e| pg(&e))?;
            let mut bodies: HashMap<i64, String> = HashMap::with_capacity(rows.len());
            for r in &rows {
                bodies.insert(
                    r.try_get(0).map_err(|e| pg(&e))?,
                    r.try_get(1).map_err(|e| pg(&e))?,
                );
            }
            let mut new_ids = Vec::with_capacity(edits.len());
            let mut new_bodies = Vec::with_capacity(edits.len());
            let mut orphans = Vec::with_capacity(edits.len());
            for (id, status) in &edits {
                let Some(body) = bodies.get(id) else { continue };
                let mut value = parse(body)?;
                match status {
                    Some(status) => {
                        if let Some(root) = value.as_object_mut() {
                            root.insert("status".into(), (*status).clone());
                        }
                    }
                    None => mark_orphan(&mut value),
                }
                new_ids.push(*id);
                new_bodies.push(value.to_string());
                orphans.push(status.is_none());
            }
            // An empty hash makes the next successful read rewrite the entity.
            client
                .execute(
                    "UPDATE entities e SET body = u.body, orphan = u.orphan, hash = ''
                     FROM unnest($1::bigint[], $2::text[], $3::boolean[]) AS u(id, body, orphan)
                     WHERE e.id = u.id",
                    &[&new_ids, &new_bodies, &orphans],
                )
                .await
                .map_err(|e| pg(&e))?;
            let orphan_ids: Vec<i64> = new_ids
                .iter()
                .zip(&orphans)
                .filter(|(_, o)| **o)
                .map(|(id, _)| *id)
                .collect();
            if !orphan_ids.is_empty() {
                let key = format!("metadata.annotations.{ORPHAN_ANNOTATION}");
                client
                    .execute(
                        "INSERT INTO search (entity_id, key, value, original)
                         SELECT id, $2, 'true', NULL FROM unnest($1::bigint[]) AS u(id)
                         ON CONFLICT DO NOTHING",
                        &[&orphan_ids, &key],
                    )
                    .await
                    .map_err(|e| pg(&e))?;
            }
        }
        client
            .execute(
                "DELETE FROM sources WHERE location_id = $1 AND ($2::text IS NULL OR key = $2)",
                &[&self.location_id, &self.source],
            )
            .await
            .map_err(|e| pg(&e))?;
        if !done.hashes.is_empty() {
            let (keys, hashes): (Vec<&str>, Vec<&str>) = done
                .hashes
                .iter()
                .map(|(k, h)| (k.as_str(), h.as_str()))
                .unzip();
            client
                .execute(
                    "INSERT INTO sources (location_id, key, hash)
                     SELECT $1, k, h FROM unnest($2::text[], $3::text[]) AS u(k, h)
                     ON CONFLICT (location_id, key) DO UPDATE SET hash = EXCLUDED.hash",
                    &[&self.location_id, &keys, &hashes],
                )
                .await
                .map_err(|e| pg(&e))?;
        }
        append_changes(client, &self.changes).await?;
        client.batch_execute("COMMIT").await.map_err(|e| pg(&e))?;
        self.committed = true;
        Ok(())
    }
}

#[async_trait::async_trait]
impl LocationWriter for PgWriter {
    async fn put(&mut self, records: Vec<EntityRecord>) -> Result<Vec<Put>> {
        if self.busy {
            return Err(StoreError::Backend(
                "location writer failed earlier; its transaction is rolled back".into(),
            ));
        }
        self.busy = true;
        let answers = self.put_batch(records).await?;
        self.busy = false;
        Ok(answers)
    }

    async fn finish(mut self: Box<Self>, done: Finish) -> Result<(ApplySummary, Vec<Change>)> {
        if self.busy {
            return Err(StoreError::Backend(
                "location writer failed earlier; its transaction is rolled back".into(),
            ));
        }
        self.busy = true;
        self.finish_inner(&done).await?;
        Ok((
            std::mem::take(&mut self.summary),
            std::mem::take(&mut self.changes),
        ))
    }
}

impl Drop for PgWriter {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.committed {
            return;
        }
        // Not committed: roll back before the connection goes back to the
        // pool. Without a runtime (shutting down), close the connection
        // instead, which rolls back on the server.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = client.batch_execute("ROLLBACK").await {
                        tracing::debug!(error = %e, "rolling back a dropped location writer failed");
                        crate::Conn::discard(client);
                    }
                });
            }
            Err(_) => crate::Conn::discard(client),
        }
    }
}

/// An `Existing` row (ref first) starting at column `at`.
fn existing_row(r: &Row, at: usize) -> Result<(String, Existing)> {
    Ok((
        r.try_get(at).map_err(|e| pg(&e))?,
        Existing {
            id: r.try_get(at + 1).map_err(|e| pg(&e))?,
            uid: r.try_get(at + 2).map_err(|e| pg(&e))?,
            generation: r.try_get(at + 3).map_err(|e| pg(&e))?,
            spec_hash: r.try_get(at + 4).map_err(|e| pg(&e))?,
            hash: r.try_get(at + 5).map_err(|e| pg(&e))?,
            location_key: r.try_get(at + 6).map_err(|e| pg(&e))?,
            orphan: r.try_get(at + 7).map_err(|e| pg(&e))?,
        },
    ))
}

/// Adds the identity the backend assigns to an entity's body.
fn prepare(key: String, uid: String, generation: i64, mut record: EntityRecord) -> Write {
    let body = std::mem::take(&mut record.entity).with_identity(&uid, &record.hash, generation);
    Write {
        key,
        uid,
        generation,
        body,
        record,
    }
}

fn mark_orphan(value: &mut Value) {
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(ORPHAN_ANNOTATION.into(), Value::String("true".into()));
        }
    }
}

/// PostgreSQL text cannot hold NUL characters.
fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_owned()
    }
}

/// Who owns each of `keys` (absent: nobody; `Some(None)`: no location).
async fn owners_of(
    client: &ClientWrapper,
    keys: Vec<String>,
) -> Result<HashMap<String, Option<String>>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client
        .prepare_cached("SELECT ref, location_id FROM entities WHERE ref = ANY($1)")
        .await
        .map_err(|e| pg(&e))?;
    client
        .query(&stmt, &[&keys])
        .await
        .map_err(|e| pg(&e))?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(|e| pg(&e))?,
                r.try_get(1).map_err(|e| pg(&e))?,
            ))
        })
        .collect()
}

async fn update_entities(
    client: &ClientWrapper,
    location_id: &str,
    updates: &[(i64, Write)],
) -> Result<()> {
    let n = updates.len();
    let mut ids = Vec::with_capacity(n);
    let mut cols = Columns::with_capacity(n);
    for (id, w) in updates {
        ids.push(*id);
        cols.push(w);
    }
    let stmt = client
        .prepare_cached(
            "UPDATE entities e SET kind = u.kind, namespace = u.namespace, name = u.name,
                location_id = $1, parent_ref = u.parent_ref, location_key = u.location_key,
                hash = u.hash, spec_hash = u.spec_hash, generation = u.generation, orphan = false,
                body = u.body, doc = u.doc
             FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[])
                  AS u(id, kind, namespace, name, parent_ref, location_key, hash, spec_hash,
                       generation, body, doc)
             WHERE e.id = u.id",
        )
        .await
        .map_err(|e| pg(&e))?;
    let params: [&(dyn ToSql + Sync); 12] = [
        &location_id,
        &ids,
        &cols.kind,
        &cols.namespace,
        &cols.name,
        &cols.parent_ref,
        &cols.location_key,
        &cols.hash,
        &cols.spec_hash,
        &cols.generation,
        &cols.body,
        &cols.doc,
    ];
    let update = client.execute(&stmt, &params);
    // Pipelined: one round trip for the three statements.
    let id_params: [&(dyn ToSql + Sync); 1] = [&ids];
    let search = client.execute("DELETE FROM search WHERE entity_id = ANY($1)", &id_params);
    let relations = client.execute(
        "DELETE FROM relations WHERE origin_id = ANY($1)",
        &id_params,
    );
    let (update, search, relations) = tokio::join!(update, search, relations);
    update.map_err(|e| pg(&e))?;
    search.map_err(|e| pg(&e))?;
    relations.map_err(|e| pg(&e))?;
    Ok(())
}

/// Inserts new entities in order; returns the ids of those inserted (a ref
/// another transaction stored meanwhile is skipped).
async fn insert_entities(
    client: &ClientWrapper,
    location_id: &str,
    inserts: &[Write],
) -> Result<HashMap<String, i64>> {
    let n = inserts.len();
    let mut refs = Vec::with_capacity(n);
    let mut uids = Vec::with_capacity(n);
    let mut cols = Columns::with_capacity(n);
    for w in inserts {
        refs.push(w.key.as_str());
        uids.push(w.uid.as_str());
        cols.push(w);
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO entities (ref, uid, kind, namespace, name, location_id, parent_ref,
                location_key, hash, spec_hash, generation, orphan, body, doc)
             SELECT u.ref, u.uid, u.kind, u.namespace, u.name, $1, u.parent_ref, u.location_key,
                u.hash, u.spec_hash, u.generation, false, u.body, u.doc
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[])
                  WITH ORDINALITY
                  AS u(ref, uid, kind, namespace, name, parent_ref, location_key, hash, spec_hash,
                       generation, body, doc, ord)
             ORDER BY u.ord
             ON CONFLICT (ref) DO NOTHING
             RETURNING id, ref",
        )
        .await
        .map_err(|e| pg(&e))?;
    let rows = client
        .query(
            &stmt,
            &[
                &location_id,
                &refs,
                &uids,
                &cols.kind,
                &cols.namespace,
                &cols.name,
                &cols.parent_ref,
                &cols.location_key,
                &cols.hash,
                &cols.spec_hash,
                &cols.generation,
                &cols.body,
                &cols.doc,
            ],
        )
        .await
        .map_err(|e| pg(&e))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(1).map_err(|e| pg(&e))?,
                r.try_get(0).map_err(|e| pg(&e))?,
            ))
        })
        .collect()
}

/// Column arrays of entities to write.
struct Columns<'a> {
    kind: Vec<&'a str>,
    namespace: Vec<&'a str>,
    name: Vec<&'a str>,
    parent_ref: Vec<Option<&'a str>>,
    location_key: Vec<&'a str>,
    hash: Vec<&'a str>,
    spec_hash: Vec<&'a str>,
    generation: Vec<i64>,
    body: Vec<String>,
    doc: Vec<String>,
}

impl<'a> Columns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            kind: Vec::with_capacity(n),
            namespace: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            parent_ref: Vec::with_capacity(n),
            location_key: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
            spec_hash: Vec::with_capacity(n),
            generation: Vec::with_capacity(n),
            body: Vec::with_capacity(n),
            doc: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, w: &'a Write) {
        let r = &w.record;
        self.kind.push(&r.kind);
        self.namespace.push(&r.namespace);
        self.name.push(&r.name);
        self.parent_ref.push(r.parent_ref.as_deref());
        self.location_key.push(&r.location_key);
        self.hash.push(&r.hash);
        self.spec_hash.push(&r.spec_hash);
        self.generation.push(w.generation);
        self.body.push(clean(&w.body));
        self.doc.push(clean(&r.doc.to_lowercase()));
    }
}

/// Writes the search rows, relation rows and search documents of freshly
/// written entities (each entity's document group is replaced).
async fn index_entities(client: &ClientWrapper, written: &[(i64, &Write)]) -> Result<()> {
    let groups: Vec<String> = written
        .iter()
        .map(|(_, w)| callboard_store::search::entity_group(&w.record.key))
        .collect();
    let docs: Vec<(String, &callboard_store::search::SearchDoc)> = groups
        .iter()
        .zip(written)
        .map(|(group, (_, w))| (group.clone(), &w.record.search))
        .collect();
    let mut s_ids = Vec::new();
    let mut s_keys = Vec::new();
    let mut s_values = Vec::new();
    let mut s_originals: Vec<Option<String>> = Vec::new();
    let mut r_ids = Vec::new();
    let mut r_sources = Vec::new();
    let mut r_types = Vec::new();
    let mut r_targets = Vec::new();
    let mut r_displays = Vec::new();
    for (id, w) in written {
        let generation = w.generation.to_string();
        let own = [
            ("metadata.uid", w.uid.as_str()),
            ("metadata.etag", w.record.hash.as_str()),
            ("metadata.generation", generation.as_str()),
        ];
        let mut pairs: HashSet<(&str, &str)> = HashSet::new();
        let rows = w
            .record
            .rows
            .iter()
            .map(|(k, v, o)| (k.as_str(), v.as_str(), o.as_deref()))
            .chain(own.iter().map(|(k, v)| (*k, *v, None)));
        for (key, value, original) in rows {
            let size = key.len() + value.len() + original.map_or(0, str::len);
            if size > MAX_SEARCH_ROW_BYTES || key.contains('\0') || value.contains('\0') {
                continue;
            }
            // The first of equal (key, value) rows wins, like INSERT OR IGNORE.
            if !pairs.insert((key, value)) {
                continue;
            }
            s_ids.push(*id);
            s_keys.push(key.to_owned());
            s_values.push(value.to_owned());
            s_originals.push(original.map(clean));
        }
        // One row per (source, type, target), the type compared
        // case-insensitively, the first wins (SQLite: INSERT OR IGNORE into
        // a key whose type is COLLATE NOCASE).
        let mut relations: HashSet<(&str, String, &str)> = HashSet::new();
        for rel in &w.record.relations {
            if !relations.insert((
                rel.source.as_str(),
                rel.kind.to_lowercase(),
                rel.target.as_str(),
            )) {
                continue;
            }
            r_ids.push(*id);
            r_sources.push(rel.source.as_str());
            r_types.push(rel.kind.as_str());
            r_targets.push(rel.target.as_str());
            r_displays.push(rel.target_display.as_str());
        }
    }
    let search = client
        .prepare_typed_cached(
            "INSERT INTO search (entity_id, key, value, original)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])",
            &[
                Type::INT8_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
            ],
        )
        .await
        .map_err(|e| pg(&e))?;
    let relations = client
        .prepare_cached(
            "INSERT INTO relations (origin_id, source, type, target, target_display)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])",
        )
        .await
        .map_err(|e| pg(&e))?;
    let search_params: [&(dyn ToSql + Sync); 4] = [&s_ids, &s_keys, &s_values, &s_originals];
    let relation_params: [&(dyn ToSql + Sync); 5] =
        [&r_ids, &r_sources, &r_types, &r_targets, &r_displays];
    let search = client.execute(&search, &search_params);
    let relations = client.execute(&relations, &relation_params);
    let docs = crate::search::write_docs(client, &groups, &docs);
    let (search, relations, docs) = tokio::join!(search, relations, docs);
    search.map_err(|e| pg(&e))?;
    relations.map_err(|e| pg(&e))?;
    docs?;
    Ok(())
}
