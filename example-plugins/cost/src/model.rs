//! The cost model: billing rows summed per component, service and month.
//! Built from the source, cached in key-value storage under [`MODEL_KEY`] and
//! rebuilt when the source's fingerprint changes or the model is older than
//! the `refresh_secs` setting.

use std::collections::BTreeMap;

use callboard_sdk::{config, kv, log};
use serde::{Deserialize, Serialize};

use crate::format::Month;
use crate::source::{Rows, Source, SourceError};

/// Where the model is cached.
const MODEL_KEY: &str = "model";
/// Where the last transient failure to read the source is remembered.
const FAILURE_KEY: &str = "failure";
/// Bumped whenever [`Model`]'s shape changes, so old caches are rebuilt.
const VERSION: u32 = 1;
/// How long a transient failure (billing API down) is remembered before the
/// source is asked again, so an unreachable API does not slow every view.
const FAILURE_TTL_MS: u64 = 60_000;
/// Default of the `refresh_secs` setting.
const DEFAULT_REFRESH_SECS: u64 = 600;
/// Default of the `anomaly_min_usd` setting.
const DEFAULT_ANOMALY_MIN_USD: u64 = 100;

/// Monthly costs per component and service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    version: u32,
    fingerprint: String,
    /// When the model was built, in milliseconds since the Unix epoch.
    pub built_ms: u64,
    /// Where the costs came from, for people.
    pub source: String,
    /// The month of index 0 of every series.
    pub first: Month,
    /// How many months every series holds; the last is the latest complete month.
    pub len: usize,
    /// Component key → service → cents per month.
    pub components: BTreeMap<String, BTreeMap<String, Vec<i64>>>,
    /// Cents per month of rows without a component.
    pub unallocated: Vec<i64>,
    /// Rows that could not be read, and the first reason.
    pub skipped: u64,
    /// Where and why the first unreadable row was skipped.
    pub first_skipped: Option<String>,
    /// Set when this is an old model shown because refreshing it failed.
    #[serde(skip)]
    pub stale: Option<String>,
}

/// What a plugin setting says, with defaults.
pub struct Settings {
    /// Seconds a model stays fresh.
    pub refresh_secs: u64,
    /// Smallest rise, in cents, that can be an anomaly.
    pub anomaly_min_cents: i64,
}

impl Settings {
    /// Reads the settings; malformed numbers fall back to the defaults (and are logged).
    pub fn read() -> Self {
        fn number(key: &str, default: u64) -> u64 {
            match config::get(key) {
                None => default,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    log::warn(&format!(
                        "setting {key} = {v:?} is not a whole number; using {default}"
                    ));
                    default
                }),
            }
        }
        Self {
            refresh_secs: number("refresh_secs", DEFAULT_REFRESH_SECS),
            anomaly_min_cents: i64::try_from(number("anomaly_min_usd", DEFAULT_ANOMALY_MIN_USD))
                .unwrap_or(i64::MAX / 100)
                .saturating_mul(100),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Failure {
    fingerprint: String,
    at_ms: u64,
    message: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The current model: the cached one while fresh, else rebuilt (and cached).
/// When rebuilding fails transiently and an older model of the same source
/// exists, that one is returned with [`Model::stale`] set.
pub fn load(now_ms: u64, settings: &Settings) -> Result<Model, SourceError> {
    let source = Source::configured()?;
    let fingerprint = source.fingerprint()?;
    let cached = match kv::get_json::<Model>(MODEL_KEY) {
        Ok(m) => m.filter(|m| m.version == VERSION && m.fingerprint == fingerprint),
        Err(e) => {
            log::warn(&format!("cached cost model unreadable, rebuilding: {e}"));
            None
        }
    };
    let fresh_for = settings.refresh_secs.saturating_mul(1000);
    let cached = match cached {
        Some(model) if now_ms.saturating_sub(model.built_ms) < fresh_for => return Ok(model),
        other => other,
    };
    if let Ok(Some(failure)) = kv::get_json::<Failure>(FAILURE_KEY)
        && failure.fingerprint == fingerprint
        && now_ms.saturating_sub(failure.at_ms) < FAILURE_TTL_MS
    {
        return stale_or(cached, SourceError::Unreachable(failure.message));
    }
    match build(&source, fingerprint.clone(), now_ms) {
        Ok(model) => {
            if let Err(e) = kv::set_json(MODEL_KEY, &model) {
                log::warn(&format!("cannot cache the cost model: {e}"));
            }
            let _ = kv::delete(FAILURE_KEY);
            Ok(model)
        }
        Err(SourceError::Unreachable(message)) => {
            let failure = Failure {
                fingerprint,
                at_ms: now_ms,
                message: message.clone(),
            };
            if let Err(e) = kv::set_json(FAILURE_KEY, &failure) {
                log::warn(&format!("cannot remember the billing API failure: {e}"));
            }
            log::warn(&message);
            stale_or(cached, SourceError::Unreachable(message))
        }
        Err(e) => Err(e),
    }
}

fn stale_or(cached: Option<Model>, error: SourceError) -> Result<Model, SourceError> {
    match cached {
        Some(mut model) => {
            model.stale = Some(error.to_string());
            Ok(model)
        }
        None => Err(error),
    }
}

/// Reads the source into a new model.
pub fn build(source: &Source, fingerprint: String, now_ms: u64) -> Result<Model, SourceError> {
    let mut rows = Rows::new(now_ms);
    source.read(&mut rows)?;
    let (first, last) = rows
        .sums
        .keys()
        .fold(None, |range: Option<(Month, Month)>, (_, _, m)| {
            Some(range.map_or((*m, *m), |(lo, hi)| (lo.min(*m), hi.max(*m))))
        })
        .ok_or_else(|| {
            SourceError::Invalid(format!(
                "{} holds no billing rows for a complete month",
                source.describe()
            ))
        })?;
    let len = (last - first + 1) as usize;
    let mut components: BTreeMap<String, BTreeMap<String, Vec<i64>>> = BTreeMap::new();
    let mut unallocated = vec![0; len];
    for ((component, service, month), dollars) in rows.sums {
        let cents = (dollars * 100.0).round() as i64;
        let i = (month - first) as usize;
        if component.is_empty() {
            unallocated[i] += cents;
        } else {
            components
                .entry(component)
                .or_default()
                .entry(service)
                .or_insert_with(|| vec![0; len])[i] += cents;
        }
    }
    Ok(Model {
        version: VERSION,
        fingerprint,
        built_ms: now_ms,
        source: source.describe(),
        first,
        len,
        components,
        unallocated,
        skipped: rows.skipped,
        first_skipped: rows.first_skipped,
        stale: None,
    })
}

impl Model {
    /// The latest complete month in the data.
    pub fn latest(&self) -> Month {
        self.first + self.len as Month - 1
    }

    /// A component's monthly cents, summed over its services.
    pub fn component_series(&self, key: &str) -> Option<Vec<i64>> {
        let services = self.components.get(key)?;
        let mut total = vec![0; self.len];
        for series in services.values() {
            add(&mut total, series);
        }
        Some(total)
    }

    /// Every cent per month, allocated or not.
    pub fn org_series(&self) -> Vec<i64> {
        let mut total = self.unallocated.clone();
        for services in self.components.values() {
            for series in services.values() {
                add(&mut total, series);
            }
        }
        total
    }
}

/// `total += series`, element-wise.
pub fn add(total: &mut [i64], series: &[i64]) {
    for (t, s) in total.iter_mut().zip(series) {
        *t += s;
    }
}
