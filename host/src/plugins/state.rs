//! What one plugin call's [`wasmtime::Store`] holds: the WASI context (deny
//! by default), the plugin's capabilities, and the resource limiter.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use wasmtime::{ResourceLimiter, component::ResourceTable};
use wasmtime_wasi::{
    FsPerms, WasiCtx, WasiCtxView, WasiView,
    cli::{IsTerminal, StdoutStream},
    p2::{OutputStream, Pollable, StreamResult},
};

use super::settings::Limits;
use super::{
    admission::Budgets,
    capabilities::{
        catalog::CatalogView,
        config::ConfigView,
        events::EventsView,
        http::{HttpClient, HttpView},
        kv::{KvAccess, KvView},
        license::LicenseView,
        log::{LOG_BYTES, LOG_LINES, LogBudget, LogView},
        models::ModelsView,
        permissions::PermissionsView,
        search::SearchView,
    },
    manifest::Capabilities,
    registry::LicenseState,
};

/// Store data for one call into one plugin.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// `id@version`, for logs.
    pub(super) label: Arc<str>,
    pub(super) kv: KvAccess,
    /// The licence the host checked for this call, for commercial plugins.
    pub(super) license: Arc<LicenseState>,
    /// What the plugin may reach beyond kv (API 0.3+), fixed at install.
    pub(super) grants: Arc<Grants>,
    /// Who the call runs for: the principal the plugin is told, which
    /// catalog entities it may read (the person's, or the plugin's service
    /// principal's), and what `permissions` and `search` answer.
    pub(super) caller: super::portal::Caller,
    /// The portal's index of plugin documents (API 0.4 `search`).
    pub(super) portal: Option<Arc<dyn super::portal::Portal>>,
    /// When the call started and how long it may run: outbound calls are
    /// capped by what remains.
    pub(super) started: Instant,
    pub(super) deadline: Duration,
    pub(super) limiter: Limiter,
    /// The blocking pool for SQLite host calls.
    pub(super) budgets: Arc<Budgets>,
    /// What remains of this call's `log` budget.
    pub(super) log: LogBudget,
    /// Tokens this call's `models.chat`s spent (the per-call budget).
    pub(super) model_tokens: u32,
    /// Events this call published (`events.publish`).
    pub(super) published: u8,
}

impl Drop for HostState {
    fn drop(&mut self) {
        if self.log.dropped > 0 {
            tracing::warn!(target: "plugin", plugin = %self.label,
                "dropped {} log records over the budget of {LOG_LINES} records or {LOG_BYTES} bytes per call", self.log.dropped);
        }
    }
}

/// The capabilities a live plugin was granted, resolved once at install and
/// shared by all its calls.
pub struct Grants {
    /// The catalog, if granted.
    pub catalog: Option<callboard_catalog::Catalog>,
    /// The effective capabilities (hosts, event streams, files).
    pub capabilities: Capabilities,
    /// `[plugins.settings.<id>]`.
    pub settings: BTreeMap<String, String>,
    /// The shared outbound HTTP client and its limits.
    pub http: HttpClient,
    /// The permissions the plugin declared (`<id>.<name>`).
    pub permissions: Vec<super::manifest::DeclaredPermission>,
    /// The operator's credentials for granted hosts.
    pub credentials: Vec<super::capabilities::http::credentials::Bound>,
    /// The granted directories, opened once at install.
    pub dirs: Vec<GrantedDir>,
    /// Handles one call may hold when it has directories.
    pub max_open_files: u32,
    /// The language-model provider, when granted and configured (API 0.5).
    pub models: Option<Arc<super::capabilities::models::ModelClient>>,
    /// The event bus, for `events.publish` (API 0.5).
    pub events: Arc<super::events::EventBus>,
}

impl Grants {
    /// The declared permission `name`, if the plugin declared it.
    pub(super) fn declared(&self, name: &str) -> Option<&super::manifest::DeclaredPermission> {
        self.permissions.iter().find(|p| p.name == name)
    }

    /// File descriptors one call reserves from the global budget: its
    /// handle cap plus one per directory it preopens; none without directories.
    pub(super) fn descriptors(&self) -> u32 {
        if self.dirs.is_empty() {
            0
        } else {
            self.max_open_files
                .saturating_add(u32::try_from(self.dirs.len()).unwrap_or(u32::MAX))
        }
    }
}

/// Handles a call without granted directories may hold (streams,
/// pollables): bounds what it makes the host keep in its resource table.
const MAX_HANDLES: usize = 4096;

