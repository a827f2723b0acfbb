//! The live plugins: install, update, remove, licences.
//!
//! Requests read the current map of plugins without a lock ([`ArcSwap`]); an
//! install verifies and compiles off the request path, then swaps the map, so
//! requests in flight finish on the version they started with.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::SystemTime,
};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use serde::Serialize;
use wasmtime::Engine;

use super::settings::{Limits, RuntimeSettings};
use super::{
    ApiVersion,
    admission::{Budgets, PluginSlots},
    call::CallError,
    capabilities::{http::HttpClient, kv::KvStore},
    engine,
    events::{EventBus, EventCounts},
    license::{self, LicenseError, LicenseTerms},
    loader::{self, Linkers, LoadError, Loaded},
    manifest::{Capabilities, Manifest, ViewSlot},
    signing,
    state::{GrantedDir, Grants, Protected},
    trust::{self, InstallChanges, SignatureState, Signer, SignerBook, TrustStore},
};

/// What `list` reports about a live plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Plugin id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Plugin API version it is built against.
    pub api_version: ApiVersion,
    /// Vendor, if the manifest names one.
    pub vendor: Option<String>,
    /// Description from the manifest.
    pub description: Option<String>,
    /// Licence kind from the manifest (SPDX id or `commercial`).
    pub license: Option<String>,
    /// SHA-256 of the plugin file.
    pub sha256: String,
    /// File size in bytes.
    pub size: usize,
    /// The file it was loaded from.
    pub source: Option<PathBuf>,
    /// Whether compiled code came from the on-disk cache.
    pub compiled_from_cache: bool,
    /// Time to compile or load from cache, in milliseconds.
    pub compile_ms: f64,
    /// The limits it runs under.
    pub limits: Limits,
    /// What the manifest requests.
    pub requested: Capabilities,
    /// What the operator grants it.
    pub granted: Capabilities,
    /// What it gets: requested and granted.
    pub effective: Capabilities,
    /// Its signature, as the trust store sees it.
    pub signature: SignatureState,
    /// Its licence status.
    pub license_status: LicenseState,
    /// `serving`, or `disabled: <why>`.
    pub status: String,
    /// The last refused update of this plugin, if any since it loaded.
    pub last_error: Option<String>,
    /// Slots it fills with views.
    pub views: Vec<ViewSlot>,
    /// Seconds between its scheduled ticks, if it asks for them.
    pub tick_secs: Option<u64>,
    /// Event delivery counters, if it subscribes to events.
    pub events: Option<EventCounts>,
    /// Scheduled tick failures and back-off, if it ever ticked.
    pub ticks: Option<TickCounts>,
    /// What the install that answers this changed (install answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<InstallChanges>,
}

/// A file that could not be loaded, kept for `list` and the log.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// The file (or `upload` for the admin API).
    pub file: PathBuf,
    /// Why.
    pub error: String,
    /// When.
    pub at: SystemTime,
}

/// A plugin's licence, as last checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LicenseState {
    /// Open source: no licence needed.
    NotRequired,
    /// Valid: its terms.
    Valid(LicenseTerms),
    /// Missing or not valid: why (e.g. "licence for insights expired on ...").
    Invalid {
        /// Why.
        reason: String,
    },
}

/// What one live plugin is doing on this replica now.
#[derive(Debug, Clone)]
pub struct PluginUsage {
    /// Plugin id.
    pub id: String,
    /// Calls running.
    pub in_use: usize,
    /// Most calls that may run at once.
    pub max: usize,
    /// Calls waiting for a slot.
    pub queued: usize,
    /// Its event queue and counts, when it subscribes.
    pub events: Option<super::events::LocalEvents>,
}

pub(super) struct LivePlugin {
    pub(super) loaded: Loaded,
    /// The plugin id (its key-value namespace), shared by its calls.
    pub(super) id: Arc<str>,
    pub(super) label: Arc<str>,
    pub(super) limits: Limits,
    pub(super) requested: Capabilities,
    pub(super) granted: Capabilities,
    pub(super) capabilities: Capabilities,
    pub(super) grants: Arc<Grants>,
    pub(super) license: ArcSwap<LicenseState>,
    /// Its fair share of the instance pool.
    pub(super) slots: PluginSlots,
}

impl LivePlugin {
    /// The licence as checked, for the `license` interface (a reference
    /// count, not a copy, on the request path).
    pub(super) fn license_state(&self) -> Arc<LicenseState> {
        self.license.load_full()
    }

