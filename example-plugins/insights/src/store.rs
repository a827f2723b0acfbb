//! How usage is kept in key-value storage.
//!
//! - `s/<day>/<ms>-<random>`: a *shard*, one per event batch and day: the
//!   batch aggregated in memory ([`Day`] as JSON). A batch of hundreds of
//!   events costs one write, and concurrent batches never write the same key,
//!   so nothing is lost without read-modify-write.
//! - `r/<day>`: the day's *roll-up* ([`Rollup`]): shards merged by the tick,
//!   with the keys of the shards the last roll-up merged.
//!
//! A day's usage is its roll-up plus its shards not listed in the roll-up's
//! `merged`. The tick merges shards into roll-ups, writes the roll-up before
//! deleting the shards, and on its next run deletes without merging any
//! shard the roll-up already lists, so a tick stopped half-way never counts
//! a shard twice. Only the tick writes roll-ups, and the host runs one tick
//! of a plugin at a time. Days older than [`RETENTION_DAYS`] are deleted.
//!
//! Size: a roll-up keeps at most [`ROLLUP_CAP`] pages, entities, plugins and
//! searches (about 60 bytes each) plus every user (about 25 bytes), so a busy
//! day is well under 200 KB and 90 days fit the plugin's quota.

use std::{
    collections::BTreeMap,
    hash::{BuildHasher as _, Hash as _, Hasher as _, RandomState},
};

use callboard_sdk::{
    Event,
    events::day_of,
    kv::{self, KvError},
    log,
};
use serde::{Deserialize, Serialize};

use crate::model::Day;

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;
/// Days of usage kept.
pub const RETENTION_DAYS: u64 = 90;
/// Entries per counter map kept in a day's roll-up.
const ROLLUP_CAP: usize = 2_000;
/// Shards merged per tick at most, to stay well inside the call deadline;
/// the rest wait for the next tick (reads include them meanwhile).
const SHARDS_PER_TICK: usize = 2_000;
/// The host's cap on `list_keys`.
const LIST_LIMIT: u32 = 10_000;

/// A day's merged usage.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rollup {
    /// The usage.
    pub day: Day,
    /// Shards the last roll-up merged (deleted right after; any left are
    /// deleted without merging again).
    pub merged: Vec<String>,
}

fn shard_prefix(day: &str) -> String {
    format!("s/{day}/")
}

fn rollup_key(day: &str) -> String {
    format!("r/{day}")
}

/// The day a `s/<day>/...` or `r/<day>` key belongs to.
fn day_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("s/").or_else(|| key.strip_prefix("r/"))?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Aggregates a batch per day and writes one shard per day.
pub fn record(events: &[Event]) -> Result<(), KvError> {
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for event in events {
        days.entry(event.day()).or_default().add(event);
    }
    let first_ms = events.first().map_or(0, |e| e.at_ms);
    // Unique per batch: seeded from the host's random source in each fresh
    // instance, and over the batch's contents besides.
    let mut hasher = RandomState::new().build_hasher();
    for e in events {
        (&e.kind, e.at_ms, &e.user, &e.subject).hash(&mut hasher);
    }
    let nonce = hasher.finish();
    for (day, usage) in days {
        let key = format!("{}{first_ms:013}-{nonce:016x}", shard_prefix(&day));
        kv::set_json(&key, &usage)?;
    }
    Ok(())
}

/// A day's usage: its roll-up plus the shards not merged yet.
pub fn load_day(day: &str) -> Result<Day, KvError> {
    // Shards first, then the roll-up: a shard merged in between is then
    // listed in `merged` and skipped, never counted twice.
    let shards = kv::list_keys(&shard_prefix(day), LIST_LIMIT)?;
    let Rollup {
        day: mut usage,
        merged,
    } = read_json::<Rollup>(&rollup_key(day))?.unwrap_or_default();
    for key in shards.iter().filter(|k| !merged.contains(k)) {
        if let Some(shard) = read_json::<Day>(key)? {
            usage.merge(&shard);
        }
    }
    Ok(usage)
}

/// The last `count` days up to and including the day of `now_ms`, oldest first.
pub fn days_until(now_ms: u64, count: u64) -> Vec<String> {
    (0..count)
        .rev()
        .map(|back| day_of(now_ms.saturating_sub(back * DAY_MS)))
        .collect()
}

/// Merges pending shards into roll-ups and deletes days past retention.
pub fn compact(now_ms: u64) -> Result<(), KvError> {
    let oldest_kept = day_of(now_ms.saturating_sub((RETENTION_DAYS - 1) * DAY_MS));
    for prefix in ["r/", "s/"] {
        for key in kv::list_keys(prefix, LIST_LIMIT)? {
            if day_of_key(&key).is_some_and(|day| day < oldest_kept.as_str()) {
                kv::delete(&key)?;
            }
        }
    }
    let mut by_day: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in kv::list_keys("s/", LIST_LIMIT)?
        .into_iter()
        .take(SHARDS_PER_TICK)
    {
        if let Some(day) = day_of_key(&key) {
            by_day.entry(day.to_owned()).or_default().push(key);
        }
    }
    for (day, shards) in by_day {
        roll_up(&day, &shards)?;
    }
    Ok(())
}

fn roll_up(day: &str, shards: &[String]) -> Result<(), KvError> {
    let key = rollup_key(day);
    let mut rollup = read_json::<Rollup>(&key)?.unwrap_or_default();
    let (done, pending): (Vec<&String>, Vec<&String>) =
        shards.iter().partition(|s| rollup.merged.contains(s));
    // Left over by a tick stopped after writing the roll-up: already counted.
    for shard in done {
        kv::delete(shard)?;
    }
    if pending.is_empty() {
        return Ok(());
    }
    for shard in &pending {
        if let Some(usage) = read_json::<Day>(shard)? {
            rollup.day.merge(&usage);
        }
    }
    rollup.day.cap(ROLLUP_CAP);
    rollup.merged = pending.iter().map(|s| (*s).clone()).collect();
    kv::set_json(&key, &rollup)?;
    for shard in pending {
        kv::delete(shard)?;
    }
    Ok(())
}

/// A stored JSON value; one that does not parse is logged and treated as
/// missing, so one bad value never hides the rest of the data.
fn read_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    match kv::get_json(key) {
        Err(KvError::Json(why)) => {
            log::warn(&format!("ignoring unreadable value under {key:?}: {why}"));
            Ok(None)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_day() {
        assert_eq!(
            day_of_key("s/2026-01-02/0000000000001-ab"),
            Some("2026-01-02")
        );
        assert_eq!(day_of_key("r/2026-01-02"), Some("2026-01-02"));
        assert_eq!(day_of_key("x/2026-01-02"), None);
    }

    #[test]
    fn days_until_counts_back_from_today() {
        let days = days_until(951_782_400_000 + 3_600_000, 3);
        assert_eq!(days, ["2000-02-27", "2000-02-28", "2000-02-29"]);
    }
}
