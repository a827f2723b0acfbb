//! TechDocs, natively: entities annotated `backstage.io/techdocs-ref` get
//! their MkDocs site rendered by `callboard-docs` (no Python, no Docker),
//! stored through the storage boundary ([`callboard_store::DocsStore`]) so
//! every replica serves it, and indexed for search section by section in
//! the same transaction.
//!
//! Builds run off the request path: at start-up, when the catalog reports
//! an annotated entity added or changed, every `[docs]
//! rebuild_interval_secs` (only changed pages are rendered again, by
//! content hash), and when a client asks (`/api/techdocs/sync/...`). One
//! build runs at a time on a replica (rendering is CPU work on a blocking
//! thread), and each site's build is a lease, so replicas never build the
//! same site twice in a period.

pub mod build;
pub mod config;
pub mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use callboard_catalog::{Catalog, CatalogEvent, EntityRef, Matcher, Predicate, Selection, Start};
use callboard_store::{DocsStore, Leases, Stores};
use serde_json::Value;

pub use build::{Report, docs_base};
pub use config::DocsConfig;
pub use source::{ANNOTATION, Source, SourceError};

/// The TechDocs builder and reader.
#[derive(Clone)]
pub struct Techdocs {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    docs: Arc<dyn DocsStore>,
    leases: Arc<dyn Leases>,
    config: DocsConfig,
    replica: String,
    /// One build at a time on this replica.
    building: tokio::sync::Semaphore,
    /// The files of the sites built last, so a rebuild reads only the
    /// files that changed.
    snapshots: std::sync::Mutex<Snapshots>,
}

/// Sites' files as last read, by folder, least recently used first out
/// once they hold more than one site's limit (`[docs] max_total_bytes`).
#[derive(Default)]
struct Snapshots {
    sites: Vec<(PathBuf, callboard_docs::Snapshot)>,
}

impl Snapshots {
    fn take(&mut self, dir: &std::path::Path) -> Option<callboard_docs::Snapshot> {
        let i = self.sites.iter().position(|(d, _)| d == dir)?;
        Some(self.sites.remove(i).1)
    }

    fn put(&mut self, dir: PathBuf, snapshot: callboard_docs::Snapshot, budget: u64) {
        self.sites.push((dir, snapshot));
        let mut held: u64 = self.sites.iter().map(|(_, s)| s.bytes()).sum();
        while held > budget && !self.sites.is_empty() {
            held -= self.sites.remove(0).1.bytes();
        }
    }
}

impl std::fmt::Debug for Techdocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Techdocs").finish_non_exhaustive()
    }
}

/// Why a build did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// No such entity.
    #[error("no entity {0}")]
    NoEntity(String),
    /// The source cannot be read (named in the message).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Reading the files broke a limit or failed.
    #[error("reading the docs of {0}: {1}")]
    Files(String, String),
    /// Another replica is building this site now.
    #[error("a build of {0} is under way elsewhere")]
    Busy(String),
    /// The build took longer than `[docs] build_timeout_secs`.
    #[error("the build of {0} took longer than {1} s and was given up")]
    Timeout(String, u64),
    /// The catalog or the store failed.
    #[error("{0}")]
    Store(String),
}

