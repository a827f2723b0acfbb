//! The catalog's metrics (through the `metrics` facade; the host installs
//! the recorder and reads entity counts at scrape time).

use std::{
    collections::HashSet,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// One location read and stored.
pub const INGESTION_DURATION: &str = "callboard_catalog_ingestion_duration_seconds";
/// One refresh pass over every due location.
pub const REFRESH_DURATION: &str = "callboard_catalog_refresh_duration_seconds";
/// When each location was last refreshed without failing.
pub const LAST_SUCCESS: &str = "callboard_catalog_location_last_success_timestamp_seconds";
/// Problems the last refresh of each location found.
pub const PROBLEMS: &str = "callboard_catalog_location_problems";
/// Location refreshes that failed.
pub const FAILURES: &str = "callboard_catalog_refresh_failures_total";

/// Most locations that get a label of their own; the rest share `other`,
/// so a catalog with many registered locations cannot grow the series
/// without bound.
const MAX_LOCATIONS: usize = 100;

static LOCATIONS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The help text of the catalog's series.
pub fn describe() {
    describe_histogram!(
        INGESTION_DURATION,
        metrics::Unit::Seconds,
        "Time to read one location and store its entities."
    );
    describe_histogram!(
        REFRESH_DURATION,
        metrics::Unit::Seconds,
        "Time of one refresh pass over every location due."
    );
    describe_gauge!(
        LAST_SUCCESS,
        "Unix time of the last refresh of a location that did not fail, by location \
         (type:target; the first 100 locations, the rest as other)."
    );
    describe_gauge!(
        PROBLEMS,
        "Problems (invalid entities, unreadable files) the last refresh of a location found."
    );
    describe_counter!(FAILURES, "Location refreshes that failed as a whole.");
}

/// The label of location `origin` (`type:target`).
fn location_label(origin: &str) -> String {
    let mut seen = LOCATIONS.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = seen.get_or_insert_with(HashSet::new);
    if seen.contains(origin) {
        return origin.to_owned();
    }
    if seen.len() < MAX_LOCATIONS {
        seen.insert(origin.to_owned());
        return origin.to_owned();
    }
    "other".to_owned()
}

/// Records one location's refresh.
pub(crate) fn location_refreshed(origin: &str, ok: bool, problems: usize, took: Duration) {
    histogram!(INGESTION_DURATION).record(took.as_secs_f64());
    let location = location_label(origin);
    gauge!(PROBLEMS, "location" => location.clone()).set(problems as f64);
    if ok {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        gauge!(LAST_SUCCESS, "location" => location).set(now.as_secs_f64());
    } else {
        counter!(FAILURES).increment(1);
    }
}

/// Records one refresh pass.
pub(crate) fn pass_finished(took: Duration) {
    histogram!(REFRESH_DURATION).record(took.as_secs_f64());
}
