//! What a cluster answered: a list of objects, or why not; and what that
//! means for the operator (one problem per cluster, never one per kind).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{kinds::Kind, settings::Cluster};

/// Largest list body parsed (the host caps responses too, by default at
/// 4 MiB): a bigger one is reported, not parsed.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Why a list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// The API server answered with an error status (a `Status` object).
    Status {
        /// The HTTP status.
        code: u16,
        /// The `Status` reason (`Unauthorized`, `Forbidden`, ...).
        reason: Option<String>,
        /// The `Status` message.
        message: Option<String>,
    },
    /// No answer within the timeout.
    Timeout,
    /// No connection (refused, DNS, TLS, reset).
    Unreachable {
        /// The host's words.
        why: String,
    },
    /// The host is not granted to the plugin.
    Denied {
        /// The host named.
        host: String,
    },
    /// The cluster's URL is malformed.
    InvalidUrl {
        /// Why.
        why: String,
    },
    /// The answer is over the size cap.
    TooLarge {
        /// The cap, in bytes.
        cap: u64,
    },
    /// The answer is not a Kubernetes list.
    Malformed {
        /// Why.
        why: String,
    },
}

impl Failure {
    /// From the SDK's fetch error.
    pub fn of_fetch(e: &callboard_sdk::fetch::FetchError) -> Self {
        use callboard_sdk::fetch::FetchError;
        match e {
            FetchError::Denied(host) => Failure::Denied { host: host.clone() },
            FetchError::InvalidUrl(why) => Failure::InvalidUrl { why: why.clone() },
            FetchError::Timeout => Failure::Timeout,
            FetchError::TooLarge(cap) => Failure::TooLarge { cap: *cap },
            FetchError::Connection(why) => Failure::Unreachable { why: why.clone() },
            FetchError::Status(code) => Failure::Status {
                code: *code,
                reason: None,
                message: None,
            },
            FetchError::Json(why) => Failure::Malformed { why: why.clone() },
        }
    }

    /// Whether the whole cluster is unusable for the plugin (credentials
    /// refused, unreachable, not granted): later requests to it are not sent.
    pub fn is_cluster_wide(&self) -> bool {
        matches!(
            self,
            Failure::Status { code: 401, .. }
                | Failure::Timeout
                | Failure::Unreachable { .. }
                | Failure::Denied { .. }
                | Failure::InvalidUrl { .. }
        )
    }

    /// Backstage's `KubernetesFetchError` for a list at `resource_path`.
    pub fn backstage(&self, resource_path: &str) -> Value {
        match self {
            Failure::Status { code, .. } => json!({
                "errorType": match code {
                    400 => "BAD_REQUEST",
                    401 => "UNAUTHORIZED_ERROR",
                    404 => "NOT_FOUND",
                    500 => "SYSTEM_ERROR",
                    _ => "UNKNOWN_ERROR",
                },
                "statusCode": code,
                "resourcePath": resource_path,
            }),
            other => json!({ "errorType": "FETCH_ERROR", "message": other.short() }),
        }
    }

    /// A few words: `HTTP 401 Unauthorized`, `no answer in time`.
    pub fn short(&self) -> String {
        match self {
            Failure::Status {
                code,
                reason,
                message,
            } => {
                let mut text = format!("HTTP {code}");
                if let Some(reason) = reason {
                    text.push(' ');
                    text.push_str(reason);
                }
                if let Some(message) = message.as_deref().filter(|m| Some(*m) != reason.as_deref())
                {
                    text.push_str(": ");
                    text.push_str(&clip(message, 300));
                }
                text
            }
            Failure::Timeout => "no answer in time".to_owned(),
            Failure::Unreachable { why } => format!("unreachable: {}", clip(why, 300)),
            Failure::Denied { host } => format!("host {host} is not granted"),
            Failure::InvalidUrl { why } => format!("invalid URL: {}", clip(why, 300)),
            Failure::TooLarge { cap } => format!("answer larger than {cap} bytes"),
            Failure::Malformed { why } => format!("not a Kubernetes list: {}", clip(why, 300)),
        }
    }