/// A granted directory, canonicalised and opened once at install. Every
/// call reopens it through the handle (`/proc/self/fd/N` on Linux), never by
/// its path, so swapping the path for a symlink later changes nothing.
pub struct GrantedDir {
    /// The path the plugin sees.
    pub guest: String,
    /// The canonical host directory.
    pub host: PathBuf,
    /// The open directory (keeps `via` valid).
    _handle: std::fs::File,
    /// What each call opens.
    via: PathBuf,
}

/// Why a granted directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// Missing, unreadable, or not a directory.
    #[error("granted directory {guest} = {host} cannot be opened as a directory")]
    Unavailable {
        /// The plugin's path.
        guest: String,
        /// The configured host path.
        host: String,
    },
    /// It is, contains, or is inside one of Callboard's own folders.
    #[error("granted directory {guest} = {host} overlaps Callboard's {what}; refused")]
    Overlaps {
        /// The plugin's path.
        guest: String,
        /// The configured host path.
        host: String,
        /// Which folder.
        what: &'static str,
    },
}

/// A folder of Callboard's own that no granted directory may expose.
#[derive(Debug, Clone)]
pub struct Protected {
    /// The folder, canonical.
    pub dir: PathBuf,
    /// What it is, for the refusal.
    pub what: &'static str,
    /// Whether a root inside it is refused too (not only the folder itself
    /// and roots that contain it).
    pub inside_too: bool,
}

impl GrantedDir {
    /// Canonicalises `host`, refuses it if it overlaps one of `protected`,
    /// and opens it.
    pub fn open(guest: &str, host: &str, protected: &[Protected]) -> Result<Self, DirError> {
        let unavailable = || DirError::Unavailable {
            guest: guest.to_owned(),
            host: host.to_owned(),
        };
        let canonical = std::fs::canonicalize(host).map_err(|_| unavailable())?;
        for p in protected {
            if (p.inside_too && canonical.starts_with(&p.dir)) || p.dir.starts_with(&canonical) {
                return Err(DirError::Overlaps {
                    guest: guest.to_owned(),
                    host: host.to_owned(),
                    what: p.what,
                });
            }
        }
        let handle = std::fs::File::open(&canonical).map_err(|_| unavailable())?;
        if !handle.metadata().map_err(|_| unavailable())?.is_dir() {
            return Err(unavailable());
        }
        let via = reopen_path(&handle).unwrap_or_else(|| canonical.clone());
        Ok(Self {
            guest: guest.to_owned(),
            host: canonical,
            _handle: handle,
            via,
        })
    }
}

/// The path that reopens exactly `handle`'s directory, where the OS has one.
#[cfg(target_os = "linux")]
fn reopen_path(handle: &std::fs::File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let via = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    via.is_dir().then_some(via)
}

#[cfg(not(target_os = "linux"))]
fn reopen_path(_: &std::fs::File) -> Option<PathBuf> {
    None
}

impl HostState {
    pub(super) fn new(
        label: Arc<str>,
        limits: &Limits,
        kv: KvAccess,
        license: Arc<LicenseState>,
        grants: Arc<Grants>,
        (caller, portal): (
            super::portal::Caller,
            Option<Arc<dyn super::portal::Portal>>,
        ),
        budgets: Arc<Budgets>,
    ) -> Self {
        // Deny by default: no environment, no arguments, no network (every
        // address denied, TCP/UDP/DNS off; outbound HTTP goes through the
        // `http` interface), no directories but the read-only ones granted;
        // stdout and stderr go to the host log.
        let mut wasi = WasiCtx::builder();
        wasi.stdout(LogStream::new(label.clone(), Stream::Stdout))
            .stderr(LogStream::new(label.clone(), Stream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for dir in &grants.dirs {
            if let Err(e) = wasi.preopened_dir(&dir.via, &dir.guest, FsPerms::ReadOnly) {
                tracing::debug!(plugin = %label, dir = %dir.host.display(), "granted directory {} is not available: {e:#}", dir.guest);
            }
        }
        let wasi = wasi.build();
        // Every open file is a handle in this table: capping the table caps
        // the descriptors one call holds (the global budget was reserved for
        // exactly this many when the call was admitted).
        let mut table = ResourceTable::new();
        table.set_max_capacity(if grants.dirs.is_empty() {
            MAX_HANDLES
        } else {
            grants.max_open_files as usize
        });
        Self {
            wasi,
            table,
            budgets,
            log: LogBudget::default(),
            model_tokens: 0,
            published: 0,
            label,
            kv,
            license,
            grants,
            caller,
            portal,
            started: Instant::now(),
            deadline: limits.timeout(),
            limiter: Limiter {
                memory_bytes: limits.memory_bytes(),
                table_elements: limits.table_elements as usize,
                hit_memory_limit: false,
            },
        }
    }
}

impl HostState {
    /// What remains of this call's deadline.
    pub(super) fn remaining(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }
}

/// The store's data projected onto each capability's view: what the linker
/// hands each interface's glue (`api/`), as wasmtime-wasi's `WasiView`
/// does. A capability sees only its view, never the rest of the call.
impl HostState {
    pub(super) fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            access: &self.kv,
            budgets: &self.budgets,
        }
    }

