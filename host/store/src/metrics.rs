//! Metric names the stores and the catalog emit through the `metrics`
//! facade (a no-op until the host installs a recorder).

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use metrics::{describe_gauge, describe_histogram, gauge};

/// How long a database call waited for a pooled connection (PostgreSQL) or
/// a slot of the bounded blocking pool (SQLite).
pub const DB_POOL_WAIT: &str = "callboard_db_pool_wait_seconds";
/// Leases this replica holds now, by lease kind.
pub const LEASES_HELD: &str = "callboard_leases_held";

/// The help text of the stores' series.
pub fn describe() {
    describe_histogram!(
        DB_POOL_WAIT,
        metrics::Unit::Seconds,
        "Time database calls waited for a pooled connection or a slot of the blocking pool."
    );
    describe_gauge!(
        FEED_LAG,
        "Events on the change feed a follower of this replica has not read yet, by follower \
         (catalog, plugins, access, licences)."
    );
    describe_gauge!(
        LEASES_HELD,
        "Leases this replica holds now, by kind (catalog_refresh, plugin_tick, license_check)."
    );
}

/// How far behind the change feed's head each follower is, in events.
pub const FEED_LAG: &str = "callboard_feed_lag_events";

/// Where each follower of the change feed has read to, in this process.
static POSITIONS: Mutex<BTreeMap<&'static str, i64>> = Mutex::new(BTreeMap::new());

/// Follower `name` has read the feed up to `seq`.
pub fn feed_position(name: &'static str, seq: i64) {
    POSITIONS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name, seq);
}

/// Each follower's position (what the host turns into [`FEED_LAG`] at
/// scrape time, against the head).
pub fn feed_positions() -> Vec<(&'static str, i64)> {
    POSITIONS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(name, seq)| (*name, *seq))
        .collect()
}

/// Counts a lease of `kind` as held while it lives.
#[derive(Debug)]
pub struct LeaseHeld(&'static str);

impl LeaseHeld {
    /// A lease of `kind` was claimed.
    pub fn new(kind: &'static str) -> Self {
        gauge!(LEASES_HELD, "kind" => kind).increment(1.0);
        Self(kind)
    }
}

impl Drop for LeaseHeld {
    fn drop(&mut self) {
        gauge!(LEASES_HELD, "kind" => self.0).decrement(1.0);
    }
}
