//! Callboard's software catalog: Backstage-compatible entities, their
//! validation and relations, ingestion from locations, and the catalog API's
//! operations over a [`callboard_store::CatalogStore`].
//!
//! The catalog knows nothing of wasm, HTTP serving or database drivers: the
//! `callboard` crate puts a router in front of [`Catalog`] and chooses the
//! backend (`callboard-store-sqlite` or `callboard-store-postgres`).

pub mod config;
pub mod entity_ref;
mod error;
mod fetch;
mod files;
pub mod ingest;
mod memo;
pub mod metrics;
mod read;
mod record;
pub mod relations;
pub mod validation;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use callboard_store::catalog::Finish;
use callboard_store::coord::CATALOG_TOPIC;
use callboard_store::{CatalogStore, Feed, Lease, Leases, Stores};
use serde_json::Value;

pub use callboard_store::catalog::{ApplySummary, Change as CatalogEvent, LocationRow};
pub use callboard_store::query::{
    FULL_TEXT_FIELDS, FacetCount, FullTextFilter, MAX_PAGE, Matcher, OrderField, Page, Position,
    Predicate, Selection, Start, entity_value, project, push_json_array,
};
pub use config::{CatalogConfig, LocationConfig, LocationKind};
pub use entity_ref::EntityRef;
pub use error::CatalogError;
pub use ingest::IngestProblem;
pub use validation::ValidationError;

use ingest::Reader;
use read::not_read;

/// Events of the change feed older than this are pruned.
const FEED_RETENTION: Duration = Duration::from_secs(3600);

/// A handle on the catalog; clones share one store and one ingestion queue.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CatalogStore>,
    feed: Arc<dyn Feed>,
    leases: Arc<dyn Leases>,
    config: CatalogConfig,
    reader: Reader,
    /// Serializes this process's ingestion so that two refreshes never
    /// interleave (replicas are kept apart by leases).
    ingest: tokio::sync::Mutex<()>,
    /// Bounds the locations read at once (each on a blocking thread).
    reads: tokio::sync::Semaphore,
    events: tokio::sync::broadcast::Sender<CatalogEvent>,
    /// This process's name in leases.
    replica: String,
    /// Match counts, until the catalog changes.
    counts: memo::Memo<u64>,
    /// Facet counts, until the catalog changes.
    facets: memo::Memo<BTreeMap<String, Vec<FacetCount>>>,
    /// The refresh loop's start-up pass has finished (readiness).
    first_load: std::sync::atomic::AtomicBool,
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
    /// Files and URLs not parsed again: their content hash matched the one
    /// stored when their entities were (their entities count as unchanged).
    pub unchanged_sources: usize,
}