    pub(super) fn log_view(&mut self) -> LogView<'_> {
        LogView {
            label: &self.label,
            budget: &mut self.log,
        }
    }

    pub(super) fn license_view(&mut self) -> LicenseView<'_> {
        LicenseView {
            license: &self.license,
        }
    }

    pub(super) fn config_view(&mut self) -> ConfigView<'_> {
        ConfigView {
            settings: &self.grants.settings,
        }
    }

    pub(super) fn catalog_view(&mut self) -> CatalogView<'_> {
        CatalogView {
            label: &self.label,
            catalog: self.grants.catalog.as_ref(),
            reader: &self.caller.reader,
            budgets: &self.budgets,
        }
    }

    pub(super) fn http_view(&mut self) -> HttpView<'_> {
        HttpView {
            remaining: self.remaining(),
            label: &self.label,
            grants: &self.grants,
        }
    }

    pub(super) fn permissions_view(&mut self) -> PermissionsView<'_> {
        PermissionsView {
            label: &self.label,
            grants: &self.grants,
            rights: &*self.caller.rights,
        }
    }

    pub(super) fn search_view(&mut self) -> SearchView<'_> {
        SearchView {
            label: &self.label,
            plugin: &self.kv.plugin,
            grants: &self.grants,
            portal: self.portal.as_ref(),
            rights: &self.caller.rights,
            budgets: &self.budgets,
        }
    }
}

impl HostState {
    pub(super) fn events_view(&mut self) -> EventsView<'_> {
        EventsView {
            label: &self.label,
            plugin: &self.kv.plugin,
            user: self.caller.principal.user_ref(),
            bus: &self.grants.events,
            granted: self.grants.capabilities.publish,
            published: &mut self.published,
        }
    }

    pub(super) fn models_view(&mut self) -> ModelsView<'_> {
        ModelsView {
            remaining: self.remaining(),
            label: &self.label,
            plugin: &self.kv.plugin,
            client: self.grants.models.as_ref(),
            granted: self.grants.capabilities.models,
            spent: &mut self.model_tokens,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and tables per instance, and remembers whether the
/// plugin ran into the memory cap so its trap can be reported as such.
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    pub(super) hit_memory_limit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refusing (rather than trapping) lets a plugin that handles allocation
        // failure carry on; one that does not traps, and we say why.
        if desired > self.memory_bytes {
            self.hit_memory_limit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Most bytes of stdout+stderr one call may log; the rest is counted and dropped.
const LOG_BUDGET: usize = 64 << 10;
/// Longest line logged as one record.
const MAX_LINE: usize = 4 << 10;

/// A plugin's stdout or stderr: complete lines go to the host log, tagged with
/// the plugin. Writes never fail, so a chatty plugin is never broken by its
/// logging; past [`LOG_BUDGET`] output is dropped and the drop is logged.
#[derive(Clone)]
struct LogStream {
    inner: Arc<Mutex<LineBuffer>>,
}

struct LineBuffer {
    label: Arc<str>,
    stream: Stream,
    partial: Vec<u8>,
    budget: usize,
    dropped: usize,
}

impl LogStream {
    fn new(label: Arc<str>, stream: Stream) -> Self {
        let buffer = LineBuffer {
            label,
            stream,
            partial: Vec::new(),
            budget: LOG_BUDGET,
            dropped: 0,
        };
        Self {
            inner: Arc::new(Mutex::new(buffer)),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        buffer.push(bytes);
    }
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(self.budget);
        self.budget -= take;
        self.dropped += bytes.len() - take;
        for &b in &bytes[..take] {
            if b == b'\n' || self.partial.len() >= MAX_LINE {
                self.emit();
                if b == b'\n' {
                    continue;
                }
            }
            self.partial.push(b);
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        let line = super::capabilities::log::escape(line.trim_end_matches('\r'));
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "plugin", plugin = %self.label, "stdout: {line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "plugin", plugin = %self.label, "stderr: {line}")
            }
        }
        self.partial.clear();
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
        if self.dropped > 0 {
            tracing::warn!(target: "plugin", plugin = %self.label,
                "dropped {} bytes of output over the {LOG_BUDGET}-byte budget per request", self.dropped);
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl Pollable for LogStream {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async {})
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
