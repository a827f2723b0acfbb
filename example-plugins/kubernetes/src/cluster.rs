//! Asking clusters: many list requests at once with `fetch::send_all`
//! (batches of [`fetch::MAX_BATCH`]), each answer cached in key-value
//! storage for `cache_ttl_secs` under its cluster, kind and URL. Requests
//! carry no credentials: the host adds the operator's binding for the
//! cluster's host.

use callboard_sdk::{
    fetch::{self, FetchRequest},
    kv, log,
};
use serde::{Deserialize, Serialize};

use crate::{
    kinds::Kind,
    model::{Failure, Outcome, parse_list},
    settings::{Cluster, Settings},
};

/// Cache keys start with this (a format change is a new prefix).
const CACHE: &str = "c1/";

/// One list request: a kind, in one cluster, at a path (with its query).
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The kind listed.
    pub kind: Kind,
    /// The path and query below the cluster's URL.
    pub path: String,
}

impl Ask<'_> {
    fn url(&self) -> String {
        format!("{}{}", self.cluster.url, self.path)
    }

    fn cache_key(&self) -> String {
        format!(
            "{CACHE}{}/{}/{:016x}",
            self.cluster.name,
            self.kind.plural(),
            fnv(&self.url())
        )
    }
}

/// A cached answer.
#[derive(Serialize, Deserialize)]
struct Cached {
    /// When it was fetched, ms since the epoch.
    at_ms: u64,
    /// The URL it answers (a different one is a miss).
    url: String,
    outcome: Outcome,
}

/// FNV-1a, 64 bits: a short, stable cache key for a URL.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Answers every ask, in order: from the cache within the TTL, else asked
/// concurrently. Once a cluster fails as a whole (credentials refused,
/// unreachable, not granted), its later asks are not sent.
pub fn ask_all(settings: &Settings, asks: &[Ask<'_>]) -> Vec<Outcome> {
    let now = now_ms();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; asks.len()];
    let mut misses = Vec::new();
    for (i, ask) in asks.iter().enumerate() {
        match cached(settings, ask, now) {
            Some(outcome) => outcomes[i] = Some(outcome),
            None => misses.push(i),
        }
    }
    let mut down: Vec<(&str, Failure)> = Vec::new();
    for batch in misses.chunks(fetch::MAX_BATCH) {
        let mut sent = Vec::new();
        let mut requests: Vec<FetchRequest> = Vec::new();
        for &i in batch {
            let ask = &asks[i];
            if let Some((_, failure)) = down.iter().find(|(c, _)| *c == ask.cluster.name) {
                let outcome = Err(failure.clone());
                store(settings, ask, now, &outcome);
                outcomes[i] = Some(outcome);
                continue;
            }
            sent.push(i);
            requests.push(
                fetch::get(ask.url())
                    .header("accept", "application/json")
                    .header("user-agent", "callboard-kubernetes/1.0")
                    .timeout_ms(settings.timeout_ms),
            );
        }
        if requests.is_empty() {
            continue;
        }
        for (i, result) in sent.into_iter().zip(fetch::send_all(requests)) {
            let ask = &asks[i];
            let outcome = match result {
                Ok(response) => parse_list(ask.kind, response.status, &response.body),
                Err(e) => Err(Failure::of_fetch(&e)),
            };
            if let Err(failure) = &outcome {
                log::warn(&format!(
                    "cluster {}: {} {}: {}",
                    ask.cluster.name,
                    ask.kind.plural(),
                    ask.path,
                    failure.short()
                ));
                if failure.is_cluster_wide() && !down.iter().any(|(c, _)| *c == ask.cluster.name) {
                    down.push((ask.cluster.name.as_str(), failure.clone()));
                }
            }
            store(settings, ask, now, &outcome);
            outcomes[i] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Err(Failure::Malformed {
                why: "not asked".to_owned(),
            }))
        })
        .collect()
}

fn cached(settings: &Settings, ask: &Ask<'_>, now: u64) -> Option<Outcome> {
    if settings.ttl_ms == 0 {
        return None;
    }
    match kv::get_json::<Cached>(&ask.cache_key()) {
        Ok(Some(c)) if c.url == ask.url() && now.saturating_sub(c.at_ms) < settings.ttl_ms => {
            Some(c.outcome)
        }
        Ok(_) => None,
        Err(e) => {
            log::warn(&format!("reading the cache of {}: {e}", ask.cluster.name));
            None
        }
    }
}

fn store(settings: &Settings, ask: &Ask<'_>, now: u64, outcome: &Outcome) {
    if settings.ttl_ms == 0 {
        return;
    }
    let cached = Cached {
        at_ms: now,
        url: ask.url(),
        outcome: outcome.clone(),
    };
    if let Err(e) = kv::set_json(&ask.cache_key(), &cached) {
        // Too large for one value, or the quota: served uncached.
        log::warn(&format!(
            "caching {} of {}: {e}",
            ask.kind.plural(),
            ask.cluster.name
        ));
    }
}

/// Forgets every cached answer of `cluster` (after a change to it).
pub fn invalidate(cluster: &Cluster) {
    let prefix = format!("{CACHE}{}/", cluster.name);
    match kv::list_keys(&prefix, 1000) {
        Ok(keys) => {
            for key in keys {
                if let Err(e) = kv::delete(&key) {
                    log::warn(&format!("forgetting {key}: {e}"));
                }
            }
        }
        Err(e) => log::warn(&format!("listing the cache of {}: {e}", cluster.name)),
    }
}

/// Sends one request to a cluster now (no cache), waiting at least 2 s.
pub fn send(settings: &Settings, request: FetchRequest) -> Result<fetch::FetchResponse, Failure> {
    request
        .header("accept", "application/json")
        .header("user-agent", "callboard-kubernetes/1.0")
        .timeout_ms(settings.timeout_ms.max(2000))
        .send()
        .map_err(|e| Failure::of_fetch(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_are_short_and_stable() {
        let cluster = Cluster {
            name: "prod-eu".into(),
            url: "http://127.0.0.1:7010".into(),
            title: None,
            dashboard_url: None,
        };
        let ask = Ask {
            cluster: &cluster,
            kind: Kind::Pods,
            path: "/api/v1/pods?labelSelector=a%3Db&limit=100".into(),
        };
        assert_eq!(
            ask.url(),
            "http://127.0.0.1:7010/api/v1/pods?labelSelector=a%3Db&limit=100"
        );
        let key = ask.cache_key();
        assert!(key.starts_with("c1/prod-eu/pods/"), "{key}");
        assert_eq!(key.len(), "c1/prod-eu/pods/".len() + 16);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
