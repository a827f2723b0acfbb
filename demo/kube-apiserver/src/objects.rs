//! The kinds this server knows, and [`Objects`], the set of objects one
//! cluster serves.

use std::fmt;

use serde_json::Value;

/// One resource type as discovery describes it.
#[derive(Debug)]
pub(crate) struct ResourceType {
    /// API group, `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower case: the path segment (`pods`).
    pub name: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// What this server implements on it (discovery advertises exactly these).
    pub verbs: &'static [&'static str],
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How error messages name it: `pods`, `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}.{}", self.name, self.group)
        }
    }

    /// How an invalid object is named: `Deployment.apps`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

const READ: &[&str] = &["get", "list"];
const READ_PATCH: &[&str] = &["get", "list", "patch"];

/// Every resource type served, in discovery order within each group version.
pub(crate) const RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        name: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: READ,
    },
    ResourceType {
        group: "",
        version: "v1",
        name: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "",
        version: "v1",
        name: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        name: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        verbs: READ_PATCH,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        name: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "autoscaling",
        version: "v2",
        name: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        name: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        short_names: &["cj"],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        name: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        verbs: READ,
    },
    ResourceType {
        group: "networking.k8s.io",
        version: "v1",
        name: "ingresses",
        singular: "ingress",
        kind: "Ingress",
        namespaced: true,
        short_names: &["ing"],
        categories: &[],
        verbs: READ,
    },
];

/// The group versions served besides the core `v1`, in `/apis` order.
pub(crate) const GROUP_VERSIONS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("autoscaling", "v2"),
    ("batch", "v1"),
    ("networking.k8s.io", "v1"),
];

pub(crate) fn resource_index(group: &str, version: &str, name: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.name == name)
}

fn index_for_object(object: &Value) -> Result<usize, ObjectError> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    RESOURCES
        .iter()
        .position(|r| r.kind == kind && r.api_version() == api_version)
        .ok_or_else(|| {
            ObjectError(format!(
                "unsupported kind {kind:?} of apiVersion {api_version:?} (served: {})",
                RESOURCES
                    .iter()
                    .map(|r| format!("{}/{}", r.api_version(), r.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Why an object was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError(String);

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ObjectError {}

/// The objects one cluster serves, each a full Kubernetes object in its
/// JSON form (`apiVersion`, `kind`, `metadata`, `spec`, `status`), as the
/// real API server would return it from a `GET`.
///
/// Served kinds: `v1` Namespace, Pod, Service; `apps/v1` Deployment,
/// ReplicaSet; `autoscaling/v2` HorizontalPodAutoscaler; `batch/v1` Job,
/// CronJob; `networking.k8s.io/v1` Ingress.
///
/// What the server fills in when missing: `metadata.uid`
/// ([`stable_uid`]`(&[kind, namespace, name])`, namespace `""` when
/// cluster-scoped), `metadata.creationTimestamp` (the moment it starts
/// serving), `metadata.generation` (1, for kinds with a spec generation), a
/// Namespace object for every namespace an object is in (plus `default`,
/// `kube-system`, `kube-public`, `kube-node-lease`). It always assigns
/// `metadata.resourceVersion` from the cluster's counter, oldest object first.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    items: Vec<Value>,
}

impl Objects {
    /// No objects (a cluster with only its default namespaces).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object; refuses unknown kinds, a missing or invalid name, a
    /// namespaced object without a namespace, a cluster-scoped one with one,
    /// and a second object with the same kind, namespace and name.
    pub fn push(&mut self, object: Value) -> Result<(), ObjectError> {
        let index = index_for_object(&object)?;
        let resource = &RESOURCES[index];
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !is_dns_subdomain(name) {
            return Err(ObjectError(format!(
                "{} {name:?}: metadata.name must be a lowercase RFC 1123 subdomain",
                resource.kind
            )));
        }
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        match (resource.namespaced, namespace) {
            (true, Some(ns)) if is_dns_label(ns) => {}
            (true, _) => {
                return Err(ObjectError(format!(
                    "{} {name:?}: metadata.namespace must be a lowercase RFC 1123 label",
                    resource.kind
                )));
            }
            (false, None) => {}
            (false, Some(_)) => {
                return Err(ObjectError(format!(
                    "{} {name:?} is cluster-scoped and has no metadata.namespace",
                    resource.kind
                )));
            }
        }
        for key in ["labels", "annotations"] {
            if let Some(map) = object.pointer(&format!("/metadata/{key}")) {
                let ok = map
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
                if !ok {
                    return Err(ObjectError(format!(
                        "{} {name:?}: metadata.{key} must map strings to strings",
                        resource.kind
                    )));
                }
            }
        }
        let duplicate = self.items.iter().any(|other| {
            index_for_object(other) == Ok(index)
                && other.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                && other.pointer("/metadata/namespace").and_then(Value::as_str) == namespace
        });
        if duplicate {
            return Err(ObjectError(format!(
                "{} {}{name} is there twice",
                resource.kind,
                namespace.map(|ns| format!("{ns}/")).unwrap_or_default()
            )));
        }
        self.items.push(object);
        Ok(())
    }

    /// [`push`](Self::push) for building sets in code and tests.
    ///
    /// # Panics
    /// When `push` refuses the object.
    #[must_use]
    pub fn with(mut self, object: Value) -> Self {
        if let Err(e) = self.push(object) {
            panic!("invalid object: {e}");
        }
        self
    }

    /// Reads objects from JSON: an array of objects, or a list object (`kind:
    /// List` or `<Kind>List`, as `kubectl get -o json` prints) whose items
    /// carry their `kind` and `apiVersion`.
    pub fn from_json(text: &str) -> Result<Self, ObjectError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ObjectError(format!("not JSON: {e}")))?;
        let items = match value {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("items") {
                Some(Value::Array(items)) => items,
                _ => return Err(ObjectError("expected an array or a list with items".into())),
            },
            _ => return Err(ObjectError("expected an array or a list with items".into())),
        };
        let mut objects = Self::new();
        for item in items {
            objects.push(item)?;
        }
        Ok(objects)
    }

    /// The objects, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The objects with their resource index (checked on push).
    pub(crate) fn into_indexed(self) -> Vec<(usize, Value)> {
        self.items
            .into_iter()
            .filter_map(|o| index_for_object(&o).ok().map(|i| (i, o)))
            .collect()
    }
}

impl IntoIterator for Objects {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// RFC 1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A UUID (version 4 layout) derived from the words given, the same for
/// the same words: what the server gives an object without `metadata.uid`
/// (`stable_uid(&[kind, namespace, name])`, namespace `""` for
/// cluster-scoped kinds), so that code building objects can write owner
/// references before the server fills the uids in.
pub fn stable_uid(words: &[&str]) -> String {
    let seed = words.join("\u{1f}");
    let high = stable_hash(&seed);
    let low = stable_hash(&format!("{seed}\u{1f}low"));
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}