    /// Refuses a request the plugin's licence does not cover.
    pub(super) fn admit(&self, path: &str) -> Result<(), CallError> {
        let license = self.license.load();
        let terms = match &**license {
            LicenseState::NotRequired => return Ok(()),
            LicenseState::Invalid { reason } => {
                return Err(CallError::Unlicensed {
                    plugin: self.label.clone(),
                    reason: reason.clone(),
                });
            }
            LicenseState::Valid(terms) => terms,
        };
        // Checked on every call too, so expiry takes effect to the second,
        // not at the next periodic check.
        if let Err(e) = license::check_window(terms, Timestamp::now()) {
            return Err(CallError::Unlicensed {
                plugin: self.label.clone(),
                reason: e.to_string(),
            });
        }
        for gate in &self.loaded.manifest.entitlements {
            if gate.paths.iter().any(|p| gate_covers(p, path))
                && !terms.features.contains(&gate.feature)
            {
                return Err(CallError::NotEntitled {
                    plugin: self.label.clone(),
                    feature: gate.feature.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Whether entitlement path `gate` covers `path` (normalised by the host,
/// see `api::plugins::path`) on whole segments: `/export` covers `/export`
/// and `/export/x`, not `/exporter`; `/` covers everything, including the
/// empty path entity views are rendered at.
fn gate_covers(gate: &str, path: &str) -> bool {
    let mut path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy());
    gate.split('/')
        .filter(|s| !s.is_empty())
        .all(|want| path.next().is_some_and(|got| got == want))
}

pub(super) struct Inner {
    pub(super) engine: Engine,
    linkers: Linkers,
    cache: wasmtime::Cache,
    pub(super) settings: Arc<RuntimeSettings>,
    pub(super) kv: Arc<dyn KvStore>,
    /// Leases on periodic work (scheduled ticks, licence re-checks): once
    /// per period across replicas.
    pub(super) leases: Arc<dyn callboard_store::Leases>,
    /// This process's name in leases.
    pub(super) replica: String,
    /// With several replicas: the database's plugin files, the source of
    /// truth (see `shared.rs`), and the revision of each this replica
    /// applied.
    pub(super) shared: OnceLock<Arc<dyn callboard_store::PluginFiles>>,
    /// The database's plugin files were applied once (readiness).
    pub(super) synced: std::sync::atomic::AtomicBool,
    pub(super) applied: Mutex<HashMap<String, i64>>,
    pub(super) live: ArcSwap<HashMap<String, Arc<LivePlugin>>>,
    failures: Mutex<Vec<LoadFailure>>,
    last_errors: Mutex<BTreeMap<String, String>>,
    /// Serializes installs and removals, so cache-hit accounting, version
    /// checks and map swaps do not race.
    install_lock: Mutex<()>,
    /// The catalog plugins granted `catalog` read (set once at start-up).
    catalog: OnceLock<callboard_catalog::Catalog>,
    http: HttpClient,
    /// `[models]`'s provider, when one is configured.
    models: Option<Arc<super::capabilities::models::ModelClient>>,
    pub(super) events: Arc<EventBus>,
    /// Scheduled-tick tasks by plugin id, with their period.
    tickers: Mutex<HashMap<String, (u64, tokio::task::AbortHandle)>>,
    /// Tick failures by plugin id, kept across updates.
    tick_stats: Mutex<HashMap<String, Arc<TickStats>>>,
    /// Fair shares, descriptor budget, SQLite pool.
    pub(super) budgets: Arc<Budgets>,
    /// Plugin-folder files refused as they are now: not retried until they change.
    refused: Mutex<HashMap<PathBuf, Refusal>>,
    /// The portal: each plugin's own service principal (event handlers and
    /// ticks run as it; what it may read comes from the access policy) and
    /// the search index; set once at start-up. Unset: a service principal
    /// reads everything its `catalog` grant reaches and holds nothing.
    pub(super) portal: OnceLock<Arc<dyn super::portal::Portal>>,
}

/// A refused plugin file as it was when refused.
struct Refusal {
    size: u64,
    modified: Option<SystemTime>,
    sha256: String,
    failure: LoadFailure,
}

/// Refusals kept for `failures`, newest last; older ones are dropped.
const MAX_FAILURES: usize = 100;
/// Refused files remembered (so not retried) at once.
const MAX_REFUSED: usize = 1000;

/// Scheduled ticks that failed in a row, and the pause that follows.
#[derive(Debug, Default)]
pub struct TickStats {
    failures_in_a_row: std::sync::atomic::AtomicU32,
    backoff_secs: std::sync::atomic::AtomicU64,
}

/// A snapshot of a plugin's [`TickStats`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TickCounts {
    /// Ticks that failed (trap, timeout, ...) since the last one that worked.
    pub failures_in_a_row: u32,
    /// Seconds the next tick waits beyond its period because of them.
    pub backoff_secs: u64,
}

/// The plugin runtime: one engine, the live plugins, their shared state.
#[derive(Clone)]
pub struct PluginHost {
    pub(super) inner: Arc<Inner>,
}

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Allow a downgrade.
    pub force: bool,
    /// A licence file's text to install with it.
    pub license: Option<String>,
}

impl PluginHost {
    /// Builds the engine over the backend's key-value store and leases.
    /// Loads nothing yet.
    pub fn new(
        settings: &RuntimeSettings,
        stores: &callboard_store::Stores,
    ) -> anyhow::Result<Self> {
        let kv = stores.kv.clone();
        raise_open_files_limit();
        // wasmtime's cache wants an absolute path; `data_dir` may be relative
        // (the default `./data` is).
        let cache_dir = std::path::absolute(settings.data_dir.join("cache").join("compiled"))?;
        std::fs::create_dir_all(&cache_dir)?;
        let (engine, cache) = engine::build(&settings.plugins, &cache_dir)?;
        let linkers = Linkers::new(&engine)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linkers,
                cache,
                settings: Arc::new(settings.clone()),
                kv,
                leases: stores.leases.clone(),
                replica: uuid::Uuid::new_v4().to_string(),
                shared: OnceLock::new(),
                synced: std::sync::atomic::AtomicBool::new(false),
                applied: Mutex::new(HashMap::new()),
                live: ArcSwap::from_pointee(HashMap::new()),
                failures: Mutex::new(Vec::new()),
                last_errors: Mutex::new(BTreeMap::new()),
                install_lock: Mutex::new(()),
                catalog: OnceLock::new(),
                http: HttpClient::new(
                    std::time::Duration::from_millis(settings.plugins.http_timeout_ms),
                    settings.plugins.http_max_response_bytes,
                ),
                models: super::capabilities::models::ModelClient::new(
                    &settings.models,
                    stores.counters.clone(),
                )?,
                events: Arc::new(EventBus::default()),
                tickers: Mutex::new(HashMap::new()),
                tick_stats: Mutex::new(HashMap::new()),
                budgets: Arc::new(Budgets::new(&settings.plugins)),
                refused: Mutex::new(HashMap::new()),
                portal: OnceLock::new(),
            }),
        })
    }

    /// Gives plugins granted `catalog` read access to `catalog`. Call once,
    /// before loading plugins.
    pub fn attach_catalog(&self, catalog: callboard_catalog::Catalog) {
        let _ = self.inner.catalog.set(catalog);
    }

    /// Where the portal listens: plugins' outbound HTTP never reaches it.
    /// Call once the listener is bound.
    pub fn set_own_address(&self, addr: std::net::SocketAddr) {
        self.inner.http.set_own_address(addr);
    }