    /// The operator problem: one line naming the cluster, and what to do.
    pub fn operator_notice(
        &self,
        cluster: &Cluster,
        kinds: &[Kind],
        all: bool,
    ) -> (String, String) {
        let name = &cluster.name;
        let binding = format!(
            "[plugins.credentials.kubernetes.\"{}\"]",
            cluster.host_key()
        );
        let which = if all {
            String::new()
        } else {
            format!(
                " for {}",
                kinds
                    .iter()
                    .map(|k| k.plural())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match self {
            Failure::Status { code: 401, .. } => (
                format!(
                    "kubernetes: cluster {name} refused the plugin's credentials (401){which}; an operator should check {binding}"
                ),
                format!(
                    "The API server at {} does not accept the credentials bound in callboard.toml ({binding}): none are bound, or the token expired or was revoked. The plugin never holds them; only an operator can fix this.",
                    cluster.url
                ),
            ),
            Failure::Status {
                code: 403, message, ..
            } => (
                format!(
                    "kubernetes: cluster {name} does not let the plugin's account read {} (403); an operator should grant it",
                    if all {
                        "workloads".to_owned()
                    } else {
                        kinds
                            .iter()
                            .map(|k| k.plural())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                format!(
                    "The account bound in {binding} needs get and list on pods, services, deployments, replicasets, horizontalpodautoscalers, jobs, cronjobs and ingresses (a ClusterRole and its binding).{}",
                    message
                        .as_deref()
                        .map(|m| format!(" The API server said: {}", clip(m, 300)))
                        .unwrap_or_default()
                ),
            ),
            Failure::Timeout => (
                format!("kubernetes: cluster {name} did not answer in time{which}"),
                format!(
                    "No answer from {} within plugins.settings.kubernetes.timeout_ms; the cluster may be overloaded or unreachable.",
                    cluster.url
                ),
            ),
            Failure::Unreachable { why } => (
                format!("kubernetes: cluster {name} is unreachable{which}"),
                format!(
                    "{} could not be reached: {}. Check its URL in plugins.settings.kubernetes.clusters.",
                    cluster.url,
                    clip(why, 300)
                ),
            ),
            Failure::Denied { host } => (
                format!("kubernetes: cluster {name}'s host is not granted to the plugin"),
                format!(
                    "Grant it in callboard.toml: [grants.plugins.kubernetes] http_hosts = [\"{host}\"]."
                ),
            ),
            Failure::InvalidUrl { why } => (
                format!("kubernetes: cluster {name} has an invalid URL"),
                format!(
                    "Fix it in plugins.settings.kubernetes.clusters: {}.",
                    clip(why, 300)
                ),
            ),
            other => (
                format!(
                    "kubernetes: cluster {name} could not be read{which} ({})",
                    other.short()
                ),
                format!(
                    "The API server at {} answered {}.",
                    cluster.url,
                    other.short()
                ),
            ),
        }
    }
}

/// A list the cluster answered: its objects (trimmed), and whether there
/// were more than the limit asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    /// The objects, each with `kind` and `apiVersion`.
    pub items: Vec<Value>,
    /// The server had more (`metadata.continue`).
    #[serde(default)]
    pub more: bool,
}

/// What one list request came to.
pub type Outcome = Result<Listed, Failure>;

/// Reads a list response: 2xx with a `<Kind>List`, or a `Status` error.
pub fn parse_list(kind: Kind, status: u16, body: &[u8]) -> Outcome {
    if body.len() > MAX_BODY_BYTES {
        return Err(Failure::TooLarge {
            cap: MAX_BODY_BYTES as u64,
        });
    }
    if !(200..300).contains(&status) {
        return Err(status_failure(status, body));
    }
    let mut list: Value =
        serde_json::from_slice(body).map_err(|e| Failure::Malformed { why: e.to_string() })?;
    let more = list["metadata"]["continue"]
        .as_str()
        .is_some_and(|c| !c.is_empty());
    let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
        return Err(Failure::Malformed {
            why: "no items".to_owned(),
        });
    };
    let items = std::mem::take(items)
        .into_iter()
        .filter(Value::is_object)
        .map(|item| trim(kind, item))
        .collect();
    Ok(Listed { items, more })
}

/// The failure of a non-2xx answer, from its `Status` object when it is one.
pub fn status_failure(status: u16, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        parsed
            .as_ref()
            .filter(|v| v["kind"] == "Status")
            .and_then(|v| v[key].as_str())
            .map(|s| clip(s, 500))
    };
    Failure::Status {
        code: status,
        reason: text("reason"),
        message: text("message"),
    }
}

/// An object as kept: `kind` and `apiVersion` set (lists leave them out),
/// without `managedFields` and the last-applied configuration (large, and
/// of no use here).
pub fn trim(kind: Kind, mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.entry("kind").or_insert_with(|| json!(kind.kind()));
        map.entry("apiVersion")
            .or_insert_with(|| json!(kind.api_version()));
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
            if let Some(annotations) = metadata
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
    item
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// Objects by kind, for one cluster (and one entity).
#[derive(Debug, Clone, Default)]
pub struct Resources(pub BTreeMap<Kind, Vec<Value>>);

impl Resources {
    /// The objects of `kind` (none if not asked or failed).
    pub fn get(&self, kind: Kind) -> &[Value] {
        self.0.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// Whether nothing at all was found.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

/// One cluster's answers for one entity.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    /// The cluster.
    pub cluster: Cluster,
    /// What was read, by kind.
    pub resources: Resources,
    /// The kinds that could not be read, and why.
    pub failures: Vec<(Kind, Failure, String)>,
    /// The kinds with more objects than the limit asked.
    pub more: Vec<Kind>,
    /// The kinds asked.
    pub asked: Vec<Kind>,
}

impl ClusterReport {
    /// An empty report for `cluster`.
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            resources: Resources::default(),
            failures: Vec::new(),
            more: Vec::new(),
            asked: Vec::new(),
        }
    }

    /// Adds the answer for `kind` (from `path`), keeping only what `keep` selects.
    pub fn add(
        &mut self,
        kind: Kind,
        path: &str,
        outcome: &Outcome,
        keep: impl Fn(&Value) -> bool,
    ) {
        if !self.asked.contains(&kind) {
            self.asked.push(kind);
        }
        match outcome {
            Ok(listed) => {
                let items = self.resources.0.entry(kind).or_default();
                for item in listed.items.iter().filter(|i| keep(i)) {
                    // A combined query may return an object twice: keep one.
                    let uid = &item["metadata"]["uid"];
                    if uid.is_null() || !items.iter().any(|i| &i["metadata"]["uid"] == uid) {
                        items.push(item.clone());
                    }
                }
                if listed.more && !self.more.contains(&kind) {
                    self.more.push(kind);
                }
            }
            Err(failure) => {
                if !self.failures.iter().any(|(k, _, _)| *k == kind) {
                    self.failures.push((kind, failure.clone(), path.to_owned()));
                }
            }
        }
    }

    /// The cluster's problem for the operator, once: `(title, detail,
    /// whole cluster)`, or none when every kind was read.
    pub fn problem(&self) -> Option<(String, String, bool)> {
        let (_, first, _) = self.failures.first()?;
        let kinds: Vec<Kind> = self.failures.iter().map(|(k, _, _)| *k).collect();
        let all = kinds.len() >= self.asked.len();
        let (title, detail) = first.operator_notice(&self.cluster, &kinds, all);
        Some((title, detail, all))
    }

    /// Whether the whole cluster failed (nothing to show but the problem).
    pub fn is_down(&self) -> bool {
        !self.failures.is_empty() && self.failures.len() >= self.asked.len()
    }
}

/// A JSON object with `key: value` pairs, skipping `None`s.
pub fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        Cluster {
            name: "prod-eu".into(),
            url: "http://127.0.0.1:7010".into(),
            title: None,
            dashboard_url: None,
        }
    }

    #[test]
    fn lists_and_status_errors() {
        let body = json!({
            "kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "12", "continue": "abc"},
            "items": [{"metadata": {"name": "a", "managedFields": [{}], "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "x"}}}],
        });
        let listed = parse_list(Kind::Pods, 200, body.to_string().as_bytes()).unwrap();
        assert!(listed.more);
        assert_eq!(
            listed.items[0],
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a", "annotations": {"keep": "x"}}})
        );
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "pods is forbidden: User \"x\" cannot list resource \"pods\"", "reason": "Forbidden", "code": 403});
        let failure = parse_list(Kind::Pods, 403, status.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            failure.short(),
            "HTTP 403 Forbidden: pods is forbidden: User \"x\" cannot list resource \"pods\""
        );
        assert_eq!(
            parse_list(Kind::Pods, 401, b"Unauthorized").unwrap_err(),
            Failure::Status {
                code: 401,
                reason: None,
                message: None
            }
        );
        assert!(matches!(
            parse_list(Kind::Pods, 200, b"<html>"),
            Err(Failure::Malformed { .. })
        ));
        assert!(matches!(
            parse_list(Kind::Pods, 200, b"{}"),
            Err(Failure::Malformed { .. })
        ));
        assert_eq!(
            failure.backstage("/api/v1/pods"),
            json!({"errorType": "UNKNOWN_ERROR", "statusCode": 403, "resourcePath": "/api/v1/pods"})
        );
        assert_eq!(
            Failure::Timeout.backstage("/x"),
            json!({"errorType": "FETCH_ERROR", "message": "no answer in time"})
        );
    }

    #[test]
    fn one_problem_per_cluster() {
        let unauthorized = Err(Failure::Status {
            code: 401,
            reason: Some("Unauthorized".into()),
            message: Some("Unauthorized".into()),
        });
        let mut report = ClusterReport::new(cluster());
        for kind in Kind::ALL {
            report.add(kind, "/x", &unauthorized, |_| true);
        }
        // Asked twice (two selectors), refused twice: still the whole cluster.
        for kind in Kind::ALL {
            report.add(kind, "/y", &unauthorized, |_| true);
        }
        assert!(report.is_down());
        let (title, detail, all) = report.problem().unwrap();
        assert!(all);
        assert_eq!(
            title,
            "kubernetes: cluster prod-eu refused the plugin's credentials (401); an operator should check [plugins.credentials.kubernetes.\"127.0.0.1:7010\"]"
        );
        assert!(detail.contains("never holds them"), "{detail}");

        // Some kinds forbidden: the rest is shown, the problem names the kinds.
        let mut report = ClusterReport::new(cluster());
        let forbidden = Err(Failure::Status {
            code: 403,
            reason: Some("Forbidden".into()),
            message: None,
        });
        report.add(Kind::Pods, "/p", &Ok(Listed::default()), |_| true);
        report.add(Kind::Ingresses, "/i", &forbidden, |_| true);
        assert!(!report.is_down());
        let (title, _, all) = report.problem().unwrap();
        assert!(!all);
        assert!(title.contains("read ingresses (403)"), "{title}");
    }
}