impl RefreshReport {
    /// Whether the refresh changed any entity.
    pub fn changed(&self) -> bool {
        let s = &self.summary;
        s.added + s.updated + s.orphaned > 0
    }
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

impl Catalog {
    /// A catalog over an opened backend. Starts following the change feed
    /// from its current head, so [`Catalog::subscribe`] sees every change
    /// committed from now on, by this replica or another. Must be called
    /// inside a tokio runtime.
    pub async fn open(stores: &Stores, config: &CatalogConfig) -> Result<Self, CatalogError> {
        let reader = Reader::new(config).map_err(CatalogError::Input)?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let head = stores.feed.head().await?;
        let catalog = Self {
            inner: Arc::new(Inner {
                store: stores.catalog.clone(),
                feed: stores.feed.clone(),
                leases: stores.leases.clone(),
                config: config.clone(),
                reader,
                ingest: tokio::sync::Mutex::new(()),
                reads: tokio::sync::Semaphore::new(config.max_concurrent_reads.max(1)),
                events,
                replica: uuid::Uuid::new_v4().to_string(),
                counts: memo::Memo::new(),
                facets: memo::Memo::new(),
                first_load: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        tokio::spawn(follow_feed(Arc::downgrade(&catalog.inner), head));
        Ok(catalog)
    }

    /// Whether the refresh loop ([`Catalog::run_refresh_loop`]) has
    /// finished a pass without a storage error: at start-up it reads every
    /// location this replica claims (a location's own problems do not
    /// count against it). Readiness waits for it.
    pub fn first_load_done(&self) -> bool {
        self.inner
            .first_load
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The configuration the catalog was opened with.
    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    /// Entity changes (added, changed, removed) after each committed write,
    /// on any replica. Slow receivers miss events (`RecvError::Lagged`)
    /// rather than slow ingestion.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CatalogEvent> {
        self.inner.events.subscribe()
    }

    // ----- reads -----

    /// The entity with this ref, as served (with relations).
    pub async fn get_by_ref(&self, r: &EntityRef) -> Result<Option<Value>, CatalogError> {
        Ok(self.inner.store.get_by_ref(&r.key()).await?)
    }

    /// The entity with this uid.
    pub async fn get_by_uid(&self, uid: &str) -> Result<Option<Value>, CatalogError> {
        Ok(self.inner.store.get_by_uid(uid).await?)
    }

    /// Entities by ref string, in input order (`None` for unknown or
    /// malformed refs, and for entities `predicate` rejects).
    pub async fn get_by_refs(
        &self,
        refs: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<Value>>, CatalogError> {
        let keys: Vec<Option<String>> = refs
            .iter()
            .map(|r| EntityRef::parse(r).ok().map(|r| r.key()))
            .collect();
        Ok(self.inner.store.get_by_keys(&keys, predicate).await?)
    }

    /// Position of the last row of a page, if more rows follow it (for a
    /// "next page" link), without reading the entities.
    pub async fn page_end(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Option<Position>, CatalogError> {
        Ok(self.inner.store.page_end(selection, start, limit).await?)
    }

    /// A page of entities matching `selection` (at most [`MAX_PAGE`] of them).
    pub async fn query(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Page, CatalogError> {
        Ok(self
            .inner
            .store
            .query(selection, start, limit.min(MAX_PAGE))
            .await?)
    }

    /// Number of entities matching `selection`.
    ///
    /// Remembered until the catalog changes (see `memo`): paging through a
    /// result, or many clients asking the same, counts once.
    pub async fn count(&self, selection: &Selection) -> Result<u64, CatalogError> {
        let query = format!("{selection:?}");
        let head = self.inner.feed.head().await?;
        if let Some(n) = self.inner.counts.get(&query, head) {
            return Ok(n);
        }
        let n = self.inner.store.count(selection).await?;
        self.inner.counts.put(query, head, n);
        Ok(n)
    }

    /// Value counts of each facet among entities matching `predicate`.
    pub async fn facets(
        &self,
        facets: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<BTreeMap<String, Vec<FacetCount>>, CatalogError> {
        // Remembered until the catalog changes, as counts are.
        let query = format!("{facets:?} {predicate:?}");
        let head = self.inner.feed.head().await?;
        if let Some(answer) = self.inner.facets.get(&query, head) {
            return Ok(answer);
        }
        let answer = self.inner.store.facets(facets, predicate).await?;
        self.inner.facets.put(query, head, answer.clone());
        Ok(answer)
    }

    /// The chain of entities that emitted `r` (its Location entities), starting with `r`.
    pub async fn ancestry(&self, r: &EntityRef) -> Result<Option<Vec<AncestryItem>>, CatalogError> {
        let Some(rows) = self.inner.store.ancestry(&r.key()).await? else {
            return Ok(None);
        };
        Ok(Some(
            rows.into_iter()
                .map(|row| AncestryItem {
                    entity: row.entity,
                    parent_entity_refs: row.parent.iter().map(|p| display_ref(p)).collect(),
                })
                .collect(),
        ))
    }

    /// All registered locations.
    pub async fn locations(&self) -> Result<Vec<LocationRow>, CatalogError> {
        Ok(self
            .inner
            .store
            .locations(None)
            .await?
            .into_iter()
            .map(|(l, _)| l)
            .collect())
    }

    /// One registered location.
    pub async fn location(&self, id: &str) -> Result<Option<LocationRow>, CatalogError> {
        Ok(self.inner.store.location(id).await?)
    }

    /// The registered location an entity came from.
    pub async fn location_by_entity(
        &self,
        r: &EntityRef,
    ) -> Result<Option<LocationRow>, CatalogError> {
        Ok(self.inner.store.location_of_entity(&r.key()).await?)
    }

    /// Validates an entity the way ingestion would.
    pub fn validate(entity: &Value) -> Vec<ValidationError> {
        validation::validate_entity(entity)
    }

    // ----- writes -----

    /// Removes an entity (no-op for an unknown uid). It returns on the next
    /// refresh if its location still lists it.
    pub async fn delete_by_uid(&self, uid: &str) -> Result<(), CatalogError> {
        self.inner.store.delete_by_uid(uid).await?;
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
            let scope = self.scope(&probe, "api").await?;
            if !files::within(Path::new(&probe.target), &scope.roots) {
                return Err(CatalogError::input(format!(
                    "File location \"{target}\" is outside the folders locations may be read from (catalog.file_roots)"
                )));
            }
        }
        if let Some(existing) = self.inner.store.location_by_target(kind, &target).await? {
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
        let (location, new) = self.inner.store.insert_location(&location, "api").await?;
        if !new {
            // Another replica registered it a moment ago.
            return Err(CatalogError::Conflict(format!(
                "Location {}:{} already exists",
                location.kind, location.target
            )));
        }
        let report = match self.refresh_location(&location).await {
            Ok(report) => report,
            Err(e) => {
                // Nothing of it was stored: do not keep it registered either.
                let _ = self.inner.store.remove_location(&location.id).await;
                return Err(e);
            }
        };
        let refs: Vec<String> = report.entities.iter().map(|k| display_ref(k)).collect();
        let entities = self.get_by_refs(&refs, None).await?;
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
        let row = LocationRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_owned(),
            target,
        };
        Ok(self.inner.store.insert_location(&row, "cli").await?.0)
    }

    /// Unregisters a location and removes every entity it provided.
    pub async fn remove_location(&self, id: &str) -> Result<(), CatalogError> {
        let _guard = self.inner.ingest.lock().await;
        match self.inner.store.remove_location(id).await? {
            Some(_) => Ok(()),
            None => Err(CatalogError::NotFound(format!("Location {id} not found"))),
        }
    }

    /// Reads again what provides an entity: the file or URL it came from
    /// alone when that can stand on its own (it was read cleanly last time,
    /// holds no Location entity, and does not grow), else its whole
    /// location.
    pub async fn refresh_entity(&self, r: &EntityRef) -> Result<RefreshReport, CatalogError> {
        let location = self
            .location_by_entity(r)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("Entity {r} not found")))?;
        if let Some(report) = self.refresh_source(r, &location).await? {
            return Ok(report);
        }
        self.refresh_location(&location).await
    }

    /// The one-source refresh of [`Catalog::refresh_entity`]; `None` when
    /// the whole location must be read instead.
    async fn refresh_source(
        &self,
        r: &EntityRef,
        location: &LocationRow,
    ) -> Result<Option<RefreshReport>, CatalogError> {
        if r.kind.eq_ignore_ascii_case("location") {
            return Ok(None);
        }
        let store = &self.inner.store;
        let Some(row) = store
            .ancestry(&r.key())
            .await?
            .and_then(|rows| rows.into_iter().next())
        else {
            return Ok(None);
        };
        let source = row
            .entity
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ingest::MANAGED_BY_LOCATION))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (Some(source), Some(parent)) = (source, row.parent) else {
            return Ok(None);
        };
        let Some(target) = ingest::Target::from_key(&source) else {
            return Ok(None);
        };
        let Ok(parent_ref) = EntityRef::parse(&parent) else {
            return Ok(None);
        };
        let _guard = self.inner.ingest.lock().await;
        let Some(known) = store.source(&location.id, &source).await? else {
            return Ok(None);
        };
        let _permit = self.read_permit().await?;
        let registered_by = store
            .locations(None)
            .await?
            .into_iter()
            .find(|(l, _)| l.id == location.id)
            .map_or_else(|| "api".to_owned(), |(_, by)| by);
        // No entity cap applies: a file that grows is read with its whole
        // location, under the caps.
        let scope = ingest::Scope {
            roots: self.roots(location, &registered_by),
            max_entities: usize::MAX,
            entities_cap: String::new(),
            sources: Arc::default(),
        };
        let origin = format!("{}:{}", location.kind, location.target);
        let read = {
            let c = self.clone();
            let known_hash = known.hash.clone();
            tokio::task::spawn_blocking(move || {
                c.inner
                    .reader
                    .read_one(&target, parent_ref, &origin, &scope, &known_hash)
            })
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?
        };
        let (hash, records) = match read {
            read::ReadOne::Whole => return Ok(None),
            read::ReadOne::Unchanged => (known.hash.clone(), None),
            read::ReadOne::Changed(hash, records) => (hash, Some(records)),
        };
        let report = |summary, entities: Vec<String>, unchanged_sources| RefreshReport {
            location: Some(location.clone()),
            summary,
            problems: Vec::new(),
            entities,
            unchanged_sources,
        };
        let Some(records) = records else {
            let summary = callboard_store::catalog::ApplySummary {
                unchanged: known.entities.len(),
                ..Default::default()
            };
            return Ok(Some(report(summary, known.entities, 1)));
        };
        // A growing file may pass the location's entity caps: the whole
        // location is read, under them.
        if records.len() > known.entities.len() {
            return Ok(None);
        }
        let Some(mut writer) = store.begin_source(&location.id, &source).await? else {
            return Ok(None);
        };
        let keys: Vec<String> = records.iter().map(|r| r.entity_ref.key()).collect();
        let stored: Vec<_> = records.into_iter().map(|r| r.into_store().0).collect();
        let puts = writer.put(stored).await?;
        if puts
            .iter()
            .any(|p| *p != callboard_store::catalog::Put::Stored)
        {
            // A conflict or a duplicate is reported by the whole location's
            // read; dropping the writer stores nothing.
            return Ok(None);
        }
        let done = Finish {
            hashes: vec![(source, hash)],
            ..Finish::default()
        };
        let (summary, _changes) = writer.finish(done).await?;
        Ok(Some(report(summary, keys, 0)))
    }

    /// The folders files of the catalog's sources may be read from:
    /// `catalog.file_roots` and the folder of every configured file
    /// location, canonical (for docs sources next to descriptor files).
    pub fn file_roots(&self) -> Vec<std::path::PathBuf> {
        let config = &self.inner.config;
        let mut dirs = config.file_roots.clone();
        for l in config
            .locations
            .iter()
            .filter(|l| l.kind == LocationKind::File)
        {
            if let Ok(target) = ingest::normalize_target(l.kind, &l.target) {
                dirs.push(files::base_dir(&target));
            }
        }
        files::canonical_roots(dirs)
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
        self.inner.store.sync_locations("config", &wanted).await?;
        Ok(())
    }

    /// Reads every registered location once, here and now (the command
    /// line, tests); the refresh loop shares the work out by leases instead.
    pub async fn refresh_all(&self) -> Result<Vec<RefreshReport>, CatalogError> {
        let mut reports = Vec::new();
        for location in self.locations().await? {
            reports.push(self.refresh_reporting(location).await);
        }
        if reports.iter().any(RefreshReport::changed) {
            self.inner.store.optimize().await?;
        }
        Ok(reports)
    }

    /// Refreshes a location, turning a failure into a report: one failing
    /// location must not keep the others from refreshing.
    async fn refresh_reporting(&self, location: LocationRow) -> RefreshReport {
        let started = std::time::Instant::now();
        let origin = format!("{}:{}", location.kind, location.target);
        let refreshed = self.refresh_location(&location).await;
        let problems = refreshed.as_ref().map_or(1, |r| r.problems.len());
        crate::metrics::location_refreshed(&origin, refreshed.is_ok(), problems, started.elapsed());
        match refreshed {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(location = %origin, "catalog: refresh failed: {e}");
                RefreshReport {
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
                }
            }
        }
    }

    /// Registers the configured locations, then refreshes every location
    /// that is due, every `refresh_interval_secs` (only once at start-up if
    /// 0). Each location's refresh is a lease: with several replicas on one
    /// database each location is read once per period in total, and a
    /// replica that dies mid-refresh loses its lease to another within
    /// `refresh_lease_secs`. Runs until dropped.
    pub async fn run_refresh_loop(self) {
        let interval = self.inner.config.refresh_interval_secs;
        let lease = self.lease_period();
        // Everything is read at start-up, as a restart means.
        let mut first = true;
        loop {
            if let Err(e) = self.sync_config_locations().await {
                tracing::error!("catalog: configured locations: {e}");
            }
            let started = std::time::Instant::now();
            let pass = self.refresh_due(first).await;
            if matches!(pass, Ok((n, _)) if n > 0) {
                crate::metrics::pass_finished(started.elapsed());
            }
            match &pass {
                Ok((0, _)) => {}
                Ok((locations, problems)) => {
                    tracing::info!(locations, problems, "catalog: refreshed")
                }
                Err(e) => tracing::error!("catalog: refresh failed: {e}"),
            }
            if pass.is_ok() && !self.first_load_done() {
                self.inner
                    .first_load
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::info!("catalog: first load finished");
            }
            if first && let Err(e) = self.inner.feed.prune(FEED_RETENTION).await {
                tracing::warn!("catalog: pruning the change feed: {e}");
            }
            first = false;
            // Look for due work often enough to take over a dead replica's
            // within a lease period; never more than once a second.
            let period = if interval == 0 {
                lease
            } else {
                Duration::from_secs(interval).min(lease / 3)
            };
            tokio::time::sleep(period.max(Duration::from_secs(1))).await;
        }
    }

    /// Refreshes the locations whose lease this replica can claim; how many
    /// and their problems.
    async fn refresh_due(&self, startup: bool) -> Result<(usize, usize), CatalogError> {
        let interval = self.inner.config.refresh_interval_secs;
        // 0: read at start-up only; "due again" lies beyond any uptime.
        let next_in = if interval == 0 {
            Duration::from_secs(100 * 365 * 24 * 3600)
        } else {
            Duration::from_secs(interval)
        };
        let leases = &self.inner.leases;
        let ttl = self.lease_period();
        let mut done = 0;
        let mut problems = 0;
        let mut changed = false;
        for location in self.locations().await? {
            let name = format!("refresh:{}", location.id);
            if startup {
                leases.make_due(&name).await?;
            }
            let Some(lease) = leases.claim(&name, &self.inner.replica, ttl).await? else {
                continue;
            };
            let _held = callboard_store::metrics::LeaseHeld::new("catalog_refresh");
            let heartbeat = tokio::spawn(heartbeat(leases.clone(), lease.clone(), ttl));
            let report = self.refresh_reporting(location).await;
            heartbeat.abort();
            problems += report.problems.len();
            done += 1;
            changed |= report.changed();
            if !leases.complete(&lease, next_in).await? {
                tracing::warn!(lease = %lease.name, "catalog: lost the refresh lease while refreshing");
            }
        }
        // The planner's statistics only need refreshing after changes (on
        // PostgreSQL this is a VACUUM ANALYZE of the catalog's tables).
        if changed {
            self.inner.store.optimize().await?;
        }
        Ok((done, problems))
    }

    /// Reads one location and stores the result in one transaction. Files
    /// are read and parsed on a blocking thread while the store writes
    /// them, so the two run in parallel, the async workers stay free, and
    /// memory stays flat whatever the catalog's size. A location that
    /// breaches a cap stores nothing and keeps the entities it had.
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
        let store = &self.inner.store;
        let names: HashMap<String, String> = store
            .locations(None)
            .await?
            .into_iter()
            .map(|(l, _)| (l.id, format!("{}:{}", l.kind, l.target)))
            .collect();
        let source = store
            .locations(None)
            .await?
            .into_iter()
            .find(|(l, _)| l.id == location.id)
            .map_or_else(|| "api".to_owned(), |(_, source)| source);
        let mut scope = self.scope(location, &source).await?;
        scope.sources = Arc::new(
            store
                .sources(&location.id)
                .await?
                .into_iter()
                .map(|s| (s.key.clone(), s))
                .collect(),
        );
        // The location may have been removed meanwhile: store nothing.
        let Some(mut writer) = store.begin(&location.id).await? else {
            return Ok(RefreshReport::default());
        };
        let (batches, mut batch_rx) = tokio::sync::mpsc::channel::<ingest::Piece>(4);
        let reader = {
            let c = self.clone();
            let location = location.clone();
            tokio::task::spawn_blocking(move || {
                c.inner
                    .reader
                    .harvest(&location, &scope, ingest::Sink::Send(&batches))
            })
        };
        let mut conflicts = Vec::new();
        let mut done = Finish::default();
        while let Some(piece) = batch_rx.recv().await {
            if let Some(entities) = piece.unchanged {
                progress(entities);
                done.unchanged.insert(piece.source.clone());
                done.hashes.extend(piece.hash.map(|h| (piece.source, h)));
                continue;
            }
            progress(piece.records.len());
            let mut stored = Vec::with_capacity(piece.records.len());
            let mut sent = Vec::with_capacity(piece.records.len());
            for (record, about, parent) in piece.records {
                stored.push(record);
                sent.push((about, parent));
            }
            let puts = writer.put(stored).await?;
            let mut clean = true;
            for ((record, parent), put) in sent.into_iter().zip(puts) {
                match put {
                    callboard_store::catalog::Put::Stored => {}
                    callboard_store::catalog::Put::Conflict(owner) => {
                        clean = false;
                        conflicts.push((parent, record, owner));
                    }
                    callboard_store::catalog::Put::Duplicate => clean = false,
                }
            }
            // Only a source whose every entity is stored as read may be
            // skipped next time (a conflict may resolve meanwhile).
            if clean && let Some(hash) = piece.hash {
                done.hashes.push((piece.source, hash));
            }
        }
        let mut harvest = reader
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?;
        if let Some(reason) = harvest.aborted.take() {
            // Dropping the writer rolls back: the location keeps what it had.
            drop(writer);
            return Err(not_read(location, &reason));
        }
        for (parent, record, owner) in &conflicts {
            harvest.conflict(*parent, record, names.get(owner).unwrap_or(owner));
        }
        let mut harvest = harvest.finish();
        // Location entities last: by now they carry every problem found below them.
        let locations = std::mem::take(&mut harvest.records);
        let (stored, locations): (Vec<_>, Vec<_>) = locations
            .into_iter()
            .map(record::EntityRecord::into_store)
            .unzip();
        let puts = writer.put(stored).await?;
        for (i, (record, put)) in locations.iter().zip(puts).enumerate() {
            if let callboard_store::catalog::Put::Conflict(owner) = put {
                let parent = harvest.parents.get(i).copied().flatten().unwrap_or(0);
                harvest.conflict(parent, record, names.get(&owner).unwrap_or(&owner));
            }
        }
        done.keep = std::mem::take(&mut harvest.keep);
        let unchanged_sources = done.unchanged.len();
        let (summary, _changes) = writer.finish(done).await?;
        Ok(RefreshReport {
            location: Some(location.clone()),
            summary,
            problems: harvest.problems,
            entities: harvest.keys,
            unchanged_sources,
        })
    }

