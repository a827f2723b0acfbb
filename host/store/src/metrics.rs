//! Metric names the stores and the catalog emit through the `metrics`
//! facade (a no-op until the host installs a recorder).

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
        LEASES_HELD,
        "Leases this replica holds now, by kind (catalog_refresh, plugin_tick, license_check)."
    );
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
