//! Who may start a call now: fair shares of the instance pool per plugin,
//! the global descriptor budget, and the pool that runs SQLite host calls.
//!
//! Every call (request, view, event batch, tick) first takes one of its
//! plugin's slots (`max_instances_per_plugin`, waiting in a short bounded
//! queue), then one of the pool's instances, then, for a plugin with granted
//! directories, its share of the descriptor budget. All three are released
//! when the call ends or is dropped (deadline, abandoned view).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::settings::PluginsConfig;

/// One plugin's share: its slots and how many calls wait for one.
pub(super) struct PluginSlots {
    slots: Arc<Semaphore>,
    max: usize,
    waiting: AtomicUsize,
    queue: usize,
}

impl PluginSlots {
    pub(super) fn new(config: &PluginsConfig) -> Self {
        let max = per_plugin(config);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            waiting: AtomicUsize::new(0),
            queue: config.queue_per_plugin as usize,
        }
    }

    /// Calls running now, the most that may, and calls waiting for a slot.
    pub(super) fn usage(&self) -> (usize, usize, usize) {
        let running = self.max.saturating_sub(self.slots.available_permits());
        (running, self.max, self.waiting.load(Ordering::Relaxed))
    }
}

/// How many calls one plugin may run at once: its configured share, never
/// more than half the pool (so the others always have room), at least one.
pub(super) fn per_plugin(config: &PluginsConfig) -> usize {
    let half = (config.max_concurrent_instances as usize / 2).max(1);
    (config.max_instances_per_plugin as usize).clamp(1, half)
}

/// The host-wide budgets.
pub(crate) struct Budgets {
    /// One permit per pooled instance: a call that cannot get one is refused
    /// as busy before wasmtime's pool would fail it.
    instances: Arc<Semaphore>,
    /// File descriptors calls of plugins with granted directories may hold.
    files: Arc<Semaphore>,
    /// Plugins' storage calls (kv, catalog) in flight at once.
    pub(super) host_calls: Arc<Semaphore>,
    queue_wait: Duration,
}

impl Budgets {
    pub(super) fn new(config: &PluginsConfig) -> Self {
        Self {
            instances: Arc::new(Semaphore::new(config.max_concurrent_instances as usize)),
            files: Arc::new(Semaphore::new(config.open_files_budget as usize)),
            host_calls: Arc::new(Semaphore::new(config.host_call_threads.max(1) as usize)),
            queue_wait: Duration::from_millis(config.queue_wait_ms),
        }
    }
}

/// What a running call holds; dropping it frees its slot, instance and
/// descriptors.
pub(super) struct Admitted {
    _slot: OwnedSemaphorePermit,
    _instance: OwnedSemaphorePermit,
    _files: Option<OwnedSemaphorePermit>,
}

/// Why a call was not admitted.
pub(super) enum Refused {
    /// The plugin's slots are taken and its queue is full (or the wait ran out).
    PluginFull,
    /// Every pooled instance is in use.
    PoolFull,
    /// The descriptor budget is spent.
    FilesSpent,
}

/// Lowers the waiting count even when the waiting future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budgets {
    /// Admits one call of a plugin with `slots`, holding `files` descriptors
    /// (0 when it has no granted directories). `background` calls (event
    /// delivery, ticks: one task each per plugin) wait for a slot as long as
    /// it takes instead of queueing.
    pub(super) async fn admit(
        &self,
        slots: &PluginSlots,
        files: u32,
        background: bool,
    ) -> Result<Admitted, Refused> {
        let slot = match slots.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) if background => slots
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Refused::PluginFull)?,
            Err(_) => {
                if slots.waiting.fetch_add(1, Ordering::Relaxed) >= slots.queue {
                    slots.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(Refused::PluginFull);
                }
                let _waiting = Waiting(&slots.waiting);
                match tokio::time::timeout(self.queue_wait, slots.slots.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(Refused::PluginFull),
                }
            }
        };
        let instance = self
            .instances
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::PoolFull)?;
        let files = match files {
            0 => None,
            n => Some(
                self.files
                    .clone()
                    .try_acquire_many_owned(n)
                    .map_err(|_| Refused::FilesSpent)?,
            ),
        };
        Ok(Admitted {
            _slot: slot,
            _instance: instance,
            _files: files,
        })
    }

    /// Runs a storage call of a plugin (kv, catalog) with at most
    /// `host_call_threads` of them in flight across plugins, so plugins
    /// cannot take every database connection from the portal's own pages.
    /// `call` names it in traces (`kv.get`, `catalog.query`, ...): each is a
    /// `host_call` span inside the plugin's `plugin_call`.
    pub(crate) async fn host_call<F: std::future::Future>(
        &self,
        call: &'static str,
        f: F,
    ) -> Result<F::Output, String> {
        let span = tracing::info_span!("host_call", otel.name = call, call);
        tracing::Instrument::instrument(
            async {
                let _permit = self.host_calls.acquire().await.map_err(|e| e.to_string())?;
                Ok(f.await)
            },
            span,
        )
        .await
    }
}