    /// Records `server.public_url`: the portal under the name users reach
    /// it by is never a plugin's outbound target either.
    pub fn set_public_url(&self, url: &str) {
        self.inner.http.set_public_url(url);
    }

    /// Where usage and catalog events are published.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Loads every `*.wasm` file in `dir`, in name order. A file that fails is
    /// logged with its name and reason and skipped; the others still load.
    pub fn load_dir(&self, dir: &Path) -> Vec<Result<PluginInfo, LoadFailure>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_plugin_file(p))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), "cannot read the plugins directory: {e}");
                Vec::new()
            }
        };
        files.sort();
        files.iter().map(|file| self.install_file(file)).collect()
    }

    /// Loads (or reloads) one plugin file from the plugins folder. Unchanged
    /// content is a no-op, so the watcher seeing our own writes costs nothing.
    /// A file refused before is retried only once its size, time or content
    /// changes, so a writer touching it (or the watcher's own events) costs
    /// no error log and no new failure each time.
    pub fn install_file(&self, file: &Path) -> Result<PluginInfo, LoadFailure> {
        let meta = std::fs::metadata(file).ok();
        let (size, modified) = (
            meta.as_ref().map_or(0, |m| m.len()),
            meta.as_ref().and_then(|m| m.modified().ok()),
        );
        if let Some(failure) = self.still_refused(file, size, modified, None) {
            return Err(failure);
        }
        let bytes = std::fs::read(file)
            .map_err(|e| self.fail(file, None, &LoadError::Read(e.to_string())))?;
        if let Some(info) = self.unchanged(file, &bytes) {
            return Ok(info);
        }
        let sha256 = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&bytes))
        };
        if let Some(failure) = self.still_refused(file, size, modified, Some(&sha256)) {
            return Err(failure);
        }
        self.install_inner(&bytes, Some(file), &InstallOptions::default())
            .inspect(|_| {
                self.refused().remove(file);
            })
            .map_err(|error| {
                // A file too broken to name its plugin is charged to the plugin it replaces.
                let id = manifest_id(&bytes).or_else(|| {
                    self.inner
                        .live
                        .load()
                        .values()
                        .find(|p| p.loaded.source.as_deref() == Some(file))
                        .map(|p| p.loaded.manifest.id.clone())
                });
                let failure = self.fail(file, id.as_deref(), &error);
                let mut refused = self.refused();
                if refused.len() >= MAX_REFUSED {
                    refused.clear();
                }
                refused.insert(
                    file.to_owned(),
                    Refusal {
                        size,
                        modified,
                        sha256,
                        failure: failure.clone(),
                    },
                );
                failure
            })
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Refusal>> {
        self.inner.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The failure `file` was refused with, if it has not changed since:
    /// same size and time, or (when `sha256` is known) same content.
    fn still_refused(
        &self,
        file: &Path,
        size: u64,
        modified: Option<SystemTime>,
        sha256: Option<&str>,
    ) -> Option<LoadFailure> {
        let mut refused = self.refused();
        let known = refused.get_mut(file)?;
        let same = match sha256 {
            None => known.size == size && known.modified == modified && modified.is_some(),
            Some(sha) => known.sha256 == sha,
        };
        if same {
            known.modified = modified;
            known.size = size;
        }
        same.then(|| known.failure.clone())
    }

    /// Installs plugin bytes (the admin API and CLI): verify, compile, check
    /// the licence if given, write `<plugins_dir>/<id>.wasm`, swap. On any
    /// error the serving version, if any, keeps serving. Blocking.
    pub fn install(&self, bytes: &[u8], options: &InstallOptions) -> Result<PluginInfo, LoadError> {
        let info = self
            .install_inner(bytes, None, options)
            .inspect_err(|error| {
                self.fail(Path::new("upload"), manifest_id(bytes).as_deref(), error);
            })?;
        // With replicas, the database is the source of truth: the others
        // install what is stored there.
        self.share_install(&info.id, bytes, options.license.as_deref())?;
        Ok(info)
    }

    /// [`PluginHost::install`] of what another replica stored: verified and
    /// compiled here, never stored again.
    pub(super) fn install_shared(
        &self,
        bytes: &[u8],
        options: &InstallOptions,
    ) -> Result<PluginInfo, LoadError> {
        self.install_inner(bytes, None, options)
            .inspect_err(|error| {
                self.fail(Path::new("database"), manifest_id(bytes).as_deref(), error);
            })
    }

    fn install_inner(
        &self,
        bytes: &[u8],
        from_dir: Option<&Path>,
        options: &InstallOptions,
    ) -> Result<PluginInfo, LoadError> {
        let inner = &self.inner;
        let config = &inner.settings;
        let trust = self.trust();
        // Cheap checks first, so a bad file is refused before any compiling.
        let manifest = super::manifest::read(bytes)?;
        let status = signing::verify(bytes).map_err(|e| LoadError::Signature(e.to_string()))?;
        let signature = trust::check(
            &manifest,
            status.clone(),
            &trust,
            config.trust.require_signatures,
        )
        .map_err(LoadError::Signature)?;
        let signer = Signer::of(&manifest, &status, &signature);
        let id = manifest.id.clone();
        let _guard = inner.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = inner.live.load();
        let existing = current.get(&id);
        // Vendor grants follow a verified signature, never the manifest's claim.
        let granted = config.grants.granted(&id, signer.verified_vendor());
        let capabilities = manifest.capabilities.intersect(&granted);
        let mut book = SignerBook::load(&config.signers_file);
        let changes = install_changes(existing, book.get(&id), &manifest, &signer, &capabilities);
        if let Some(bound) = book.get(&id)
            && let Err(why) = trust::continuity(bound, &signer)
        {
            if from_dir.is_some() || !options.force {
                let how = if from_dir.is_some() {
                    "A file in the plugins folder cannot force this; after checking the \
                     changes, install it with `callboard plugin install --force` (admin API: force=true)"
                } else {
                    "After checking the changes, install it again with --force (admin API: force=true) to accept them"
                };
                return Err(LoadError::SignerChange(format!(
                    "plugin id \"{id}\" is already provided by vendor \"{}\" ({bound}); this file is {signer}: \
                     {why}, and its settings, key-value data and grants would pass to the new signer. {how}. \
                     Changes: {}",
                    bound.vendor.as_deref().unwrap_or("(none)"),
                    changes.describe()
                )));
            }
            tracing::warn!(plugin = %manifest.label(), "signer change forced by the operator: {why}; {}", changes.describe());
        }
        if let Some(existing) = existing {
            let old = &existing.loaded.manifest;
            if let Some(dir_file) = &from_dir
                && existing.loaded.source.as_deref() != Some(*dir_file)
            {
                return Err(LoadError::DuplicateId {
                    id,
                    other: existing
                        .loaded
                        .source
                        .as_deref()
                        .map_or("an install".into(), |p| p.display().to_string()),
                });
            }
            if manifest.version < old.version && !options.force {
                return Err(LoadError::Downgrade {
                    id,
                    from: old.version.clone(),
                    to: manifest.version,
                });
            }
        }
        let license_state = self.license_for(&manifest, options.license.as_deref(), &trust)?;

        let target = from_dir
            .map(Path::to_owned)
            .unwrap_or_else(|| config.plugins_dir.join(format!("{id}.wasm")));
        let mut loaded = loader::load(
            &inner.engine,
            &inner.linkers,
            Some(&inner.cache),
            (bytes, Some(target.clone())),
            (manifest.clone(), signature),
        )?;
        loaded.source = Some(target.clone());

        // Only now that everything checks out do files change.
        if let Some(text) = &options.license {
            write_install(
                &config.licenses_dir.join(format!("{id}.license")),
                text.as_bytes(),
            )?;
        }
        if from_dir.is_none() {
            write_install(&target, bytes)?;
        }
        if let Err(e) = book.bind(&id, &signer) {
            tracing::error!(plugin = %manifest.label(), "cannot record the plugin's signer: {e}");
        }
        let mut capabilities = capabilities;
        let dirs = self.open_dirs(&manifest, &mut capabilities);
        let grants = Arc::new(Grants {
            catalog: capabilities
                .catalog
                .then(|| inner.catalog.get().cloned())
                .flatten(),
            settings: config
                .plugins
                .settings
                .get(&id)
                .cloned()
                .unwrap_or_default(),
            http: inner.http.clone(),
            permissions: manifest.permissions.clone(),
            credentials: super::capabilities::http::credentials::Bound::resolve(
                &id,
                &config
                    .plugins
                    .credentials
                    .get(&id)
                    .cloned()
                    .unwrap_or_default(),
            ),
            capabilities: capabilities.clone(),
            dirs,
            max_open_files: config.plugins.max_open_files.max(1),
            models: capabilities.models.then(|| inner.models.clone()).flatten(),
            events: inner.events.clone(),
        });
        let live = Arc::new(LivePlugin {
            id: Arc::from(id.as_str()),
            label: loader::label(&loaded.manifest),
            limits: effective_limits(config.plugins.limits_for(&id), &manifest),
            capabilities,
            grants,
            requested: manifest.capabilities.clone(),
            granted,
            license: ArcSwap::from_pointee(license_state),
            slots: PluginSlots::new(&config.plugins),
            loaded,
        });
        let mut next = HashMap::clone(&current);
        let replaced = next.insert(id.clone(), live.clone());
        inner.live.store(Arc::new(next));
        self.start_background(&live);
        self.last_errors().remove(&id);
        // An update installed under the canonical name retires a differently
        // named file that held the old version (the watcher then sees a
        // removal of a file no live plugin comes from: a no-op).
        if let Some(old_file) = replaced.and_then(|r| r.loaded.source.clone())
            && old_file != target
            && from_dir.is_none()
        {
            let _ = std::fs::remove_file(&old_file);
        }
        let mut info = self.info(&live);
        tracing::info!(
            plugin = %info.id, version = %info.version, api = %info.api_version,
            from_cache = info.compiled_from_cache, compile_ms = info.compile_ms,
            status = %info.status, changes = %changes.describe(), "plugin loaded"
        );
        info.changes = Some(changes);
        Ok(info)
    }

    /// The licence state for a plugin about to be installed: the offered
    /// licence must hold (else the install is refused); without one, the
    /// installed licence file is used.
    fn license_for(
        &self,
        manifest: &Manifest,
        offered: Option<&str>,
        trust: &TrustStore,
    ) -> Result<LicenseState, LoadError> {
        if let Some(text) = offered {
            let terms = self.verify_license(text, manifest, trust)?;
            return Ok(LicenseState::Valid(terms));
        }
        Ok(self.installed_license(manifest, trust))
    }

    fn installed_license(&self, manifest: &Manifest, trust: &TrustStore) -> LicenseState {
        if !manifest.is_commercial() {
            return LicenseState::NotRequired;
        }
        let file = self
            .inner
            .settings
            .licenses_dir
            .join(format!("{}.license", manifest.id));
        match std::fs::read_to_string(&file) {
            Ok(text) => match self.verify_license(&text, manifest, trust) {
                Ok(terms) => LicenseState::Valid(terms),
                Err(e) => LicenseState::Invalid {
                    reason: e.to_string(),
                },
            },
            Err(_) => LicenseState::Invalid {
                reason: format!(
                    "no licence installed for {}; install one with `callboard plugin install --license`",
                    manifest.id
                ),
            },
        }
    }

    fn verify_license(
        &self,
        text: &str,
        manifest: &Manifest,
        trust: &TrustStore,
    ) -> Result<LicenseTerms, LicenseError> {
        license::verify(
            text,
            &manifest.id,
            manifest.vendor.as_deref().unwrap_or_default(),
            &self.inner.settings.organization,
            trust,
            Timestamp::now(),
        )
    }

    /// Installs a licence for live plugin `id` and applies it at once.
    pub fn install_license(&self, id: &str, text: &str) -> Result<PluginInfo, LoadError> {
        let plugin = self
            .live(id)
            .ok_or_else(|| LoadError::Read(format!("no plugin named \"{id}\" is installed")))?;
        let terms = self.verify_license(text, &plugin.loaded.manifest, &self.trust())?;
        write_install(
            &self
                .inner
                .settings
                .licenses_dir
                .join(format!("{id}.license")),
            text.as_bytes(),
        )?;
        plugin.license.store(Arc::new(LicenseState::Valid(terms)));
        tracing::info!(plugin = %plugin.label, "licence installed");
        self.share_license(id, text)?;
        Ok(self.info(&plugin))
    }

    /// Re-checks every licence: an expired one disables its plugin with a
    /// clear status; a renewed one re-enables it. Returns the ids of the
    /// plugins whose licence state changed. `license_checks.rs` runs it
    /// once per period across replicas.
    pub fn check_licenses(&self) -> Vec<String> {
        let trust = self.trust();
        let mut changed = Vec::new();
        for (id, plugin) in self.inner.live.load().iter() {
            let state = self.installed_license(&plugin.loaded.manifest, &trust);
            let before = plugin.license.load();
            if **before == state {
                continue;
            }
            match &state {
                LicenseState::Invalid { reason } => {
                    tracing::warn!(plugin = %plugin.label, "plugin disabled: {reason}");
                }
                _ if matches!(&**before, LicenseState::Invalid { .. }) => {
                    tracing::info!(plugin = %plugin.label, "plugin enabled: its licence is valid");
                }
                _ => {}
            }
            plugin.license.store(Arc::new(state));
            changed.push(id.clone());
        }
        changed.sort();
        changed
    }

    /// Unloads plugin `id`, deletes its file, and with `purge` its key-value
    /// data. Its routes answer 404 afterwards.
    pub fn remove(&self, id: &str, purge: bool) -> Result<(), LoadError> {
        self.remove_local(id, purge)?;
        self.share_removal(id)
    }

    /// [`PluginHost::remove`] on this replica only.
    pub(super) fn remove_local(&self, id: &str, purge: bool) -> Result<(), LoadError> {
        let inner = &self.inner;
        let _guard = inner.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = inner.live.load();
        let Some(plugin) = current.get(id).cloned() else {
            return Err(LoadError::Read(format!(
                "no plugin named \"{id}\" is installed"
            )));
        };
        let mut next = HashMap::clone(&current);
        next.remove(id);
        inner.live.store(Arc::new(next));
        self.stop_background(id);
        if let Some(file) = &plugin.loaded.source {
            let _ = std::fs::remove_file(file);
        }
        if purge {
            // Called on a blocking thread (the admin API's), where waiting
            // on the runtime is allowed.
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|e| LoadError::Write(format!("purging key-value data: {e}")))?;
            handle
                .block_on(inner.kv.purge(id))
                .map_err(|e| LoadError::Write(e.to_string()))?;
        }
        tracing::info!(plugin = %plugin.label, purge, "plugin removed");
        Ok(())
    }

    /// Unloads the plugin that came from `file`, if any (the file is gone).
    pub fn unload_file(&self, file: &Path) {
        let inner = &self.inner;
        let _guard = inner.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        // Checked again under the lock: an install may have written the file
        // back (and swapped its plugin in) since the watcher saw it vanish.
        if file.exists() {
            return;
        }
        let current = inner.live.load();
        let Some((id, plugin)) = current
            .iter()
            .find(|(_, p)| p.loaded.source.as_deref() == Some(file))
        else {
            return;
        };
        let mut next = HashMap::clone(&current);
        let label = plugin.label.clone();
        next.remove(&id.clone());
        inner.live.store(Arc::new(next));
        self.stop_background(id);
        tracing::info!(plugin = %label, file = %file.display(), "plugin file removed; plugin unloaded");
    }

    /// What each live plugin is doing on this replica now (for metrics).
    pub fn usage(&self) -> Vec<PluginUsage> {
        let mut events = self.inner.events.local();
        self.inner
            .live
            .load()
            .iter()
            .map(|(id, plugin)| {
                let (in_use, max, queued) = plugin.slots.usage();
                PluginUsage {
                    id: id.clone(),
                    in_use,
                    max,
                    queued,
                    events: events.remove(id),
                }
            })
            .collect()
    }

    /// The live plugins, by id.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut list: Vec<_> = self
            .inner
            .live
            .load()
            .values()
            .map(|p| self.info(p))
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Every view slot of every live plugin, by plugin id (cheap: no copies
    /// of the plugins' other details).
    pub fn view_slots(&self) -> Vec<(String, ViewSlot)> {
        let live = self.inner.live.load();
        let mut out: Vec<(String, ViewSlot)> = live
            .iter()
            .filter(|(_, p)| p.loaded.api >= ApiVersion::V0_3_0)
            .flat_map(|(id, p)| {
                p.loaded
                    .manifest
                    .views
                    .iter()
                    .map(move |v| (id.clone(), v.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The permissions plugin `id` declares for `path` (normalised): every
    /// one must be allowed before the call reaches the plugin.
    pub fn permissions_guarding(&self, id: &str, path: &str) -> Vec<String> {
        let live = self.inner.live.load();
        live.get(id)
            .map(|plugin| {
                plugin
                    .loaded
                    .manifest
                    .permissions
                    .iter()
                    .filter(|p| p.paths.iter().any(|gate| gate_covers(gate, path)))
                    .map(|p| p.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A token that changes whenever the set of live plugins does (a
    /// pointer comparison, for the request path).
    pub fn live_token(&self) -> usize {
        Arc::as_ptr(&self.inner.live.load()) as usize
    }

    /// Every permission the live plugins declare, by plugin id, and a token
    /// that changes whenever the set of live plugins does (to rebuild what
    /// is derived from it only then).
    pub fn declared_permissions(
        &self,
    ) -> (usize, Vec<(String, super::manifest::DeclaredPermission)>) {
        let live = self.inner.live.load_full();
        let token = Arc::as_ptr(&live) as usize;
        let mut out: Vec<_> = live
            .values()
            .flat_map(|p| {
                p.loaded
                    .manifest
                    .permissions
                    .iter()
                    .map(|d| (p.loaded.manifest.id.clone(), d.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        (token, out)
    }

    /// Whether plugin `id`'s licence admits a call at `path` (normalised):
    /// views are gated like routes.
    pub fn admits(&self, id: &str, path: &str) -> Result<(), CallError> {
        let live = self.inner.live.load();
        let plugin = live
            .get(id)
            .ok_or_else(|| CallError::NotFound(id.to_owned()))?;
        plugin.admit(path)
    }

    /// One live plugin.
    pub fn get(&self, id: &str) -> Option<PluginInfo> {
        self.live(id).map(|p| self.info(&p))
    }

    /// Files and uploads refused since start-up, oldest first.
    pub fn failures(&self) -> Vec<LoadFailure> {
        self.inner
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The key-value store.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.inner.kv
    }

    /// What the runtime was started with.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.inner.settings
    }

    /// The file a live plugin was loaded from or installed to.
    pub(super) fn source_of(&self, id: &str) -> Option<std::path::PathBuf> {
        self.live(id).and_then(|p| p.loaded.source.clone())
    }

    fn live(&self, id: &str) -> Option<Arc<LivePlugin>> {
        self.inner.live.load().get(id).cloned()
    }

    fn trust(&self) -> TrustStore {
        let config = &self.inner.settings;
        TrustStore::load(&config.trust, &config.trust_dir)
    }

    fn last_errors(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.inner
            .last_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The live plugin if `file` is its source and `bytes` are what it runs.
    fn unchanged(&self, file: &Path, bytes: &[u8]) -> Option<PluginInfo> {
        use sha2::{Digest, Sha256};
        let sha = hex::encode(Sha256::digest(bytes));
        let current = self.inner.live.load();
        let plugin = current
            .values()
            .find(|p| p.loaded.source.as_deref() == Some(file) && p.loaded.sha256 == sha)?;
        Some(self.info(plugin))
    }

    /// Opens the granted directories once; one that is missing or overlaps
    /// Callboard's own folders (data, config, trust) is refused with a
    /// warning and left out of the effective capabilities.
    fn open_dirs(&self, manifest: &Manifest, capabilities: &mut Capabilities) -> Vec<GrantedDir> {
        let config = &self.inner.settings;
        // Nothing inside the data, trust and plugins folders may be granted.
        // The config folder only holds the file that matters, so a root
        // may sit inside it (the demo's `demo/billing` beside
        // `demo/callboard.toml`) but not be it or contain it.
        let protected: Vec<Protected> = [
            (Some(config.data_dir.clone()), "data directory", true),
            (config.plugins.config_dir.clone(), "config folder", false),
            (Some(config.trust_dir.clone()), "trust folder", true),
            (Some(config.plugins_dir.clone()), "plugins folder", true),
        ]
        .into_iter()
        .filter_map(|(dir, what, inside_too)| {
            let dir = dir?;
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            Some(Protected {
                dir: std::fs::canonicalize(&dir).unwrap_or(dir),
                what,
                inside_too,
            })
        })
        .collect();
        let mut dirs = Vec::new();
        capabilities.files.retain(
            |guest, host| match GrantedDir::open(guest, host, &protected) {
                Ok(dir) => {
                    dirs.push(dir);
                    true
                }
                Err(e) => {
                    tracing::warn!(plugin = %manifest.label(), "{e}; the plugin will not see it");
                    false
                }
            },
        );
        dirs
    }

    /// Records and logs a refusal; the plugin's serving version is untouched.
    fn fail(&self, file: &Path, id: Option<&str>, error: &LoadError) -> LoadFailure {
        let serving = id.and_then(|id| self.live(id));
        match &serving {
            Some(p) => {
                tracing::error!(file = %file.display(), "refusing plugin file {}: {error} ({} keeps serving)", file.display(), p.label)
            }
            None => {
                tracing::error!(file = %file.display(), "refusing plugin file {}: {error}", file.display())
            }
        }
        if let Some(id) = id {
            self.last_errors().insert(id.to_owned(), error.to_string());
        }
        let failure = LoadFailure {
            file: file.to_owned(),
            error: error.to_string(),
            at: SystemTime::now(),
        };
        let mut failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_FAILURES {
            failures.remove(0);
        }
        failures.push(failure.clone());
        failure
    }

    fn info(&self, plugin: &LivePlugin) -> PluginInfo {
        let loaded = &plugin.loaded;
        let m = &loaded.manifest;
        let license_status = (**plugin.license.load()).clone();
        let status = match plugin.admit("") {
            Ok(()) => "serving".to_owned(),
            Err(e) => format!(
                "disabled: {}",
                e.to_string()
                    .split_once(": ")
                    .map_or(e.to_string(), |(_, r)| r.to_owned())
            ),
        };
        PluginInfo {
            id: m.id.clone(),
            name: m.name.clone(),
            version: m.version.to_string(),
            api_version: loaded.api,
            vendor: m.vendor.clone(),
            description: m.description.clone(),
            license: m.license.clone(),
            sha256: loaded.sha256.clone(),
            size: loaded.size,
            source: loaded.source.clone(),
            compiled_from_cache: loaded.from_cache,
            compile_ms: loaded.compile_time.as_secs_f64() * 1000.0,
            limits: plugin.limits,
            requested: plugin.requested.clone(),
            granted: plugin.granted.clone(),
            effective: plugin.capabilities.clone(),
            signature: loaded.signature.clone(),
            license_status,
            status,
            last_error: self.last_errors().get(&m.id).cloned(),
            views: m.views.clone(),
            tick_secs: m.tick_secs,
            events: self.inner.events.stats(&m.id),
            ticks: self.tick_stats(&m.id).map(|t| t.snapshot()),
            changes: None,
        }
    }

    /// Starts (or keeps) what runs in the background for a plugin just
    /// swapped in: its event delivery and its scheduled ticks. Only API 0.3+
    /// plugins have them; without a tokio runtime (offline CLI) nothing runs.
    fn start_background(&self, plugin: &LivePlugin) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let id = plugin.loaded.manifest.id.clone();
        let v0_3 = plugin.loaded.api >= ApiVersion::V0_3_0;
        let streams = if v0_3 {
            plugin.capabilities.events.as_slice()
        } else {
            &[]
        };
        let config = &self.inner.settings.plugins;
        if let Some(subscription) =
            self.inner
                .events
                .subscribe(&id, streams, config.event_queue, config.event_queue_bytes)
        {
            let host = self.clone();
            let batch = config.event_batch.max(1);
            let linger = std::time::Duration::from_millis(config.event_linger_ms);
            runtime.spawn(deliver_events(
                host,
                id.clone(),
                subscription,
                batch,
                linger,
            ));
        }

        let mut tickers = self.inner.tickers.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = plugin.loaded.manifest.tick_secs.filter(|_| v0_3);
        match (tickers.get(&id), wanted) {
            (Some((secs, task)), Some(want)) if *secs == want && !task.is_finished() => {}
            (_, Some(secs)) => {
                let stats = self
                    .inner
                    .tick_stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(id.clone())
                    .or_default()
                    .clone();
                let max_backoff = config.tick_backoff_max_secs;
                let task = runtime.spawn(run_ticks(
                    self.clone(),
                    id.clone(),
                    secs,
                    stats,
                    max_backoff,
                ));
                if let Some((_, old)) = tickers.insert(id, (secs, task.abort_handle())) {
                    old.abort();
                }
            }
            (_, None) => {
                if let Some((_, old)) = tickers.remove(&id) {
                    old.abort();
                }
            }
        }
    }

    /// Stops a removed plugin's event delivery and ticks.
    fn stop_background(&self, id: &str) {
        self.inner.events.unsubscribe(id);
        let mut tickers = self.inner.tickers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, task)) = tickers.remove(id) {
            task.abort();
        }
    }
}

/// Drains plugin `id`'s event queue in batches until it unsubscribes.
async fn deliver_events(
    host: PluginHost,
    id: String,
    subscription: super::events::Subscription,
    batch: usize,
    linger: std::time::Duration,
) {
    use std::sync::atomic::Ordering;
    let super::events::Subscription {
        mut rx,
        stats,
        queued,
    } = subscription;
    let mut buffer = Vec::with_capacity(batch);
    while rx.recv_many(&mut buffer, batch).await > 0 {
        // A short wait for more fills the batch when events trickle in, so a
        // busy portal costs one plugin call per batch, not one per event.
        if buffer.len() < batch && !linger.is_zero() {
            tokio::time::sleep(linger).await;
            while buffer.len() < batch {
                match rx.try_recv() {
                    Ok(event) => buffer.push(event),
                    Err(_) => break,
                }
            }
        }
        queued.release(&buffer);
        match host.deliver_events(&id, &buffer).await {
            Ok(()) => {
                stats
                    .delivered
                    .fetch_add(buffer.len() as u64, Ordering::Relaxed);
            }
            // A disabled plugin (licence) is not called: its events are
            // dropped and counted, without a warning per batch.
            Err(CallError::Unlicensed { .. }) => {
                stats
                    .dropped
                    .fetch_add(buffer.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(plugin = %id, events = buffer.len(), "event batch lost: {e}");
            }
        }
        stats
            .unsettled
            .fetch_sub(buffer.len() as u64, Ordering::AcqRel);
        buffer.clear();
    }
}

/// How long a replica holds a tick's lease: far beyond a call's deadline,
/// so only a dead replica loses it; another then ticks within this period.
const TICK_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Calls plugin `id`'s scheduled task every `secs` seconds, the first time
/// right away, until the plugin is removed. Each tick is a lease
/// (`tick:<id>`), so with several replicas on one database the plugin ticks
/// once per period in total. Each failure in a row doubles an extra pause
/// (up to `max_backoff` seconds), so a tick that loops or traps does not
/// burn a core.
async fn run_ticks(
    host: PluginHost,
    id: String,
    secs: u64,
    stats: Arc<TickStats>,
    max_backoff: u64,
) {
    use std::sync::atomic::Ordering;
    let leases = host.inner.leases.clone();
    let name = format!("tick:{id}");
    // Installed or updated just now: tick right away, as a start means.
    if let Err(e) = leases.make_due(&name).await {
        tracing::warn!(plugin = %id, "scheduled ticks: {e}");
    }
    // Look for a due tick often enough to keep the period, at most once a
    // second.
    let poll = std::time::Duration::from_secs(secs.clamp(1, 5));
    loop {
        let lease = match leases.claim(&name, &host.inner.replica, TICK_LEASE).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(plugin = %id, "scheduled ticks: claiming the tick failed: {e}");
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let held = callboard_store::metrics::LeaseHeld::new("plugin_tick");
        let ticked = host.tick(&id, now_ms).await;
        drop(held);
        let failed = match ticked {
            Ok(()) => false,
            Err(CallError::NotFound(_)) => return,
            // Disabled until a valid licence arrives; its status says why.
            Err(CallError::Unlicensed { .. }) => false,
            Err(e) => {
                tracing::warn!(plugin = %id, "scheduled tick failed: {e}");
                true
            }
        };
        let backoff = if failed {
            let failures = stats.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
            let backoff = secs
                .max(1)
                .saturating_mul(1u64 << (failures - 1).min(20))
                .min(max_backoff);
            tracing::info!(plugin = %id, "next tick in {backoff} s more after {failures} failures in a row");
            backoff
        } else {
            stats.failures_in_a_row.store(0, Ordering::Relaxed);
            0
        };
        stats.backoff_secs.store(backoff, Ordering::Relaxed);
        let next_in = std::time::Duration::from_secs(secs.saturating_add(backoff));
        if let Err(e) = leases.complete(&lease, next_in).await {
            tracing::warn!(plugin = %id, "scheduled ticks: completing the tick failed: {e}");
        }
        tokio::time::sleep(poll).await;
    }
}

impl TickStats {
    fn snapshot(&self) -> TickCounts {
        use std::sync::atomic::Ordering;
        TickCounts {
            failures_in_a_row: self.failures_in_a_row.load(Ordering::Relaxed),
            backoff_secs: self.backoff_secs.load(Ordering::Relaxed),
        }
    }
}

impl PluginHost {
    fn tick_stats(&self, id: &str) -> Option<Arc<TickStats>> {
        let stats = self
            .inner
            .tick_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        stats.get(id).cloned()
    }
}

/// Raises the soft limit on open files to the hard limit: plugins with
/// granted directories, the folder watcher and every connection share it.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!("raised the open-files limit to {:?}", limit.maximum),
            Err(e) => tracing::warn!(
                "cannot raise the open-files limit ({:?}): {e}",
                limit.current
            ),
        }
    }
}

/// Checks a plugin file the way the server will, without compiling it:
/// manifest, signature, trust policy. What `plugin install --offline` and
/// `plugin inspect` use.
pub fn verify_file(
    bytes: &[u8],
    config: &RuntimeSettings,
) -> Result<(Manifest, SignatureState), LoadError> {
    let trust = TrustStore::load(&config.trust, &config.trust_dir);
    loader::verify(bytes, &trust, config.trust.require_signatures)
}

/// Checks a licence file for `manifest`'s plugin against `config` now.
pub fn verify_license_file(
    text: &str,
    manifest: &Manifest,
    config: &RuntimeSettings,
) -> Result<LicenseTerms, LicenseError> {
    let trust = TrustStore::load(&config.trust, &config.trust_dir);
    license::verify(
        text,
        &manifest.id,
        manifest.vendor.as_deref().unwrap_or_default(),
        &config.organization,
        &trust,
        Timestamp::now(),
    )
}

/// A plugin file the folder watcher and start-up load: `*.wasm`, not hidden.
/// Anything else (`x.wasm.part`, `.x.wasm`) is ignored, which is what makes
/// write-then-rename safe.
pub fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
        && path.is_file()
}

/// The operator's limits, lowered where the plugin asks for less.
fn effective_limits(mut limits: Limits, manifest: &Manifest) -> Limits {
    let asked = &manifest.limits;
    if let Some(t) = asked.timeout_ms {
        limits.timeout_ms = limits.timeout_ms.min(t);
    }
    if let Some(m) = asked.memory_mib {
        limits.memory_mib = limits.memory_mib.min(m);
    }
    if let Some(q) = asked.kv_quota_bytes {
        limits.kv_quota_bytes = limits.kv_quota_bytes.min(q);
    }
    limits
}

/// What installing `manifest` (signed by `signer`, getting `capabilities`)
/// changes from the serving version and the id's bound signer.
fn install_changes(
    existing: Option<&Arc<LivePlugin>>,
    bound: Option<&Signer>,
    manifest: &Manifest,
    signer: &Signer,
    capabilities: &Capabilities,
) -> InstallChanges {
    let items = trust::capability_items;
    let (requested_before, granted_before) = existing.map_or((Vec::new(), Vec::new()), |e| {
        (items(&e.requested), items(&e.capabilities))
    });
    let (requested_now, granted_now) = (items(&manifest.capabilities), items(capabilities));
    InstallChanges {
        version_from: existing.map(|e| e.loaded.manifest.version.to_string()),
        version_to: manifest.version.to_string(),
        signer_from: bound.map(ToString::to_string),
        signer_to: signer.to_string(),
        requested_added: trust::added(&requested_before, &requested_now),
        requested_removed: trust::added(&requested_now, &requested_before),
        granted_added: trust::added(&granted_before, &granted_now),
        granted_removed: trust::added(&granted_now, &granted_before),
    }
}

fn manifest_id(bytes: &[u8]) -> Option<String> {
    super::manifest::read(bytes).ok().map(|m| m.id)
}

/// [`write_atomically`] for installs: a failure is a [`LoadError::Write`].
fn write_install(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    super::write_atomically(path, bytes)
        .map_err(|e| LoadError::Write(format!("{}: {e}", path.display())))
}

impl PluginHost {
    /// **Test seam** (what `callboard-plugin-harness` uses; production never
    /// calls it): every plugin's outbound HTTP goes to `transport` instead of
    /// the network. The grant check, the operator's credentials, redirects,
    /// the timeout and the response size cap apply as in production (see
    /// [`super::capabilities::http::transport`]). Call once, before
    /// installing plugins; `false` if a transport was set already.
    pub fn set_http_transport(
        &self,
        transport: Arc<dyn super::capabilities::http::Transport>,
    ) -> bool {
        self.inner.http.set_transport(transport)
    }

    /// Runs plugin `id`'s scheduled task (`on-tick`) once now, as its own
    /// service principal, under the same deadline and limits as a scheduled
    /// tick; for tests, which cannot wait for the schedule.
    pub async fn tick_now(&self, id: &str) -> Result<(), CallError> {
        let now_ms = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.tick(id, now_ms).await
    }

    /// Delivers `events` to plugin `id` now, as one batch, the way the
    /// event bus does (as its service principal, under its limits); for
    /// tests, which cannot wait for the bus. The caller checks that the
    /// plugin subscribes to their stream.
    pub async fn deliver_now(
        &self,
        id: &str,
        events: Vec<super::events::Event>,
    ) -> Result<(), CallError> {
        let events: Vec<Arc<super::events::Event>> = events.into_iter().map(Arc::new).collect();
        self.deliver_events(id, &events).await
    }
}
