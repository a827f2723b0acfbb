//! The event bus: usage and catalog events, delivered to subscribed plugins
//! through one bounded queue per plugin.
//!
//! Publishing never waits: it checks (without a lock) whether anyone listens
//! to the stream, and `try_send`s into each subscriber's queue; a full queue
//! drops the event and counts it. A delivery task per subscriber drains its
//! queue in batches into the plugin's `subscriber.on-events` export.

use std::borrow::Cow;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use callboard_store::{Counters, StoreError};
use serde::Serialize;
use tokio::sync::mpsc;

/// Which stream an event belongs to, as plugins subscribe to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Page and entity views, API calls, searches, plugin calls.
    Usage,
    /// Entities added, changed, removed.
    Catalog,
}

impl Stream {
    /// As written in manifests and grants.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Usage => "usage",
            Stream::Catalog => "catalog",
        }
    }
}

/// One event, as the host publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `page-view`, `entity-view`, `api-call`, `search`, `plugin-call`,
    /// `entity-added`, `entity-changed`, `entity-removed`, and plugins'
    /// own, `<plugin-id>.<kind>`.
    pub kind: Cow<'static, str>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who, when known.
    pub user: Option<String>,
    /// What it is about.
    pub subject: String,
    /// Details by kind.
    pub attributes: Vec<(Cow<'static, str>, String)>,
}

impl Event {
    /// An event happening now.
    pub fn now(
        kind: impl Into<Cow<'static, str>>,
        user: Option<String>,
        subject: impl Into<String>,
    ) -> Self {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            kind: kind.into(),
            at_ms,
            user,
            subject: subject.into(),
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute.
    pub fn with(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl std::fmt::Display,
    ) -> Self {
        self.attributes.push((name.into(), value.to_string()));
        self
    }

    /// Bytes the event holds, as counted against a queue's byte budget.
    pub fn size(&self) -> usize {
        EVENT_OVERHEAD
            + self.kind.len()
            + self.subject.len()
            + self.user.as_deref().map_or(0, str::len)
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// Cuts every free-text field to [`MAX_EVENT_FIELD`] bytes, so what a
    /// visitor sends (a path, a user header) cannot make events large.
    fn truncate_fields(&mut self) {
        truncate(&mut self.subject);
        if let Some(user) = &mut self.user {
            truncate(user);
        }
        for (_, value) in &mut self.attributes {
            truncate(value);
        }
    }
}

/// Longest subject, user or attribute value an event carries, in bytes.
pub const MAX_EVENT_FIELD: usize = 1024;

/// What an event costs beyond its text (the struct, the queue slot).
const EVENT_OVERHEAD: usize = 128;

fn truncate(s: &mut String) {
    if s.len() > MAX_EVENT_FIELD {
        let mut end = MAX_EVENT_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Delivery counters of one subscriber.
#[derive(Debug, Default, Serialize)]
pub struct EventStats {
    /// Events handed to the plugin in batches that completed.
    pub delivered: AtomicU64,
    /// Events dropped because the plugin's queue was full, or because the
    /// plugin was disabled (no valid licence) when they were due.
    pub dropped: AtomicU64,
    /// Batches whose call failed (trap, timeout, ...); their events are lost.
    pub failed_batches: AtomicU64,
    /// Events queued and not yet handed over, dropped or failed (what a
    /// shutdown waits for).
    #[serde(skip)]
    pub(super) unsettled: AtomicU64,
}

/// A snapshot of [`EventStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    /// See [`EventStats::delivered`].
    pub delivered: u64,
    /// See [`EventStats::dropped`].
    pub dropped: u64,
    /// See [`EventStats::failed_batches`].
    pub failed_batches: u64,
}

impl EventStats {
    /// The current counts.
    pub fn snapshot(&self) -> EventCounts {
        EventCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
        }
    }
}

/// One subscribed plugin's events on this replica.
#[derive(Debug, Clone, Copy)]
pub struct LocalEvents {
    /// Events in its queue now.
    pub queued: usize,
    /// What this replica counted.
    pub counts: EventCounts,
}

/// One subscribed plugin.
pub(super) struct Subscriber {
    pub(super) plugin: String,
    usage: bool,
    catalog: bool,
    tx: mpsc::Sender<Arc<Event>>,
    pub(super) stats: Arc<EventStats>,
    /// Bytes of events in the queue, against `byte_budget`.
    queued: Arc<QueuedBytes>,
}

/// Bytes of events waiting in one subscriber's queue: the publisher adds,
/// the delivery task subtracts what it took.
#[derive(Debug)]
pub(super) struct QueuedBytes {
    bytes: AtomicUsize,
    budget: usize,
}

impl QueuedBytes {
    /// Counts `size` more bytes, unless that passes the budget.
    fn reserve(&self, size: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(size)
                    .filter(|&after| after <= self.budget)
            })
            .is_ok()
    }

