//! The live plugins and the call path into them.
//!
//! Requests read the current map of plugins without a lock ([`ArcSwap`]); an
//! install compiles off the request path and then swaps the map, so requests
//! in flight finish on the version they started with.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use arc_swap::ArcSwap;
use serde::Serialize;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::{
    ApiVersion,
    bindings::v0_1_0,
    capabilities::kv::{KvAccess, KvStore, Quota},
    engine,
    loader::{self, Linkers, LoadError, Loaded, Pre},
    state::HostState,
};
use crate::config::{Config, Limits, PluginsConfig};

/// A request for a plugin, in host terms.
#[derive(Debug, Clone, Default)]
pub struct PluginRequest {
    /// Upper-case method.
    pub method: String,
    /// Path below the plugin's mount point, starting with `/`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Lower-case header names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A plugin's answer.
#[derive(Debug, Clone)]
pub struct PluginResponse {
    /// HTTP status (checked to be 100-599).
    pub status: u16,
    /// Headers as the plugin set them.
    pub headers: Vec<(String, String)>,
    /// Body bytes (checked against the response cap).
    pub body: Vec<u8>,
}

/// Why a call did not produce a response. Every variant names the plugin
/// as `id@version` except [`CallError::NotFound`].
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No plugin with that id is installed.
    #[error("no plugin named \"{0}\" is installed")]
    NotFound(String),
    /// The request body is over the plugin's cap.
    #[error("request body of {size} bytes is over plugin {plugin}'s limit of {limit} bytes")]
    RequestTooLarge {
        /// `id@version`.
        plugin: Arc<str>,
        /// Body size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The plugin ran past its deadline and was stopped.
    #[error("plugin {plugin} did not answer within its deadline of {} ms and was stopped", .deadline.as_millis())]
    Timeout {
        /// `id@version`.
        plugin: Arc<str>,
        /// The deadline.
        deadline: Duration,
    },
    /// The plugin needed more memory than it may have and was stopped.
    #[error("plugin {plugin} exceeded its memory limit of {limit_mib} MiB and was stopped")]
    MemoryLimit {
        /// `id@version`.
        plugin: Arc<str>,
        /// The limit.
        limit_mib: u64,
    },
    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error("plugin {plugin} failed: {message}")]
    Trap {
        /// `id@version`.
        plugin: Arc<str>,
        /// The trap, without the wasm backtrace (that goes to the log).
        message: String,
    },
    /// The plugin answered something that is not a valid response.
    #[error("plugin {plugin} returned an invalid response: {reason}")]
    BadResponse {
        /// `id@version`.
        plugin: Arc<str>,
        /// What is wrong with it.
        reason: String,
    },
    /// Every instance slot is in use.
    #[error("plugin {plugin} is at capacity; try again shortly")]
    Busy {
        /// `id@version`.
        plugin: Arc<str>,
    },
}

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
    /// Licence kind from the manifest.
    pub license: Option<String>,
    /// SHA-256 of the plugin file.
    pub sha256: String,
    /// File size in bytes.
    pub size: usize,
    /// The file it was loaded from, if any.
    pub source: Option<PathBuf>,
    /// Whether compiled code came from the on-disk cache.
    pub compiled_from_cache: bool,
    /// Time to compile or load from cache, in milliseconds.
    pub compile_ms: f64,
    /// The limits it runs under.
    pub limits: Limits,
}

/// A file that could not be loaded, kept for `list` and the log.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// The file.
    pub file: PathBuf,
    /// Why.
    pub error: String,
    /// When.
    pub at: SystemTime,
}

struct LivePlugin {
    loaded: Loaded,
    label: Arc<str>,
    limits: Limits,
}

struct Inner {
    engine: Engine,
    linkers: Linkers,
    cache: wasmtime::Cache,
    config: PluginsConfig,
    kv: Arc<KvStore>,
    live: ArcSwap<HashMap<String, Arc<LivePlugin>>>,
    failures: Mutex<Vec<LoadFailure>>,
    /// Serializes installs, so cache-hit accounting and map swaps do not race.
    install_lock: Mutex<()>,
}