    /// How long a refresh lease lasts without a heartbeat.
    fn lease_period(&self) -> Duration {
        Duration::from_secs(self.inner.config.refresh_lease_secs.max(1))
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

/// Keeps a lease alive while its work runs; stops when aborted.
async fn heartbeat(leases: Arc<dyn Leases>, lease: Lease, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match leases.heartbeat(&lease, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lease = %lease.name, "catalog: refresh lease lost");
                return;
            }
            // The database is away: try again next beat; the lease may
            // expire meanwhile and another replica take the work over.
            Err(e) => tracing::warn!(lease = %lease.name, "catalog: heartbeat failed: {e}"),
        }
    }
}

/// Follows the change feed from `seq`, turning catalog events into
/// [`Catalog::subscribe`] notifications, until the catalog is dropped.
/// A database outage pauses it; it never gives up.
async fn follow_feed(inner: Weak<Inner>, mut seq: i64) {
    callboard_store::metrics::feed_position("catalog", seq);
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(c) = inner.upgrade() else { return };
        let feed = c.feed.clone();
        drop(c);
        match feed.read_after(seq, 256).await {
            Ok(events) if events.is_empty() => {
                backoff = Duration::from_millis(100);
                feed.wait(seq, Duration::from_secs(5)).await;
            }
            Ok(events) => {
                backoff = Duration::from_millis(100);
                let Some(c) = inner.upgrade() else { return };
                if let Some(last) = events.last() {
                    callboard_store::metrics::feed_position("catalog", last.seq);
                }
                for event in events {
                    seq = event.seq;
                    if event.topic != CATALOG_TOPIC {
                        continue;
                    }
                    match serde_json::from_value::<Vec<CatalogEvent>>(event.payload) {
                        Ok(changes) => {
                            for change in changes {
                                // No receivers is fine: nobody is listening yet.
                                let _ = c.events.send(change);
                            }
                        }
                        Err(e) => tracing::warn!(seq, "catalog: unreadable feed event: {e}"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!("catalog: following the change feed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A JSON array of entities, produced chunk by chunk (see
/// [`Catalog::stream_json_array`]).
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
        let (rows_tx, mut rows) = tokio::sync::mpsc::channel(64);
        let store = self.inner.store.clone();
        let producer =
            tokio::spawn(async move { store.stream(selection, start, limit, rows_tx).await });
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(CHUNK + 8192);
            buf.push(b'[');
            let mut first = true;
            while let Some(row) = rows.recv().await {
                let json: String = match row {
                    Ok(json) => json,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                if !first {
                    buf.push(b',');
                }
                first = false;
                match &fields {
                    Some(fields) => match serde_json::from_str::<Value>(&json) {
                        Ok(v) => buf.extend_from_slice(project(&v, fields).to_string().as_bytes()),
                        Err(_) => buf.extend_from_slice(b"null"),
                    },
                    None => buf.extend_from_slice(json.as_bytes()),
                }
                if buf.len() >= CHUNK {
                    let chunk = bytes::Bytes::from(std::mem::replace(
                        &mut buf,
                        Vec::with_capacity(CHUNK + 8192),
                    ));
                    // The client went away: dropping `rows` stops the store.
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            }
            match producer.await {
                Ok(Ok(())) => {
                    buf.push(b']');
                    let _ = tx.send(Ok(bytes::Bytes::from(buf))).await;
                }
                Ok(Err(e)) => {
                    tracing::error!("catalog: streaming entities failed: {e}");
                    let _ = tx.send(Err(e.into())).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(CatalogError::Task(e.to_string()))).await;
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
pub(crate) fn preview(record: &record::EntityRecord) -> Value {
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