impl From<callboard_catalog::CatalogError> for DocsError {
    fn from(e: callboard_catalog::CatalogError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<callboard_store::StoreError> for DocsError {
    fn from(e: callboard_store::StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// Whether `who` may read `r`'s docs: `catalog.entity.read` and
/// `techdocs.entity.read` both reach the entity.
pub async fn readable(
    access: &crate::identity::access::Access,
    catalog: &Catalog,
    who: &crate::identity::Identity,
    r: &EntityRef,
) -> Result<bool, callboard_catalog::CatalogError> {
    use crate::identity::access::Scope;
    use crate::permissions::{CATALOG_ENTITY_READ, TECHDOCS_ENTITY_READ};
    for permission in [CATALOG_ENTITY_READ, TECHDOCS_ENTITY_READ] {
        match access.scope(who, permission) {
            Scope::All => {}
            Scope::Nothing => return Ok(false),
            scope @ Scope::Where(_) => {
                if !scope.reaches(catalog, &r.to_string()).await? {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

/// Entities with docs, as a catalog predicate.
fn annotated() -> Predicate {
    Predicate::Field {
        key: format!("metadata.annotations.{ANNOTATION}"),
        matcher: Matcher::Exists(true),
    }
}

impl Techdocs {
    /// The builder over `catalog` and `stores`.
    pub fn new(catalog: Catalog, stores: &Stores, config: DocsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                docs: stores.docs.clone(),
                leases: stores.leases.clone(),
                config,
                replica: format!("docs-{}", uuid::Uuid::new_v4()),
                building: tokio::sync::Semaphore::new(1),
                snapshots: std::sync::Mutex::default(),
            }),
        }
    }

    /// The stored sites.
    pub fn store(&self) -> &Arc<dyn DocsStore> {
        &self.inner.docs
    }

    /// Where `entity`'s docs are read from.
    pub fn source(&self, entity: &Value) -> Result<Source, SourceError> {
        source::resolve(entity, &self.roots())
    }

    fn roots(&self) -> Vec<PathBuf> {
        self.inner.catalog.file_roots()
    }

    fn lease_name(r: &str) -> String {
        format!("docs:{r}")
    }

    fn interval(&self) -> Option<Duration> {
        let secs = self
            .inner
            .config
            .rebuild_interval_secs
            .unwrap_or(self.inner.catalog.config().refresh_interval_secs);
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// Builds `r`'s site now, unless another replica is building it:
    /// renders what changed and stores it. A site that cannot be read
    /// keeps what was stored; its problem is stored with it.
    pub async fn build(&self, r: &EntityRef) -> Result<Report, DocsError> {
        let key = r.key();
        let leases = &self.inner.leases;
        let name = Self::lease_name(&key);
        leases.make_due(&name).await?;
        let ttl = Duration::from_secs(self.inner.config.build_timeout_secs.max(1) + 30);
        let Some(lease) = leases.claim(&name, &self.inner.replica, ttl).await? else {
            return Err(DocsError::Busy(key));
        };
        let result = self.build_held(r).await;
        let next = self
            .interval()
            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
        if let Err(e) = leases.complete(&lease, next).await {
            tracing::warn!(site = %key, "docs: completing the build lease: {e}");
        }
        result
    }

    /// [`Techdocs::build`], waiting while a build of the site is under way
    /// (here or on another replica) until it ends, within the build
    /// timeout: a caller asking for a build gets one that starts after
    /// their request.
    pub async fn build_now(&self, r: &EntityRef) -> Result<Report, DocsError> {
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.inner.config.build_timeout_secs.max(1) + 30);
        loop {
            match self.build(r).await {
                Err(DocsError::Busy(key)) if tokio::time::Instant::now() < deadline => {
                    let _ = key;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    async fn build_held(&self, r: &EntityRef) -> Result<Report, DocsError> {
        let key = r.key();
        let entity = self
            .inner
            .catalog
            .get_by_ref(r)
            .await?
            .ok_or_else(|| DocsError::NoEntity(key.clone()))?;
        let Source::Dir(dir) = self.source(&entity)?;
        let _permit = self
            .inner
            .building
            .acquire()
            .await
            .map_err(|_| DocsError::Store("shutting down".into()))?;
        let stored = self.inner.docs.site(&key, true).await?;
        let stored_assets = self.inner.docs.asset_hashes(&key).await?;
        let limits = self.inner.config.limits();
        let timeout = Duration::from_secs(self.inner.config.build_timeout_secs.max(1));
        let r2 = r.clone();
        let previous = self.snapshots().take(&dir);
        let work = tokio::task::spawn_blocking(move || {
            let snapshot = callboard_docs::Snapshot::read(&dir, limits, previous)
                .map_err(|e| DocsError::Files(r2.key(), e.to_string()))?;
            let source = ("dir", dir.display().to_string());
            let planned = build::plan(
                &entity,
                &r2,
                snapshot.files(),
                stored.as_ref(),
                &stored_assets,
                &source,
            );
            Ok::<_, DocsError>((planned, dir, snapshot))
        });
        let ((update, report), dir, snapshot) = match tokio::time::timeout(timeout, work).await {
            Err(_) => return Err(DocsError::Timeout(key, timeout.as_secs())),
            Ok(Err(e)) => return Err(DocsError::Store(format!("build task: {e}"))),
            Ok(Ok(planned)) => planned?,
        };
        self.snapshots().put(dir, snapshot, limits.max_total_bytes);
        if report.updated {
            self.inner.docs.put_site(&key, update).await?;
        }
        tracing::info!(
            site = %key,
            rendered = report.rendered,
            unchanged = report.unchanged,
            removed = report.removed,
            files = report.files,
            problems = report.problems.len(),
            ms = report.took.as_millis() as u64,
            "docs: built"
        );
        Ok(report)
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, Snapshots> {
        self.inner
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every entity with docs (lower-case refs, with the entity).
    async fn annotated_entities(&self) -> Result<Vec<(EntityRef, Value)>, DocsError> {
        let selection = Selection {
            predicate: Some(annotated()),
            ..Selection::default()
        };
        let mut out = Vec::new();
        let mut start = Start::Beginning;
        loop {
            let page = self
                .inner
                .catalog
                .query(&selection, &start, callboard_catalog::MAX_PAGE)
                .await?;
            for entity in page.values() {
                out.push((crate::web::ref_of(&entity), entity));
            }
            match page.last {
                Some(position) if page.more => start = Start::After(position),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Checks every site whose period is due (all of them at start-up).
    async fn pass(&self, startup: bool) {
        let entities = match self.annotated_entities().await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("docs: listing the entities with docs: {e}");
                return;
            }
        };
        for (r, _) in entities {
            let name = Self::lease_name(&r.key());
            if startup {
                let _ = self.inner.leases.make_due(&name).await;
            }
            match self.build(&r).await {
                Ok(_) | Err(DocsError::Busy(_)) => {}
                Err(e) => tracing::warn!(site = %r.key(), "docs: {e}"),
            }
        }
    }

    /// Builds at start-up, on catalog changes to annotated entities, and
    /// every rebuild interval; removes the sites of removed entities (and
    /// of entities that lost the annotation). Runs until dropped.
    pub async fn run(self) {
        if !self.inner.config.enabled {
            return;
        }
        let mut events = self.inner.catalog.subscribe();
        // The catalog's first load lands the entities this pass builds.
        while !self.inner.catalog.first_load_done() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The pass reads every annotated entity as it is now: the changes
        // announced so far are in it.
        while events.try_recv().is_ok() {}
        self.pass(true).await;
        let interval = self.interval();
        let mut next = interval.map(|i| tokio::time::Instant::now() + i);
        loop {
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => match event {
                    Ok(CatalogEvent::Added(key) | CatalogEvent::Changed(key)) => self.changed(&key).await,
                    Ok(CatalogEvent::Removed(key)) => self.removed(&key).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.pass(false).await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = due => {
                    self.pass(false).await;
                    next = interval.map(|i| tokio::time::Instant::now() + i);
                }
            }
        }
    }

    async fn changed(&self, key: &str) {
        let Ok(r) = EntityRef::parse(key) else { return };
        let entity = match self.inner.catalog.get_by_ref(&r).await {
            Ok(Some(e)) => e,
            Ok(None) => return self.removed(key).await,
            Err(e) => return tracing::warn!(site = key, "docs: {e}"),
        };
        if source::annotation(&entity).is_none() {
            return self.removed(key).await;
        }
        match self.build(&r).await {
            Ok(_) | Err(DocsError::Busy(_)) => {}
            Err(e) => tracing::warn!(site = key, "docs: {e}"),
        }
    }

    async fn removed(&self, key: &str) {
        match self.inner.docs.remove_site(key).await {
            Ok(true) => tracing::info!(site = key, "docs: removed with its entity"),
            Ok(false) => {}
            Err(e) => tracing::warn!(site = key, "docs: removing: {e}"),
        }
    }
}
