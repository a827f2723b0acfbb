//! The call path: one request, one fresh instance, within the plugin's
//! deadline and limits; traps become [`CallError`]s naming `id@version`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use wasmtime::{Store, UpdateDeadline};

use super::{
    admission::{Admitted, Refused},
    capabilities::kv::{KvAccess, Quota},
    events::Event,
    manifest::SlotKind,
    portal::Caller,
    registry::{LivePlugin, PluginHost},
    state::HostState,
};
pub use callboard_plugin_contract::ui::{Outcome, View};

/// A request for a plugin, in host terms.
#[derive(Debug, Clone, Default)]
pub struct PluginRequest {
    /// Who the call runs for: the principal the plugin is told (API 0.4+),
    /// what it may read of the catalog, and its rights.
    pub caller: Caller,
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

/// Which catalog entities a call may read through the `catalog` interface
/// (on top of the plugin's grant): a request's or view's are the person's
/// who triggered it, event handlers' and ticks' the plugin's own service
/// principal's.
///
/// The default, everything, is for callers outside the portal's routes
/// (benchmarks, tests); every route sets it from the request's identity.
#[derive(Debug, Clone, Default)]
pub enum CatalogReader {
    /// Every entity.
    #[default]
    All,
    /// The entities this predicate selects (the policy's conditions).
    Only(Arc<callboard_catalog::Predicate>),
}

impl CatalogReader {
    /// Nothing at all.
    pub fn nothing() -> Self {
        Self::Only(Arc::new(callboard_catalog::Predicate::Any(Vec::new())))
    }

    /// `predicate` narrowed to what this reader reaches.
    pub fn narrow(
        &self,
        predicate: Option<callboard_catalog::Predicate>,
    ) -> Option<callboard_catalog::Predicate> {
        match (self, predicate) {
            (Self::All, p) => p,
            (Self::Only(only), None) => Some((**only).clone()),
            (Self::Only(only), Some(p)) => Some(p.and((**only).clone())),
        }
    }
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
    /// `id@version` of the plugin that answered.
    pub served_by: Arc<str>,
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
    /// A commercial plugin without a valid licence.
    #[error("plugin {plugin} is disabled: {reason}")]
    Unlicensed {
        /// `id@version`.
        plugin: Arc<str>,
        /// e.g. "licence for insights expired on 2026-01-31 00:00 UTC".
        reason: String,
    },
    /// The route needs a licence feature the licence lacks.
    #[error("plugin {plugin}: this route needs the licence feature \"{feature}\"")]
    NotEntitled {
        /// `id@version`.
        plugin: Arc<str>,
        /// The missing feature.
        feature: String,
    },
    /// Every instance slot is in use.
    #[error("plugin {plugin} is at capacity; try again shortly")]
    Busy {
        /// `id@version`.
        plugin: Arc<str>,
    },
}

impl CallError {
    /// The error's kind, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::RequestTooLarge { .. } => "too_large",
            Self::Timeout { .. } => "deadline",
            Self::MemoryLimit { .. } => "memory",
            Self::Trap { .. } => "trap",
            Self::BadResponse { .. } => "invalid_response",
            Self::Unlicensed { .. } | Self::NotEntitled { .. } => "denied",
            Self::Busy { .. } => "busy",
        }
    }
}

/// Runs one call of `plugin` with a fresh store: admitted first (its fair
/// share, the pool, the descriptor budget), then the whole call, instantiate
/// included, under a wall-clock deadline on top of the epoch deadline. The
/// epoch stops a plugin that computes; the wall clock stops one that waits
/// in a host call (a WASI sleep or poll), which no epoch check reaches.
/// Dropping the call's future (deadline, abandoned view) drops its store and
/// frees its slots. `|store| body` names the store for the body.
macro_rules! guarded {
    ($host:expr, $plugin:expr, $kind:expr, $background:expr, $caller:expr, |$store:ident| $body:expr) => {{
        let plugin: &LivePlugin = &$plugin;
        let kind: &'static str = $kind;
        let started = Instant::now();
        let span = tracing::info_span!(
            "plugin_call",
            otel.name = %format_args!("plugin {} {kind}", plugin.label),
            plugin = %plugin.label,
            kind,
        );
        let result = tracing::Instrument::instrument(
            async {
                let _admitted = $host.admit_call(plugin, $background).await?;
                let mut $store = $host.new_store(plugin, $caller);
                let wall = plugin.limits.timeout() + WALL_CLOCK_GRACE;
                let outcome = tokio::time::timeout(wall, async { $body }).await;
                match outcome {
                    Ok(result) => result.map_err(|e| classify(plugin, &$store, &e)),
                    Err(_) => Err(timed_out(plugin, "while waiting in a host call")),
                }
            },
            span,
        )
        .await;
        crate::telemetry::metrics::plugin_call(
            &plugin.label,
            kind,
            result.as_ref().err().map(CallError::kind),
            started.elapsed(),
        );
        result
    }};
}