    /// Releases the bytes of events taken from the queue.
    pub(super) fn release(&self, events: &[Arc<Event>]) {
        let size: usize = events.iter().map(|e| e.size()).sum();
        self.bytes.fetch_sub(size, Ordering::AcqRel);
    }
}

impl Subscriber {
    fn listens(&self, stream: Stream) -> bool {
        match stream {
            Stream::Usage => self.usage,
            Stream::Catalog => self.catalog,
        }
    }
}

/// A new subscription's receiving end, for its delivery task.
pub(super) struct Subscription {
    pub(super) rx: mpsc::Receiver<Arc<Event>>,
    pub(super) stats: Arc<EventStats>,
    pub(super) queued: Arc<QueuedBytes>,
}

/// Where events are published.
#[derive(Default)]
pub struct EventBus {
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
    /// Counters by plugin id; kept across updates of a plugin.
    stats: Mutex<HashMap<String, Arc<EventStats>>>,
    /// Every replica's counts by plugin id, as last synced.
    shared: Mutex<HashMap<String, SharedCounts>>,
}

/// One plugin's counts across replicas, as [`EventBus::sync`] last saw
/// them, and this replica's own counts that were part of them.
#[derive(Debug, Clone, Copy, Default)]
struct SharedCounts {
    total: EventCounts,
    flushed: EventCounts,
}

/// Prefix of the shared counters: `events:<plugin id>:<field>`.
const COUNTER_PREFIX: &str = "events:";

impl EventCounts {
    fn fields(self) -> [(&'static str, u64); 3] {
        [
            ("delivered", self.delivered),
            ("dropped", self.dropped),
            ("failed_batches", self.failed_batches),
        ]
    }

    fn set(&mut self, field: &str, value: u64) {
        match field {
            "delivered" => self.delivered = value,
            "dropped" => self.dropped = value,
            "failed_batches" => self.failed_batches = value,
            _ => {}
        }
    }

    /// `self + (now - then)`, field by field.
    fn advanced(self, now: Self, then: Self) -> Self {
        let step = |total: u64, now: u64, then: u64| total + now.saturating_sub(then);
        Self {
            delivered: step(self.delivered, now.delivered, then.delivered),
            dropped: step(self.dropped, now.dropped, then.dropped),
            failed_batches: step(self.failed_batches, now.failed_batches, then.failed_batches),
        }
    }
}

impl EventBus {
    /// Whether anyone listens to `stream` (cheap: publishers call it before
    /// building an event).
    pub fn wants(&self, stream: Stream) -> bool {
        self.subscribers.load().iter().any(|s| s.listens(stream))
    }

