//! The operator's settings, `[plugins.settings.kubernetes]`: the clusters
//! and a few knobs. Parsing is separate from reading (`config::get`) so it
//! is tested natively.

use serde_json::Value;

/// Most clusters asked; the rest are named in a notice.
pub const MAX_CLUSTERS: usize = 20;
/// `cache_ttl_secs` by default.
const DEFAULT_TTL_SECS: u64 = 15;
/// `timeout_ms` by default: under the portal's default view deadline
/// (1.5 s), so a slow cluster is reported instead of the whole view timing out.
const DEFAULT_TIMEOUT_MS: u32 = 1000;
/// `restart_threshold` by default.
const DEFAULT_RESTART_THRESHOLD: i64 = 5;

/// One configured cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its name, as people know it (`prod-eu`).
    pub name: String,
    /// The API server's base URL, without a trailing `/`.
    pub url: String,
    /// A display title (Backstage's `title`).
    pub title: Option<String>,
    /// A dashboard link (Backstage's `dashboardUrl`).
    pub dashboard_url: Option<String>,
}

impl Cluster {
    /// `host[:port]` of its URL: the key of its credentials binding,
    /// `[plugins.credentials.kubernetes."<this>"]`.
    pub fn host_key(&self) -> String {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
    }
}

/// The plugin's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The clusters to ask, at most [`MAX_CLUSTERS`].
    pub clusters: Vec<Cluster>,
    /// What is wrong with the settings, for an operator notice.
    pub problems: Vec<String>,
    /// How long a cluster's answer is reused, in ms (0: never).
    pub ttl_ms: u64,
    /// How long to wait for a cluster.
    pub timeout_ms: u32,
    /// Restarts of a container that count as an error.
    pub restart_threshold: i64,
}

impl Settings {
    /// Reads `[plugins.settings.kubernetes]`.
    pub fn load() -> Self {
        Self::from(callboard_sdk::config::get)
    }

    /// Parses the settings `get` returns.
    pub fn from(get: impl Fn(&str) -> Option<String>) -> Self {
        let setting = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let mut number = |key: &str, default: u64, max: u64| match setting(key) {
            None => default,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if n <= max => n,
                _ => {
                    problems.push(format!(
                        "plugins.settings.kubernetes.{key} = {text:?} is not a number up to {max}; using {default}"
                    ));
                    default
                }
            },
        };
        let ttl_secs = number("cache_ttl_secs", DEFAULT_TTL_SECS, 3600);
        let timeout_ms = number("timeout_ms", u64::from(DEFAULT_TIMEOUT_MS), 60_000).max(1);
        let threshold = number(
            "restart_threshold",
            DEFAULT_RESTART_THRESHOLD.unsigned_abs(),
            1_000_000,
        )
        .max(1);
        let (clusters, mut more) = match setting("clusters") {
            Some(text) => parse_clusters(&text),
            None => (Vec::new(), Vec::new()),
        };
        problems.append(&mut more);
        Self {
            clusters,
            problems,
            ttl_ms: ttl_secs * 1000,
            timeout_ms: u32::try_from(timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
            restart_threshold: i64::try_from(threshold).unwrap_or(DEFAULT_RESTART_THRESHOLD),
        }
    }

    /// The configured cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// Parses `clusters`: a JSON array of `{"name", "url", "title"?,
/// "dashboardUrl"?}`, or `name=url,name=url`. Returns the valid clusters
/// (at most [`MAX_CLUSTERS`]) and a sentence per problem.
pub fn parse_clusters(text: &str) -> (Vec<Cluster>, Vec<String>) {
    let mut problems = Vec::new();
    let mut candidates: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    if text.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let field = |k: &str| item.get(k).and_then(Value::as_str).map(str::trim);
                    match (field("name"), field("url")) {
                        (Some(name), Some(url)) => candidates.push((
                            name.to_owned(),
                            url.to_owned(),
                            field("title").map(str::to_owned),
                            field("dashboardUrl")
                                .or_else(|| field("dashboard_url"))
                                .map(str::to_owned),
                        )),
                        _ => problems.push(format!(
                            "plugins.settings.kubernetes.clusters: entry {} needs a \"name\" and a \"url\"",
                            i + 1
                        )),
                    }
                }
            }
            Ok(_) | Err(_) => problems.push(
                "plugins.settings.kubernetes.clusters is not a JSON array of {\"name\", \"url\"} objects"
                    .to_owned(),
            ),
        }
    } else {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((name, url)) => {
                    candidates.push((name.trim().to_owned(), url.trim().to_owned(), None, None));
                }
                None => problems.push(format!(
                    "plugins.settings.kubernetes.clusters: {part:?} is not name=url"
                )),
            }
        }
    }
    let mut clusters: Vec<Cluster> = Vec::new();
    for (name, url, title, dashboard_url) in candidates {
        if !valid_cluster_name(&name) {
            problems.push(format!(
                "plugins.settings.kubernetes.clusters: {name:?} is not a cluster name (lower-case letters, digits, '-', '.'; at most 63)"
            ));
            continue;
        }
        if clusters.iter().any(|c| c.name == name) {
            problems.push(format!(
                "plugins.settings.kubernetes.clusters: {name} is named twice; the first is used"
            ));
            continue;
        }
        let Some(url) = valid_url(&url) else {
            problems.push(format!(
                "plugins.settings.kubernetes.clusters: the URL of {name} ({url:?}) is not an http(s) URL"
            ));
            continue;
        };
        if clusters.len() == MAX_CLUSTERS {
            problems.push(format!(
                "plugins.settings.kubernetes.clusters: more than {MAX_CLUSTERS} clusters; {name} and later ones are not asked"
            ));
            break;
        }
        clusters.push(Cluster {
            name,
            url,
            title: title.filter(|t| !t.is_empty()),
            dashboard_url: dashboard_url.and_then(|u| valid_url(&u)),
        });
    }
    (clusters, problems)
}