/// Calls one export of plugin `id`, which must have it (`has`: its API
/// version's test, `what`: the export, for the error). `|linked, store|`
/// names the linked component and the store for the call expression (a
/// future).
macro_rules! call_export {
    ($host:expr, $id:expr, ($has:expr, $what:expr), $kind:expr, $background:expr, $caller:expr, |$linked:ident, $store:ident| $call:expr) => {{
        let plugin = $host.live_with($id, $has, $what)?;
        let $linked = plugin.loaded.pre.clone();
        guarded!($host, plugin, $kind, $background, $caller, |$store| $call
            .await)
    }};
}

impl PluginHost {
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
        let refused = |error: CallError| {
            crate::telemetry::metrics::plugin_refused(&plugin.label, "request", error.kind());
            error
        };
        if request.body.len() > limits.max_request_body {
            return Err(refused(CallError::RequestTooLarge {
                plugin: plugin.label.clone(),
                size: request.body.len(),
                limit: limits.max_request_body,
            }));
        }

        plugin.admit(&request.path).map_err(refused)?;
        let caller = request.caller.clone();
        let linked = plugin.loaded.pre.clone();
        let response = guarded!(self, plugin, "request", false, caller, |store| linked
            .handle(&mut store, request)
            .await)?;
        let mut response = check_response(&plugin, response).inspect_err(|error| {
            crate::telemetry::metrics::plugin_error(&plugin.label, error.kind());
        })?;
        response.served_by = plugin.label.clone();
        Ok(response)
    }
}

/// The wall clock lets the epoch deadline (checked every tick) report a
/// computing plugin first; it catches what the epoch cannot.
const WALL_CLOCK_GRACE: Duration = Duration::from_millis(100);

fn timed_out(plugin: &LivePlugin, why: &str) -> CallError {
    tracing::warn!(plugin = %plugin.label, "stopped at its deadline of {} ms {why}", plugin.limits.timeout_ms);
    CallError::Timeout {
        plugin: plugin.label.clone(),
        deadline: plugin.limits.timeout(),
    }
}

impl PluginHost {
    /// Takes the plugin's share, an instance and its descriptors for one call.
    async fn admit_call(
        &self,
        plugin: &LivePlugin,
        background: bool,
    ) -> Result<Admitted, CallError> {
        let files = plugin.grants.descriptors();
        self.inner
            .budgets
            .admit(&plugin.slots, files, background)
            .await
            .map_err(|refused| {
                let (why, reason) = match refused {
                    Refused::PluginFull => (
                        "all its slots are in use and its queue is full",
                        "plugin_full",
                    ),
                    Refused::PoolFull => ("every instance of the pool is in use", "pool_full"),
                    Refused::FilesSpent => ("the file descriptor budget is spent", "files_spent"),
                };
                crate::telemetry::metrics::plugin_rejected(&plugin.label, reason);
                tracing::warn!(plugin = %plugin.label, "call refused: {why}");
                CallError::Busy {
                    plugin: plugin.label.clone(),
                }
            })
    }

    /// A fresh store for one call into `plugin`: its capabilities, its
    /// licence, its limits, and the epoch deadline.
    fn new_store(&self, plugin: &LivePlugin, caller: Caller) -> Store<HostState> {
        let limits = plugin.limits;
        let kv = KvAccess {
            store: self.inner.kv.clone(),
            plugin: plugin.id.clone(),
            granted: plugin.capabilities.kv,
            quota: Quota {
                bytes: limits.kv_quota_bytes,
                max_value_bytes: limits.kv_max_value_bytes,
            },
        };
        let mut store = Store::new(
            &self.inner.engine,
            HostState::new(
                plugin.label.clone(),
                &limits,
                kv,
                plugin.license_state(),
                plugin.grants.clone(),
                (caller, self.inner.portal.get().cloned()),
                self.inner.budgets.clone(),
            ),
        );
        store.limiter(|s| &mut s.limiter);
        // Bounds what one transfer from the plugin (an export's result, a host
        // call's arguments) makes the host copy, checked by wasmtime as it
        // lifts, before each copy: list elements that all point at the same
        // guest bytes cannot multiply past it.
        store.set_hostcall_fuel(transfer_budget(&limits));
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
        store
    }

