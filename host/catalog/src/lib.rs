//! Callboard's software catalog: Backstage-compatible entities, their
//! validation and relations, a SQLite store built for 100k+ entities, the
//! query engine behind the catalog API, and ingestion from locations.
//!
//! The catalog knows nothing of wasm or of HTTP serving: the `callboard`
//! crate puts a router in front of [`Catalog`], and plugins reach it through
//! the host's capability layer.

pub mod config;
pub mod entity_ref;
mod error;
mod fetch;
mod files;
pub mod ingest;
pub mod query;
mod read;
pub mod relations;
mod store;
pub mod validation;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use config::{CatalogConfig, LocationConfig, LocationKind};
pub use entity_ref::EntityRef;
pub use error::CatalogError;
pub use ingest::IngestProblem;
pub use query::{FacetCount, FullTextFilter, Matcher, OrderField, Position, Predicate, Selection};
pub use store::{ApplySummary, Change as CatalogEvent, FULL_TEXT_FIELDS, LocationRow};
pub use validation::ValidationError;

use ingest::Reader;
use read::not_read;
use store::Store;

/// Most entities [`Catalog::query`] returns in one page (held in memory).
pub const MAX_PAGE: usize = 1000;

/// A handle on the catalog; clones share one database and one ingestion queue.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: CatalogConfig,
    reader: Reader,
    /// Serializes ingestion so that two refreshes never interleave.
    ingest: tokio::sync::Mutex<()>,
    /// Bounds the locations read at once (each on a blocking thread).
    reads: tokio::sync::Semaphore,
    events: tokio::sync::broadcast::Sender<CatalogEvent>,
}

/// The outcome of reading one location.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RefreshReport {
    /// The location read.
    pub location: Option<LocationRow>,
    /// What changed.
    pub summary: ApplySummary,
    /// Every problem found, in reading order.
    pub problems: Vec<IngestProblem>,
    /// Refs (lower-case) of the entities the location provides.
    pub entities: Vec<String>,
}

/// Result of `POST /locations`.
#[derive(Debug, Clone)]
pub struct AddedLocation {
    /// The location (with the id it has, or would have).
    pub location: LocationRow,
    /// The entities it provides, as served.
    pub entities: Vec<Value>,
    /// Problems found while reading it.
    pub problems: Vec<IngestProblem>,
}

/// One entity of an ancestry chain.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AncestryItem {
    /// The entity as served.
    pub entity: Value,
    /// Refs of the entities that emitted it.
    pub parent_entity_refs: Vec<String>,
}

/// A page of a selection.
#[derive(Debug, Clone)]
pub struct Page {
    /// Entities as served.
    pub items: Vec<Value>,
    /// Position of the first and last item, for cursors.
    pub first: Option<Position>,
    /// Position of the last item.
    pub last: Option<Position>,
    /// Whether more rows follow in the direction read.
    pub more: bool,
}

/// Where to start a page.
#[derive(Debug, Clone, Default)]
pub enum Start {
    /// From the beginning, skipping `offset` rows.
    #[default]
    Beginning,
    /// Skip this many rows.
    Offset(usize),
    /// Right after a position.
    After(Position),
    /// Right before a position (the page ends there).
    Before(Position),
}