    /// Queues `event` for every subscriber of `stream`. Never waits.
    pub fn publish(&self, stream: Stream, mut event: Event) {
        event.truncate_fields();
        let size = event.size();
        let event = Arc::new(event);
        for s in self.subscribers.load().iter().filter(|s| s.listens(stream)) {
            if !s.queued.reserve(size) {
                s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Counted before it is queued, so a drain never sees it settled
            // before it was counted.
            s.stats.unsettled.fetch_add(1, Ordering::AcqRel);
            if s.tx.try_send(event.clone()).is_err() {
                s.stats.unsettled.fetch_sub(1, Ordering::AcqRel);
                s.queued.bytes.fetch_sub(size, Ordering::AcqRel);
                s.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every event queued so far has been delivered (or
    /// dropped, or its batch failed), or until `deadline`. True when none
    /// is left. Shutdown calls it so usage events reach plugins before exit.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let pending = self
                .subscribers
                .load()
                .iter()
                .any(|s| s.stats.unsettled.load(Ordering::Acquire) > 0);
            if !pending {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The counters of plugin `id` over every replica: the shared counts
    /// as last synced plus what this replica counted since. `None` if it
    /// never subscribed here and no replica counted anything for it.
    pub fn stats(&self, id: &str) -> Option<EventCounts> {
        let local = {
            let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.get(id).map(|s| s.snapshot())
        };
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        match (local, shared) {
            (Some(now), Some(s)) => Some(s.total.advanced(now, s.flushed)),
            (Some(now), None) => Some(now),
            (None, Some(s)) => Some(s.total),
            (None, None) => None,
        }
    }

    /// Adds what this replica counted since the last sync to the shared
    /// counters, then reads every replica's sums back (what [`Self::stats`]
    /// answers from). An add that fails is retried whole at the next sync
    /// (one committed whose answer was lost would count twice).
    pub async fn sync(&self, counters: &dyn Counters) -> Result<(), StoreError> {
        let locals: Vec<(String, EventCounts)> = {
            let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats
                .iter()
                .map(|(id, s)| (id.clone(), s.snapshot()))
                .collect()
        };
        let mut deltas = Vec::new();
        {
            let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            for (id, now) in &locals {
                let then = shared.get(id).map(|s| s.flushed).unwrap_or_default();
                for ((field, now), (_, then)) in now.fields().into_iter().zip(then.fields()) {
                    if now > then {
                        let delta = i64::try_from(now - then).unwrap_or(i64::MAX);
                        deltas.push((format!("{COUNTER_PREFIX}{id}:{field}"), delta));
                    }
                }
            }
        }
        if !deltas.is_empty() {
            counters.add(&deltas).await?;
        }
        {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            for (id, now) in &locals {
                let entry = shared.entry(id.clone()).or_default();
                entry.total = entry.total.advanced(*now, entry.flushed);
                entry.flushed = *now;
            }
        }
        let read = counters.read(COUNTER_PREFIX).await?;
        let mut totals: HashMap<String, EventCounts> = HashMap::new();
        for (name, value) in read {
            if let Some((id, field)) = name
                .strip_prefix(COUNTER_PREFIX)
                .and_then(|rest| rest.rsplit_once(':'))
            {
                totals
                    .entry(id.to_owned())
                    .or_default()
                    .set(field, u64::try_from(value).unwrap_or(0));
            }
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        for (id, total) in totals {
            // What this replica counted between the add and this read is
            // not in `total` yet: keep `flushed` as of the add.
            shared.entry(id).or_default().total = total;
        }
        Ok(())
    }

    /// Makes plugin `id` subscribe to `streams` (replacing what it had), and
    /// returns the receiving end of its new queue when it has to be drained
    /// by a new delivery task; `None` when it subscribes to nothing or its
    /// subscription is unchanged.
    pub(super) fn subscribe(
        &self,
        id: &str,
        streams: &[String],
        capacity: usize,
        byte_budget: usize,
    ) -> Option<Subscription> {
        let usage = streams.iter().any(|s| s == Stream::Usage.as_str());
        let catalog = streams.iter().any(|s| s == Stream::Catalog.as_str());
        let current = self.subscribers.load();
        if let Some(existing) = current.iter().find(|s| s.plugin == id)
            && existing.usage == usage
            && existing.catalog == catalog
            && !existing.tx.is_closed()
        {
            return None;
        }
        let mut next: Vec<_> = current.iter().filter(|s| s.plugin != id).cloned().collect();
        if !usage && !catalog {
            self.subscribers.store(Arc::new(next));
            return None;
        }
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_default()
            .clone();
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let queued = Arc::new(QueuedBytes {
            bytes: AtomicUsize::new(0),
            budget: byte_budget,
        });
        next.push(Arc::new(Subscriber {
            plugin: id.to_owned(),
            usage,
            catalog,
            tx,
            stats: stats.clone(),
            queued: queued.clone(),
        }));
        self.subscribers.store(Arc::new(next));
        Some(Subscription { rx, stats, queued })
    }

    /// This replica's own view of each subscribed plugin (for metrics, which
    /// Prometheus sums over replicas): events queued now and counted here.
    pub fn local(&self) -> HashMap<String, LocalEvents> {
        let counts = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        self.subscribers
            .load()
            .iter()
            .map(|s| {
                let queued = s.tx.max_capacity().saturating_sub(s.tx.capacity());
                let counts = counts
                    .get(&s.plugin)
                    .map(|c| c.snapshot())
                    .unwrap_or_default();
                (s.plugin.clone(), LocalEvents { queued, counts })
            })
            .collect()
    }

    /// Ends plugin `id`'s subscription; its delivery task stops once the
    /// queue is drained.
    pub(super) fn unsubscribe(&self, id: &str) {
        let current = self.subscribers.load();
        if current.iter().any(|s| s.plugin == id) {
            let next: Vec<_> = current.iter().filter(|s| s.plugin != id).cloned().collect();
            self.subscribers.store(Arc::new(next));
        }
    }
}