    /// The live plugin `id` if it is licensed and its API version has
    /// `what` (`has`).
    fn live_with(
        &self,
        id: &str,
        has: fn(super::ApiVersion) -> bool,
        what: &str,
    ) -> Result<Arc<LivePlugin>, CallError> {
        let plugin = self
            .inner
            .live
            .load()
            .get(id)
            .cloned()
            .ok_or_else(|| CallError::NotFound(id.to_owned()))?;
        plugin.admit("")?;
        if !has(plugin.loaded.api) {
            return Err(CallError::BadResponse {
                plugin: plugin.label.clone(),
                reason: format!(
                    "is built against plugin API {}, which has no {what}",
                    plugin.loaded.api
                ),
            });
        }
        Ok(plugin)
    }

    /// Asks plugin `id` to render a view; `Ok(None)` when it has nothing to
    /// show. The plugin's own error message comes back as `Err(Ok(message))`.
    pub async fn render_view(
        &self,
        id: &str,
        request: ViewRequest,
    ) -> Result<Result<Option<View>, String>, CallError> {
        call_export!(
            self,
            id,
            (super::ApiVersion::has_views, "views"),
            "view",
            false,
            request.caller.clone(),
            |linked, store| linked.render(&mut store, &request)
        )
    }

    /// Runs one of plugin `id`'s actions (a button or form in its view)
    /// for the person who sent it. The plugin's own error comes back as
    /// `Ok(Err(message))`.
    pub async fn run_action(
        &self,
        id: &str,
        request: ActionRequest,
    ) -> Result<Result<Outcome, String>, CallError> {
        call_export!(
            self,
            id,
            (super::ApiVersion::has_actions, "actions"),
            "action",
            false,
            request.view.caller.clone(),
            |linked, store| linked.run_action(&mut store, &request)
        )
    }

    /// Hands a batch of events to plugin `id`'s `on-events`.
    pub(super) async fn deliver_events(
        &self,
        id: &str,
        events: &[Arc<Event>],
    ) -> Result<(), CallError> {
        call_export!(
            self,
            id,
            (super::ApiVersion::has_views, "events"),
            "events",
            true,
            self.service_caller(id),
            |linked, store| linked.on_events(&mut store, events)
        )
    }

    /// Runs plugin `id`'s scheduled task once.
    pub(super) async fn tick(&self, id: &str, now_ms: u64) -> Result<(), CallError> {
        call_export!(
            self,
            id,
            (super::ApiVersion::has_views, "ticks"),
            "tick",
            true,
            self.service_caller(id),
            |linked, store| linked.on_tick(&mut store, now_ms)
        )
    }

    /// Plugin `id`'s own service principal, as the portal resolves it.
    fn service_caller(&self, id: &str) -> Caller {
        match self.inner.portal.get() {
            Some(portal) => portal.service(id),
            None => Caller {
                principal: super::portal::Principal::plugin(id),
                ..Caller::default()
            },
        }
    }

    /// Attaches the portal (once, at start-up): service principals (the
    /// access policy's decision for `plugin:<id>`) and the search index.
    pub fn attach_portal(&self, portal: Arc<dyn super::portal::Portal>) {
        let _ = self.inner.portal.set(portal);
    }
}

/// What the host asks a plugin view for.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    /// Who is looking: what the view may read of the catalog is what they may.
    pub caller: Caller,
    /// The slot.
    pub slot: SlotKind,
    /// Entity slots: the entity as JSON.
    pub entity: Option<String>,
    /// Pages: the path below the plugin's page root.
    pub path: String,
    /// Pages: the raw query string.
    pub query: String,
}

/// What the host asks a plugin action for.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The action's name.
    pub name: String,
    /// The values the browser sent, less the CSRF token.
    pub values: Vec<(String, String)>,
    /// The view the button or form was on, and who pressed it.
    pub view: ViewRequest,
}

/// Most bytes one transfer from a plugin to the host may carry: the response
/// body cap plus 1 MiB for headers and the rest.
fn transfer_budget(limits: &super::settings::Limits) -> usize {
    limits.max_response_body.saturating_add(1 << 20)
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
    // wasmtime's message for a spent transfer budget (its error type is private).
    if format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted") {
        tracing::warn!(plugin = %label, "sent more than its transfer budget: {error:#}");
        return CallError::BadResponse {
            plugin: label,
            reason: format!(
                "it sent more than {} bytes to the host at once",
                transfer_budget(&plugin.limits)
            ),
        };
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

/// Most headers a plugin response may carry.
pub const MAX_RESPONSE_HEADERS: usize = 100;
/// Most bytes of header names and values a plugin response may carry.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;

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
    if response.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(bad(format!(
            "{} headers are over the limit of {MAX_RESPONSE_HEADERS}",
            response.headers.len()
        )));
    }
    let header_bytes: usize = response
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if header_bytes > MAX_RESPONSE_HEADER_BYTES {
        return Err(bad(format!(
            "{header_bytes} bytes of headers are over the limit of {MAX_RESPONSE_HEADER_BYTES}"
        )));
    }
    Ok(response)
}