impl Catalog {
    /// Opens (creating and migrating if needed) the database at `db_path`.
    /// Locations from `config` are registered by [`Catalog::sync_config_locations`],
    /// which [`Catalog::run_refresh_loop`] calls first.
    pub fn open(db_path: &Path, config: &CatalogConfig) -> Result<Self, CatalogError> {
        let store = Store::open(db_path, config.max_read_connections.max(1))?;
        let reader = Reader::new(config).map_err(CatalogError::Input)?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config: config.clone(),
                reader,
                ingest: tokio::sync::Mutex::new(()),
                reads: tokio::sync::Semaphore::new(config.max_concurrent_reads.max(1)),
                events,
            }),
        })
    }

    /// The configuration the catalog was opened with.
    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    /// Entity changes (added, changed, removed), after each committed write.
    /// Slow receivers miss events (`RecvError::Lagged`) rather than slow ingestion.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CatalogEvent> {
        self.inner.events.subscribe()
    }

    // ----- reads (blocking; call from `spawn_blocking` in async code) -----

    /// The entity with this ref, as served (with relations).
    pub fn get_by_ref(&self, r: &EntityRef) -> Result<Option<Value>, CatalogError> {
        self.get_where("ref", &r.key())
    }

    /// The entity with this uid.
    pub fn get_by_uid(&self, uid: &str) -> Result<Option<Value>, CatalogError> {
        self.get_where("uid", uid)
    }

    fn get_where(&self, column: &str, value: &str) -> Result<Option<Value>, CatalogError> {
        self.inner.store.read(|conn| {
            let sql = format!("SELECT ref, body FROM entities WHERE {column} = ?1");
            let row: Option<(String, String)> = rusqlite::OptionalExtension::optional(
                conn.prepare_cached(&sql)?
                    .query_row([value], |r| Ok((r.get(0)?, r.get(1)?))),
            )?;
            row.map(|(key, body)| render_value(conn, &key, &body))
                .transpose()
        })
    }

    /// Entities by ref string, in input order (`None` for unknown or
    /// malformed refs, and for entities `predicate` rejects).
    pub fn get_by_refs(
        &self,
        refs: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<Value>>, CatalogError> {
        self.inner.store.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, body FROM entities WHERE ref = ?1")?;
            let mut out = Vec::with_capacity(refs.len());
            for r in refs {
                let Ok(parsed) = EntityRef::parse(r) else {
                    out.push(None);
                    continue;
                };
                let key = parsed.key();
                let row: Option<(i64, String)> = rusqlite::OptionalExtension::optional(
                    stmt.query_row([&key], |row| Ok((row.get(0)?, row.get(1)?))),
                )?;
                let Some((id, body)) = row else {
                    out.push(None);
                    continue;
                };
                if let Some(p) = predicate
                    && !query::matches(conn, p, id)?
                {
                    out.push(None);
                    continue;
                }
                out.push(Some(render_value(conn, &key, &body)?));
            }
            Ok(out)
        })
    }

    /// Position of the last row of a page, if more rows follow it (for a
    /// "next page" link), without reading the entities.
    pub fn page_end(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Option<Position>, CatalogError> {
        self.inner.store.read(|conn| {
            let (after, offset) = match start {
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
                selection,
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
    }

    /// A page of entities matching `selection` (at most [`MAX_PAGE`] of them).
    pub fn query(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Page, CatalogError> {
        let limit = limit.min(MAX_PAGE);
        self.inner.store.read(|conn| {
            let (after, reverse, offset) = match start {
                Start::Beginning => (None, false, 0),
                Start::Offset(n) => (None, false, *n),
                Start::After(p) => (Some(p), false, 0),
                Start::Before(p) => (Some(p), true, 0),
            };
            let mut rows = Vec::new();
            query::select(
                conn,
                selection,
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
            let items = rows
                .iter()
                .map(|r| render_value(conn, &r.key, &r.body))
                .collect::<Result<_, _>>()?;
            Ok(Page {
                items,
                first,
                last,
                more,
            })
        })
    }

    /// Number of entities matching `selection`.
    pub fn count(&self, selection: &Selection) -> Result<u64, CatalogError> {
        self.inner.store.read(|conn| query::count(conn, selection))
    }

    /// Streams matching entities as JSON text, one call of `sink` per entity,
    /// without holding the result in memory. `sink` returns false to stop.
    pub fn for_each_json(
        &self,
        selection: &Selection,
        start: &Start,
        limit: Option<usize>,
        mut sink: impl FnMut(&str, &Position) -> bool,
    ) -> Result<(), CatalogError> {
        self.inner.store.read(|conn| {
            let (after, offset) = match start {
                Start::Beginning | Start::Before(_) => (None, 0),
                Start::Offset(n) => (None, *n),
                Start::After(p) => (Some(p), 0),
            };
            let mut text = String::with_capacity(4096);
            query::select(conn, selection, true, after, false, offset, limit, |row| {
                text.clear();
                query::render(conn, &row.key, &row.body, &mut text)?;
                Ok(sink(&text, &row.position))
            })
        })
    }

    /// Value counts of each facet among entities matching `predicate`.
    pub fn facets(
        &self,
        facets: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<BTreeMap<String, Vec<FacetCount>>, CatalogError> {
        self.inner
            .store
            .read(|conn| query::facets(conn, facets, predicate))
    }

    /// The chain of entities that emitted `r` (its Location entities), starting with `r`.
    pub fn ancestry(&self, r: &EntityRef) -> Result<Option<Vec<AncestryItem>>, CatalogError> {
        self.inner.store.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT body, parent_ref FROM entities WHERE ref = ?1")?;
            let mut items = Vec::new();
            let mut next = Some(r.key());
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = next.take() {
                if !seen.insert(key.clone()) {
                    break;
                }
                let row: Option<(String, Option<String>)> = rusqlite::OptionalExtension::optional(
                    stmt.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?))),
                )?;
                let Some((body, parent)) = row else {
                    if items.is_empty() {
                        return Ok(None);
                    }
                    break;
                };
                let entity = render_value(conn, &key, &body)?;
                let parents = parent.iter().map(|p| display_ref(p)).collect();
                items.push(AncestryItem {
                    entity,
                    parent_entity_refs: parents,
                });
                next = parent;
            }
            Ok(Some(items))
        })
    }

    /// All registered locations.
    pub fn locations(&self) -> Result<Vec<LocationRow>, CatalogError> {
        self.inner.store.read(|conn| {
            Ok(store::location_rows(conn, None)?
                .into_iter()
                .map(|(l, _)| l)
                .collect())
        })
    }

    /// One registered location.
    pub fn location(&self, id: &str) -> Result<Option<LocationRow>, CatalogError> {
        self.inner
            .store
            .read(|conn| store::location_by_id(conn, id))
    }

    /// The registered location an entity came from.
    pub fn location_by_entity(&self, r: &EntityRef) -> Result<Option<LocationRow>, CatalogError> {
        self.inner.store.read(|conn| {
            let id: Option<Option<String>> = rusqlite::OptionalExtension::optional(
                conn.prepare_cached("SELECT location_id FROM entities WHERE ref = ?1")?
                    .query_row([r.key()], |row| row.get(0)),
            )?;
            match id.flatten() {
                Some(id) => store::location_by_id(conn, &id),
                None => Ok(None),
            }
        })
    }

    /// Validates an entity the way ingestion would.
    pub fn validate(entity: &Value) -> Vec<ValidationError> {
        validation::validate_entity(entity)
    }

    // ----- writes -----

    /// Removes an entity (no-op for an unknown uid). It returns on the next
    /// refresh if its location still lists it.
    pub async fn delete_by_uid(&self, uid: &str) -> Result<(), CatalogError> {
        let uid = uid.to_owned();
        let changes = self
            .blocking(move |c| {
                c.inner.store.write(|tx| {
                    let row: Option<(i64, String)> = rusqlite::OptionalExtension::optional(
                        tx.query_row("SELECT id, ref FROM entities WHERE uid = ?1", [&uid], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        }),
                    )?;
                    let mut changes = Vec::new();
                    if let Some(row) = row {
                        store::delete_entities(tx, &[row], &mut changes)?;
                    }
                    Ok(changes)
                })
            })
            .await?;
        self.publish(changes);
        Ok(())
    }

    /// Registers a location and reads it. With `dry_run`, reads it and
    /// returns what it would provide without storing anything.
    pub async fn add_location(
        &self,
        kind: &str,
        target: &str,
        dry_run: bool,
    ) -> Result<AddedLocation, CatalogError> {
        let parsed = LocationKind::parse(kind).ok_or_else(|| {
            CatalogError::input(format!(
                "Unknown location type \"{kind}\"; expected file or url"
            ))
        })?;
        if !self.inner.config.api_location_types.contains(&parsed) {
            return Err(CatalogError::input(format!(
                "Locations of type \"{kind}\" cannot be added through the API (catalog.api_location_types)"
            )));
        }
        // A relative path would resolve against the server's folder and echo it back.
        if parsed == LocationKind::File && !Path::new(target).is_absolute() {
            return Err(CatalogError::input(format!(
                "File location \"{target}\" must be an absolute path"
            )));
        }
        let target = ingest::normalize_target(parsed, target).map_err(CatalogError::Input)?;
        if parsed == LocationKind::File {
            let probe = LocationRow {
                id: String::new(),
                kind: kind.to_owned(),
                target: target.clone(),
            };
            let inside = self
                .blocking(move |c| {
                    let scope = c.scope(&probe, "api")?;
                    Ok(files::within(Path::new(&probe.target), &scope.roots))
                })
                .await?;
            if !inside {
                return Err(CatalogError::input(format!(
                    "File location \"{target}\" is outside the folders locations may be read from (catalog.file_roots)"
                )));
            }
        }
        let existing = {
            let (kind, target) = (kind.to_owned(), target.clone());
            self.blocking(move |c| {
                c.inner
                    .store
                    .read(|conn| store::location_by_target(conn, &kind, &target))
            })
            .await?
        };
        if let Some(existing) = existing {
            if dry_run {
                return self.preview_location(existing).await;
            }
            return Err(CatalogError::Conflict(format!(
                "Location {kind}:{target} already exists"
            )));
        }
        let location = LocationRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_owned(),
            target,
        };
        if dry_run {
            return self.preview_location(location).await;
        }
        let row = location.clone();
        self.blocking(move |c| {
            c.inner
                .store
                .write(|tx| store::insert_location(tx, &row, "api"))
        })
        .await?;
        let report = match self.refresh_location(&location).await {
            Ok(report) => report,
            Err(e) => {
                // Nothing of it was stored: do not keep it registered either.
                let id = location.id.clone();
                let _ = self
                    .blocking(move |c| {
                        c.inner.store.write(|tx| {
                            tx.execute("DELETE FROM locations WHERE id = ?1", [&id])?;
                            Ok(())
                        })
                    })
                    .await;
                return Err(e);
            }
        };
        let refs: Vec<String> = report.entities.iter().map(|k| display_ref(k)).collect();
        let entities = self.blocking(move |c| c.get_by_refs(&refs, None)).await?;
        Ok(AddedLocation {
            location,
            entities: entities.into_iter().flatten().collect(),
            problems: report.problems,
        })
    }

    /// Registers a location (or returns it if it exists) without reading it,
    /// for the operator's command line: its folder may be read like a
    /// configured location's.
    pub async fn register_location(
        &self,
        kind: &str,
        target: &str,
    ) -> Result<LocationRow, CatalogError> {
        let parsed = LocationKind::parse(kind).ok_or_else(|| {
            CatalogError::input(format!(
                "Unknown location type \"{kind}\"; expected file or url"
            ))
        })?;
        let target = ingest::normalize_target(parsed, target).map_err(CatalogError::Input)?;
        let kind = kind.to_owned();
        self.blocking(move |c| {
            c.inner.store.write(|tx| {
                if let Some(row) = store::location_by_target(tx, &kind, &target)? {
                    return Ok(row);
                }
                let row = LocationRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    kind,
                    target,
                };
                store::insert_location(tx, &row, "cli")?;
                Ok(row)
            })
        })
        .await
    }

    /// Unregisters a location and removes every entity it provided.
    pub async fn remove_location(&self, id: &str) -> Result<(), CatalogError> {
        let id = id.to_owned();
        let _guard = self.inner.ingest.lock().await;
        let changes = self
            .blocking(move |c| {
                c.inner.store.write(|tx| {
                    if tx.execute("DELETE FROM locations WHERE id = ?1", [&id])? == 0 {
                        return Err(CatalogError::NotFound(format!("Location {id} not found")));
                    }
                    let mut changes = Vec::new();
                    let ids = store::entities_of_location(tx, &id)?;
                    store::delete_entities(tx, &ids, &mut changes)?;
                    Ok(changes)
                })
            })
            .await?;
        self.publish(changes);
        Ok(())
    }

    /// Reads again the location that provides an entity.
    pub async fn refresh_entity(&self, r: &EntityRef) -> Result<RefreshReport, CatalogError> {
        let message = format!("Entity {r} not found");
        let r = r.clone();
        let location = self
            .blocking(move |c| c.location_by_entity(&r))
            .await?
            .ok_or(CatalogError::NotFound(message))?;
        self.refresh_location(&location).await
    }

    /// Registers the configured locations that are not registered yet and
    /// drops those that left the configuration (with their entities).
    pub async fn sync_config_locations(&self) -> Result<(), CatalogError> {
        let mut wanted = Vec::new();
        for l in &self.inner.config.locations {
            let target =
                ingest::normalize_target(l.kind, &l.target).map_err(CatalogError::Input)?;
            wanted.push((l.kind.as_str().to_owned(), target));
        }
        let changes = self
            .blocking(move |c| {
                c.inner.store.write(|tx| {
                    let mut changes = Vec::new();
                    for (row, _) in store::location_rows(tx, Some("config"))? {
                        if !wanted
                            .iter()
                            .any(|(k, t)| *k == row.kind && *t == row.target)
                        {
                            tx.execute("DELETE FROM locations WHERE id = ?1", [&row.id])?;
                            let ids = store::entities_of_location(tx, &row.id)?;
                            store::delete_entities(tx, &ids, &mut changes)?;
                        }
                    }
                    for (kind, target) in wanted {
                        if store::location_by_target(tx, &kind, &target)?.is_none() {
                            let row = LocationRow {
                                id: uuid::Uuid::new_v4().to_string(),
                                kind,
                                target,
                            };
                            store::insert_location(tx, &row, "config")?;
                        }
                    }
                    Ok(changes)
                })
            })
            .await?;
        self.publish(changes);
        Ok(())
    }

    /// Reads every registered location once.
    pub async fn refresh_all(&self) -> Result<Vec<RefreshReport>, CatalogError> {
        let mut reports = Vec::new();
        for location in self.blocking(|c| c.locations()).await? {
            match self.refresh_location(&location).await {
                Ok(report) => reports.push(report),
                // One failing location must not keep the others from refreshing.
                Err(e) => {
                    let origin = format!("{}:{}", location.kind, location.target);
                    tracing::error!(location = %origin, "catalog: refresh failed: {e}");
                    reports.push(RefreshReport {
                        problems: vec![IngestProblem {
                            location: origin,
                            line: None,
                            entity: None,
                            name: "Error".into(),
                            message: match e {
                                CatalogError::Location(m) => m,
                                _ => "The location could not be refreshed; see the log".into(),
                            },
                        }],
                        location: Some(location),
                        ..RefreshReport::default()
                    });
                }
            }
        }
        self.blocking(|c| c.inner.store.optimize()).await?;
        Ok(reports)
    }

    /// Registers the configured locations, reads everything, then reads it all
    /// again every `refresh_interval_secs` (never, if 0). Runs until dropped.
    pub async fn run_refresh_loop(self) {
        if let Err(e) = self.sync_config_locations().await {
            tracing::error!("catalog: configured locations: {e}");
        }
        loop {
            let started = std::time::Instant::now();
            match self.refresh_all().await {
                Ok(reports) => {
                    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
                    tracing::info!(
                        locations = reports.len(),
                        problems,
                        elapsed_ms = started.elapsed().as_millis(),
                        "catalog: refreshed"
                    );
                }
                Err(e) => tracing::error!("catalog: refresh failed: {e}"),
            }
            let interval = self.inner.config.refresh_interval_secs;
            if interval == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    }

    /// Reads one location and stores the result in one transaction. Files
    /// are read and parsed on one blocking thread while another stores them,
    /// so the two run in parallel, the async workers stay free, and memory
    /// stays flat whatever the catalog's size. A location that breaches a cap
    /// stores nothing and keeps the entities it had.
    pub async fn refresh_location(
        &self,
        location: &LocationRow,
    ) -> Result<RefreshReport, CatalogError> {
        self.refresh_location_with_progress(location, |_| {}).await
    }

    /// [`Catalog::refresh_location`], calling `progress(entities)` after each
    /// file is stored (for progress bars).
    pub async fn refresh_location_with_progress(
        &self,
        location: &LocationRow,
        progress: impl Fn(usize) + Send + 'static,
    ) -> Result<RefreshReport, CatalogError> {
        let _guard = self.inner.ingest.lock().await;
        let _permit = self.read_permit().await?;
        let (batches, mut batch_rx) = tokio::sync::mpsc::channel::<ingest::Batch>(4);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<ingest::Harvest>(1);
        let writer = {
            let c = self.clone();
            let location = location.clone();
            tokio::task::spawn_blocking(
                move || -> Result<(RefreshReport, Vec<CatalogEvent>), CatalogError> {
                    let names: HashMap<String, String> = c.inner.store.read(|conn| {
                        Ok(store::location_rows(conn, None)?
                            .into_iter()
                            .map(|(l, _)| (l.id, format!("{}:{}", l.kind, l.target)))
                            .collect())
                    })?;
                    c.inner.store.write(|tx| {
                        // The location may have been removed meanwhile: store nothing.
                        if store::location_by_id(tx, &location.id)?.is_none() {
                            return Ok((RefreshReport::default(), Vec::new()));
                        }
                        let mut writer = store::Writer::new(tx, &location.id)?;
                        let mut conflicts = Vec::new();
                        while let Some(batch) = batch_rx.blocking_recv() {
                            progress(batch.len());
                            for (record, parent) in batch {
                                if let store::Put::Conflict(owner) = writer.put(&record)? {
                                    conflicts.push((parent, record, owner));
                                }
                            }
                        }
                        let mut harvest = done_rx.recv().map_err(|_| {
                            CatalogError::Task("reading the location stopped early".into())
                        })?;
                        if let Some(reason) = harvest.aborted.take() {
                            // Rolls the transaction back: the location keeps what it had.
                            return Err(not_read(&location, &reason));
                        }
                        for (parent, record, owner) in &conflicts {
                            harvest.conflict(*parent, record, names.get(owner).unwrap_or(owner));
                        }
                        let mut harvest = harvest.finish();
                        // Location entities last: by now they carry every problem
                        // found below them.
                        let locations = std::mem::take(&mut harvest.records);
                        for (i, record) in locations.iter().enumerate() {
                            if let store::Put::Conflict(owner) = writer.put(record)? {
                                let parent = harvest.parents.get(i).copied().flatten().unwrap_or(0);
                                harvest.conflict(
                                    parent,
                                    record,
                                    names.get(&owner).unwrap_or(&owner),
                                );
                            }
                        }
                        let (summary, changes) = writer.finish(&harvest.keep)?;
                        Ok((
                            RefreshReport {
                                location: Some(location),
                                summary,
                                problems: harvest.problems,
                                entities: harvest.keys,
                            },
                            changes,
                        ))
                    })
                },
            )
        };
        let reader = {
            let c = self.clone();
            let location = location.clone();
            tokio::task::spawn_blocking(move || -> Result<(), CatalogError> {
                let source = c.inner.store.read(|conn| {
                    Ok(store::location_rows(conn, None)?
                        .into_iter()
                        .find(|(l, _)| l.id == location.id)
                        .map_or_else(|| "api".to_owned(), |(_, source)| source))
                })?;
                let scope = c.scope(&location, &source)?;
                let harvest =
                    c.inner
                        .reader
                        .harvest(&location, &scope, ingest::Sink::Send(&batches));
                drop(batches);
                // The writer may have failed already; its error is what matters.
                let _ = done_tx.send(harvest);
                Ok(())
            })
        };
        let read = reader
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?;
        let written = writer
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?;
        // A reader error (the database) explains a writer that stopped early.
        read?;
        let (report, changes) = written?;
        self.publish(changes);
        Ok(report)
    }

    fn publish(&self, changes: Vec<CatalogEvent>) {
        for change in changes {
            // No receivers is fine: nobody is listening yet.
            let _ = self.inner.events.send(change);
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.clone();
        tokio::task::spawn_blocking(move || f(&catalog))
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?
    }
}

/// A JSON array of entities, produced chunk by chunk on a blocking thread
/// (see [`Catalog::stream_json_array`]).
pub struct JsonChunks {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, CatalogError>>,
}

impl futures_core::Stream for JsonChunks {
    type Item = Result<bytes::Bytes, CatalogError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Chunks of about this size keep memory flat and syscalls few.
const CHUNK: usize = 64 * 1024;

impl Catalog {
    /// Streams the selected entities as one JSON array (optionally keeping
    /// only `fields`), never holding more than a few chunks in memory. Must be
    /// called inside a tokio runtime.
    pub fn stream_json_array(
        &self,
        selection: Selection,
        start: Start,
        limit: Option<usize>,
        fields: Option<Vec<String>>,
    ) -> JsonChunks {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let catalog = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(CHUNK + 8192);
            buf.push(b'[');
            let mut first = true;
            let mut open = true;
            let result = catalog.for_each_json(&selection, &start, limit, |json, _| {
                if !first {
                    buf.push(b',');
                }
                first = false;
                match &fields {
                    Some(fields) => match serde_json::from_str::<Value>(json) {
                        Ok(v) => {
                            buf.extend_from_slice(query::project(&v, fields).to_string().as_bytes())
                        }
                        Err(_) => buf.extend_from_slice(b"null"),
                    },
                    None => buf.extend_from_slice(json.as_bytes()),
                }
                if buf.len() >= CHUNK {
                    let chunk = bytes::Bytes::from(std::mem::replace(
                        &mut buf,
                        Vec::with_capacity(CHUNK + 8192),
                    ));
                    // The client went away: stop reading.
                    open = tx.blocking_send(Ok(chunk)).is_ok();
                }
                open
            });
            match result {
                Ok(()) if open => {
                    buf.push(b']');
                    let _ = tx.blocking_send(Ok(bytes::Bytes::from(buf)));
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::error!("catalog: streaming entities failed: {e}");
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        JsonChunks { rx }
    }
}

/// Encodes an opaque cursor (base64 of JSON, as Backstage's cursors are; the
/// client library peeks inside them).
pub fn encode_cursor<T: serde::Serialize>(value: &T) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor<T: serde::de::DeserializeOwned>(
    what: &str,
    cursor: &str,
) -> Result<T, CatalogError> {
    use base64::Engine as _;
    let malformed = || CatalogError::input(format!("Malformed {what}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor))
        .map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// An entity as a dry run shows it (no uid, no relations stored yet).
pub(crate) fn preview(record: &store::EntityRecord) -> Value {
    let mut entity = record.entity.clone();
    let rels: Vec<Value> = relations::relations_of(&record.entity, &record.entity_ref)
        .into_iter()
        .filter(|r| r.source == record.entity_ref)
        .map(|r| serde_json::json!({"type": r.kind, "targetRef": r.target.to_string()}))
        .collect();
    if let Some(root) = entity.as_object_mut() {
        root.insert("relations".into(), Value::Array(rels));
    }
    entity
}

/// A stored lower-case key in display form (identical: keys are lower-case).
pub(crate) fn display_ref(key: &str) -> String {
    key.to_owned()
}

fn render_value(conn: &rusqlite::Connection, key: &str, body: &str) -> Result<Value, CatalogError> {
    let mut text = String::with_capacity(body.len() + 256);
    query::render(conn, key, body, &mut text)?;
    serde_json::from_str(&text).map_err(|e| CatalogError::Task(format!("stored entity {key}: {e}")))
}