/// The plugin runtime: one engine, the live plugins, their shared state.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl PluginHost {
    /// Builds the engine and opens `<data_dir>/kv.sqlite`. Loads nothing yet.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let cache_dir = config.data_dir.join("cache").join("compiled");
        std::fs::create_dir_all(&cache_dir)?;
        let (engine, cache) = engine::build(&config.plugins, &cache_dir)?;
        let linkers = Linkers::new(&engine)?;
        let kv = KvStore::open(&config.data_dir.join("kv.sqlite"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linkers,
                cache,
                config: config.plugins.clone(),
                kv: Arc::new(kv),
                live: ArcSwap::from_pointee(HashMap::new()),
                failures: Mutex::new(Vec::new()),
                install_lock: Mutex::new(()),
            }),
        })
    }

    /// Loads every `*.wasm` file in `dir`, in name order. A file that fails is
    /// logged with its name and reason and skipped; the others still load.
    pub fn load_dir(&self, dir: &Path) -> Vec<Result<PluginInfo, LoadFailure>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
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

    /// Loads one plugin file, replacing a live plugin with the same id only
    /// if it came from the same file.
    pub fn install_file(&self, file: &Path) -> Result<PluginInfo, LoadFailure> {
        let result = std::fs::read(file)
            .map_err(|e| LoadError::Read(e.to_string()))
            .and_then(|bytes| self.install_bytes(&bytes, Some(file.to_owned())));
        result.map_err(|error| {
            tracing::error!(file = %file.display(), "refusing plugin file {}: {error}", file.display());
            let failure = LoadFailure { file: file.to_owned(), error: error.to_string(), at: SystemTime::now() };
            self.inner.failures.lock().unwrap_or_else(|e| e.into_inner()).push(failure.clone());
            failure
        })
    }

    fn install_bytes(
        &self,
        bytes: &[u8],
        source: Option<PathBuf>,
    ) -> Result<PluginInfo, LoadError> {
        let inner = &self.inner;
        let _guard = inner.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = loader::load(
            &inner.engine,
            &inner.linkers,
            Some(&inner.cache),
            bytes,
            source,
        )?;
        let id = loaded.manifest.id.clone();
        let current = inner.live.load();
        if let Some(existing) = current.get(&id)
            && existing.loaded.source != loaded.source
        {
            return Err(LoadError::DuplicateId {
                id,
                other: existing
                    .loaded
                    .source
                    .as_deref()
                    .map_or("another install".into(), |p| p.display().to_string()),
            });
        }
        let live = Arc::new(LivePlugin {
            label: loader::label(&loaded.manifest),
            limits: inner.config.limits_for(&id),
            loaded,
        });
        let info = info(&live);
        let mut next = HashMap::clone(&current);
        next.insert(id, live);
        inner.live.store(Arc::new(next));
        tracing::info!(
            plugin = %info.id, version = %info.version, api = %info.api_version,
            from_cache = info.compiled_from_cache, compile_ms = info.compile_ms,
            "plugin loaded"
        );
        Ok(info)
    }

    /// The live plugins, by id.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut list: Vec<_> = self.inner.live.load().values().map(|p| info(p)).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Files that were refused since start-up.
    pub fn failures(&self) -> Vec<LoadFailure> {
        self.inner
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The key-value store (for purging a removed plugin's data, and tests).
    pub fn kv(&self) -> &Arc<KvStore> {
        &self.inner.kv
    }

    /// Runs `request` in a fresh instance of plugin `id`.
    pub async fn handle(
        &self,
        id: &str,
        request: PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        let plugin = self
            .inner
            .live
            .load()
            .get(id)
            .cloned()
            .ok_or_else(|| CallError::NotFound(id.to_owned()))?;
        let limits = plugin.limits;
        if request.body.len() > limits.max_request_body {
            return Err(CallError::RequestTooLarge {
                plugin: plugin.label.clone(),
                size: request.body.len(),
                limit: limits.max_request_body,
            });
        }

        let kv = KvAccess {
            store: self.inner.kv.clone(),
            plugin: Arc::from(id),
            quota: Quota {
                bytes: limits.kv_quota_bytes,
                max_value_bytes: limits.kv_max_value_bytes,
            },
        };
        let mut store = Store::new(
            &self.inner.engine,
            HostState::new(plugin.label.clone(), &limits, kv),
        );
        store.limiter(|s| &mut s.limiter);
        let started = Instant::now();
        let deadline = limits.timeout();
        store.set_epoch_deadline(1);
        // Every tick the plugin yields its thread back to the server, so a
        // busy plugin never starves other requests; past the deadline it stops.
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= deadline {
                Err(DeadlineExceeded.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let result = match &plugin.loaded.pre {
            Pre::V0_1_0(pre) => call_v0_1_0(pre, &mut store, request).await,
        };
        let response = result.map_err(|e| classify(&plugin, &store, &e))?;
        check_response(&plugin, response)
    }
}

async fn call_v0_1_0(
    pre: &v0_1_0::PluginPre<HostState>,
    store: &mut Store<HostState>,
    request: PluginRequest,
) -> wasmtime::Result<PluginResponse> {
    use v0_1_0::exports::callboard::plugin::handler::Request;
    let instance = pre.instantiate_async(&mut *store).await?;
    let request = Request {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        body: request.body,
    };
    let response = instance
        .callboard_plugin_handler()
        .call_handle(&mut *store, &request)
        .await?;
    Ok(PluginResponse {
        status: response.status,
        headers: response.headers,
        body: response.body,
    })
}

/// The epoch callback's error when a call runs out of time.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

fn classify(plugin: &LivePlugin, store: &Store<HostState>, error: &wasmtime::Error) -> CallError {
    let label = plugin.label.clone();
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        tracing::warn!(plugin = %label, "stopped at its deadline of {} ms", plugin.limits.timeout_ms);
        return CallError::Timeout {
            plugin: label,
            deadline: plugin.limits.timeout(),
        };
    }
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        tracing::warn!(plugin = %label, "no free instance slot: {error}");
        return CallError::Busy { plugin: label };
    }
    if store.data().limiter.hit_memory_limit {
        tracing::warn!(plugin = %label, "stopped at its memory limit of {} MiB: {error:#}", plugin.limits.memory_mib);
        return CallError::MemoryLimit {
            plugin: label,
            limit_mib: plugin.limits.memory_mib,
        };
    }
    // The alternate form carries the wasm backtrace: useful in the log, noise in a response.
    tracing::error!(plugin = %label, "plugin trapped: {error:#}");
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("trap: {trap}"),
        None => error.to_string(),
    };
    CallError::Trap {
        plugin: label,
        message,
    }
}

fn check_response(
    plugin: &LivePlugin,
    response: PluginResponse,
) -> Result<PluginResponse, CallError> {
    let bad = |reason: String| CallError::BadResponse {
        plugin: plugin.label.clone(),
        reason,
    };
    if !(100..=599).contains(&response.status) {
        return Err(bad(format!(
            "status {} is not an HTTP status",
            response.status
        )));
    }
    if response.body.len() > plugin.limits.max_response_body {
        return Err(bad(format!(
            "body of {} bytes is over the limit of {} bytes",
            response.body.len(),
            plugin.limits.max_response_body
        )));
    }
    Ok(response)
}

fn info(plugin: &LivePlugin) -> PluginInfo {
    let loaded = &plugin.loaded;
    let m = &loaded.manifest;
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
    }
}
