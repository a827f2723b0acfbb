//! Licence re-checks, once per period in total. Whichever replica claims
//! the `licences` lease re-checks every licence; when a plugin's licence
//! state changed (expired, renewed, revoked), it appends a `licences` feed
//! event and every replica re-checks its own state at once, so all of them
//! switch together instead of each at its next period. Single-node
//! (SQLite) runs the same code: it always wins the lease.
//!
//! Expiry is also enforced on every call (`LivePlugin::admit`), so between
//! checks a plugin past its licence answers no request on any replica; the
//! check is what updates the state the admin API and pages show, and picks
//! up a licence file changed on disk.

use std::sync::Arc;
use std::time::Duration;

use callboard_store::{Feed, Lease, Leases};
use serde_json::json;

use super::registry::PluginHost;

/// Feed topic of licence changes (payload: `{"plugins": [id, ...]}`).
const LICENCES_TOPIC: &str = "licences";

/// The lease's name.
const LEASE_NAME: &str = "licences";

/// How long the holder keeps the lease: far beyond a check's duration, so
/// only a dead replica loses it; another then checks within this period.
const LEASE_TTL: Duration = Duration::from_secs(30);

/// Feed events read at once.
const FEED_BATCH: usize = 256;

impl PluginHost {
    /// Re-checks licences every `plugins.license_check_secs` across
    /// replicas, and applies the changes other replicas found, until the
    /// task is aborted.
    pub async fn run_license_checks(self, feed: Arc<dyn Feed>) {
        let every = Duration::from_secs(self.settings().plugins.license_check_secs.max(1));
        // Look for a due check often enough to keep the period.
        let poll = every.min(Duration::from_secs(5));
        let leases = self.inner.leases.clone();
        let mut seq = feed.head().await.unwrap_or(0);
        let mut failing = false;
        loop {
            match leases
                .claim(LEASE_NAME, &self.inner.replica, LEASE_TTL)
                .await
            {
                Ok(Some(lease)) => {
                    let _held = callboard_store::metrics::LeaseHeld::new("license_check");
                    failing = false;
                    // What the previous holder found is applied first, so a
                    // change is announced once, not again by this replica.
                    seq = self.apply_feed(&*feed, seq).await;
                    self.check_as_holder(&*leases, &*feed, &lease, every).await;
                }
                Ok(None) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!("licence checks: claiming the check failed: {e}");
                }
                Err(_) => {}
            }
            // Until the next claim: apply what other replicas found.
            let deadline = tokio::time::Instant::now() + poll;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                feed.wait(seq, left).await;
                seq = self.apply_feed(&*feed, seq).await;
            }
        }
    }

    /// The lease holder's check: re-checks, tells every replica what
    /// changed, and makes the next check due after `every`.
    async fn check_as_holder(
        &self,
        leases: &dyn Leases,
        feed: &dyn Feed,
        lease: &Lease,
        every: Duration,
    ) {
        let changed = self.check_licenses_off_thread().await;
        if !changed.is_empty() {
            tracing::info!(
                plugins = ?changed,
                "licence check: a licence changed; every replica applies it"
            );
            if let Err(e) = feed
                .publish(LICENCES_TOPIC, &json!({ "plugins": changed }))
                .await
            {
                tracing::warn!(
                    "licence check: other replicas apply the change at their next event: {e}"
                );
            }
        }
        if let Err(e) = leases.complete(lease, every).await {
            tracing::warn!("licence check: completing the check failed: {e}");
        }
    }

    /// Reads the feed after `seq`; re-checks this replica's licences if
    /// another replica announced a change. Returns the new position.
    async fn apply_feed(&self, feed: &dyn Feed, mut seq: i64) -> i64 {
        loop {
            let events = match feed.read_after(seq, FEED_BATCH).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!("licence checks: reading the change feed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return seq;
                }
            };
            let Some(last) = events.last() else {
                return seq;
            };
            seq = last.seq;
            callboard_store::metrics::feed_position("licences", seq);
            if events.iter().any(|e| e.topic == LICENCES_TOPIC) {
                self.check_licenses_off_thread().await;
            }
            if events.len() < FEED_BATCH {
                return seq;
            }
        }
    }

    /// [`PluginHost::check_licenses`] on the blocking pool (it reads files
    /// and verifies signatures).
    async fn check_licenses_off_thread(&self) -> Vec<String> {
        let host = self.clone();
        tokio::task::spawn_blocking(move || host.check_licenses())
            .await
            .unwrap_or_default()
    }
}