fn valid_cluster_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
}

/// The URL without a trailing `/`, if it is `http(s)://host...` without
/// whitespace, a query or a fragment.
fn valid_url(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or("");
    let ok = !host.is_empty()
        && !host.contains('@')
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\'));
    ok.then(|| url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from(|k| map.get(k).cloned())
    }

    #[test]
    fn both_cluster_forms() {
        let s = settings(&[(
            "clusters",
            r#"[{"name": "prod-eu", "url": "https://k8s.example:6443/", "title": "Prod EU", "dashboardUrl": "https://dash.example"},
                {"name": "staging", "url": "http://127.0.0.1:7010"}]"#,
        )]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.clusters.len(), 2);
        assert_eq!(s.clusters[0].url, "https://k8s.example:6443");
        assert_eq!(s.clusters[0].title.as_deref(), Some("Prod EU"));
        assert_eq!(
            s.clusters[0].dashboard_url.as_deref(),
            Some("https://dash.example")
        );
        assert_eq!(s.clusters[0].host_key(), "k8s.example:6443");
        assert_eq!(s.clusters[1].host_key(), "127.0.0.1:7010");

        let s = settings(&[(
            "clusters",
            " prod-eu = https://a.example/k8s/clusters/c-1 , staging=http://127.0.0.1:1 ",
        )]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(
            s.clusters
                .iter()
                .map(|c| (c.name.as_str(), c.url.as_str()))
                .collect::<Vec<_>>(),
            [
                ("prod-eu", "https://a.example/k8s/clusters/c-1"),
                ("staging", "http://127.0.0.1:1")
            ]
        );
        assert_eq!(s.clusters[0].host_key(), "a.example");
        assert_eq!(s.ttl_ms, 15_000);
        assert_eq!(s.timeout_ms, 1000);
        assert_eq!(s.restart_threshold, 5);
    }

    #[test]
    fn problems_are_named_and_the_rest_is_used() {
        let s = settings(&[
            (
                "clusters",
                "good=https://a.example,Bad Name=https://b.example,ftp=ftp://c.example,noequals,good=https://d.example,q=https://e.example/?x",
            ),
            ("cache_ttl_secs", "soon"),
            ("timeout_ms", "250"),
        ]);
        assert_eq!(s.clusters.len(), 1);
        assert_eq!(s.timeout_ms, 250);
        assert_eq!(s.ttl_ms, 15_000);
        let all = s.problems.join("\n");
        for needle in [
            "\"Bad Name\"",
            "URL of ftp",
            "\"noequals\"",
            "good is named twice",
            "URL of q",
            "cache_ttl_secs",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        let s = settings(&[("clusters", "[{\"name\": \"x\"}]")]);
        assert!(s.clusters.is_empty());
        assert!(s.problems[0].contains("entry 1"), "{:?}", s.problems);
        let s = settings(&[("clusters", "[nope")]);
        assert!(s.problems[0].contains("not a JSON array"));
        let s = settings(&[]);
        assert!(s.clusters.is_empty() && s.problems.is_empty());
    }

    #[test]
    fn clusters_are_capped() {
        let many: Vec<String> = (0..25)
            .map(|i| format!("c{i}=https://c{i}.example"))
            .collect();
        let s = settings(&[("clusters", &many.join(","))]);
        assert_eq!(s.clusters.len(), MAX_CLUSTERS);
        assert!(s.problems[0].contains("more than 20 clusters"));
    }
}
