//! Coordination across replicas: leases on periodic work and the change
//! feed. Single-node (SQLite) has the same semantics, so the host runs one
//! code path whatever the backend.
//!
//! Time is the database's clock, so replicas with skewed clocks still agree
//! on who holds a lease.

use std::time::Duration;

use serde_json::Value;

use crate::Result;

/// Feed topic of catalog entity changes (payload: `[Change, ...]`).
pub const CATALOG_TOPIC: &str = "catalog";

/// A lease on one named piece of periodic work (`refresh:<location id>`,
/// `tick:<plugin id>`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The work.
    pub name: String,
    /// Who holds it (a replica id).
    pub holder: String,
}

/// Work that must happen once per period, whichever replica does it.
///
/// A lease row holds: who holds the work and until when (the expiry, which
/// heartbeats push forward), and when it is next due. A replica that dies
/// stops heartbeating; its lease expires and another replica claims the
/// work within one lease period.
#[async_trait::async_trait]
pub trait Leases: Send + Sync {
    /// Claims `name` for `holder` for `ttl` if the work is due (never done,
    /// or its period has passed) and nobody else holds an unexpired lease
    /// on it. `None` when somebody else has it or it is not due.
    async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>>;
    /// Pushes the expiry forward; false when the lease was lost (expired
    /// and claimed by another holder, or released).
    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<bool>;
    /// The work is done: releases the lease and makes it due again after
    /// `next_in`. False when the lease had been lost meanwhile.
    async fn complete(&self, lease: &Lease, next_in: Duration) -> Result<bool>;
    /// Gives the lease up without doing the work: it is due at once.
    async fn release(&self, lease: &Lease) -> Result<()>;
    /// Makes `name` due now (an operator asked for it, or its settings
    /// changed).
    async fn make_due(&self, name: &str) -> Result<()>;
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Position in the feed; increasing.
    pub seq: i64,
    /// What it is about: [`CATALOG_TOPIC`], `plugins`, `licences`, `cache`.
    pub topic: String,
    /// Topic-specific JSON.
    pub payload: Value,
}

/// The change feed: an outbox table every replica follows.
///
/// Writers append (catalog stores append in the same transaction as their
/// write); followers read what comes after the last sequence number they
/// saw, woken by [`Feed::wait`] (PostgreSQL `LISTEN/NOTIFY`, or an
/// in-process signal single-node) with polling as the fallback.
#[async_trait::async_trait]
pub trait Feed: Send + Sync {
    /// Appends an event; returns its sequence number.
    async fn publish(&self, topic: &str, payload: &Value) -> Result<i64>;
    /// Events after `seq`, oldest first, at most `limit`.
    async fn read_after(&self, seq: i64, limit: usize) -> Result<Vec<FeedEvent>>;
    /// The newest sequence number (0 when empty).
    async fn head(&self) -> Result<i64>;
    /// Returns when events after `seq` may exist, or after `timeout`
    /// (whichever is first). Never fails: a lost notification channel
    /// degrades to the timeout.
    async fn wait(&self, seq: i64, timeout: Duration);
    /// Drops events older than `age`; returns how many.
    async fn prune(&self, age: Duration) -> Result<u64>;
}

/// Counters every replica adds to and reads the sum of (plugin event
/// deliveries, drops and failed batches): each replica counts locally and
/// adds what it counted since its last flush.
#[async_trait::async_trait]
pub trait Counters: Send + Sync {
    /// Adds each delta to its counter (a new counter starts at 0), all in
    /// one transaction.
    async fn add(&self, deltas: &[(String, i64)]) -> Result<()>;
    /// The counters whose names start with `prefix`, by name.
    async fn read(&self, prefix: &str) -> Result<Vec<(String, i64)>>;
}
