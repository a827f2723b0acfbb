//! The demo clusters: `prod-eu` and `staging`, running six components of
//! the demo catalog (`demo/catalog/`) in the namespaces `payments`,
//! `shipping` and `tracking`, plus CoreDNS in `kube-system`. Every object
//! of a component carries `app.kubernetes.io/name: <component>` and
//! `backstage.io/kubernetes-id: <component>`, the label a catalog entity's
//! `backstage.io/kubernetes-id` annotation selects by.
//!
//! Most workloads are healthy; some are failing the ways Backstage's error
//! detection looks for:
//!
//! | cluster | namespace | component | trouble |
//! |---|---|---|---|
//! | prod-eu | payments | ledger-service | one pod in `CrashLoopBackOff` (14 restarts, last exit code 1) |
//! | prod-eu | shipping | booking-service | one pod `OOMKilled` 6 times (running again); its HPA at its maximum |
//! | prod-eu | shipping | label-service | a rollout stuck on `ImagePullBackOff` (a typo in the tag), `ProgressDeadlineExceeded` |
//! | prod-eu | tracking | tracking-service | one pod running but failing its readiness probe |
//! | staging | shipping | booking-service | a rollout's pod in `ErrImagePull` (401 from the registry) |
//! | staging | shipping | label-service | a container restarted 38 times (exit code 2), running now |
//! | staging | payments | reconciliation-job | last night's Job failed (`BackoffLimitExceeded`) |
//!
//! Timestamps are laid out before the moment the data is made, so ages
//! read naturally; everything else (names, uids, IPs) is the same on
//! every run.

use jiff::{SignedDuration, Timestamp, ToSpan as _};
use serde_json::{Value, json};

use crate::objects::{Objects, stable_hash, stable_uid};

/// The demo clusters' names.
pub const DEMO_CLUSTERS: &[&str] = &["prod-eu", "staging"];

/// Every demo cluster with its objects, laid out around now.
pub fn demo_clusters() -> Vec<(String, Objects)> {
    let now = Timestamp::now();
    DEMO_CLUSTERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), demo_cluster_at(name, now)?)))
        .collect()
}

/// One demo cluster's objects, laid out around now (`None` for an unknown name).
pub fn demo_cluster(name: &str) -> Option<Objects> {
    demo_cluster_at(name, Timestamp::now())
}

/// One demo cluster's objects, laid out before `now`.
pub fn demo_cluster_at(name: &str, now: Timestamp) -> Option<Objects> {
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let mut cluster = Cluster {
        name,
        now,
        objects: Objects::new(),
    };
    match name {
        "prod-eu" => prod_eu(&mut cluster),
        "staging" => staging(&mut cluster),
        _ => return None,
    }
    Some(cluster.objects)
}

const REGISTRY: &str = "registry.brightwharf.example";

/// How one pod of a workload is doing.
#[derive(Debug, Clone, Copy)]
enum PodState {
    Healthy,
    /// Waiting in `CrashLoopBackOff`, last run exited with this code.
    CrashLoop {
        restarts: i64,
        exit_code: i64,
    },
    /// The image cannot be pulled and the kubelet backs off.
    ImagePullBackOff,
    /// The image pull just failed (401 from the registry).
    ErrImagePull,
    /// Killed for memory this many times, running again.
    OomKilled {
        restarts: i64,
    },
    /// Running, but its readiness probe has been failing for this long.
    NotReady {
        minutes: i64,
    },
    /// Running, restarted this many times (last exit code 2).
    Flapping {
        restarts: i64,
    },
}

/// A Deployment of a component and what it runs.
struct App {
    name: &'static str,
    namespace: &'static str,
    /// The catalog system (`app.kubernetes.io/part-of`).
    system: &'static str,
    /// Registry path under the registry host (`payments/payment-gateway`).
    repository: &'static str,
    version: &'static str,
    /// The revision the current ReplicaSet is.
    revision: u32,
    /// When the current ReplicaSet was rolled out.
    rolled_out: SignedDuration,
    /// The Deployment's age.
    age: SignedDuration,
    replicas: i64,
    /// The current ReplicaSet's pods.
    pods: &'static [PodState],
    /// A rollout in progress from this version: the old ReplicaSet still
    /// runs `replicas` healthy pods (`None`: the previous ReplicaSet is
    /// scaled to zero).
    rolling_from: Option<&'static str>,
    /// The rollout is past its progress deadline.
    stuck: bool,
    cpu: &'static str,
    memory: &'static str,
    memory_limit: &'static str,
}

impl App {
    const fn new(
        name: &'static str,
        namespace: &'static str,
        system: &'static str,
        repository: &'static str,
        version: &'static str,
    ) -> Self {
        Self {
            name,
            namespace,
            system,
            repository,
            version,
            revision: 1,
            rolled_out: SignedDuration::from_hours(72),
            age: SignedDuration::from_hours(24 * 200),
            replicas: 1,
            pods: &[PodState::Healthy],
            rolling_from: None,
            stuck: false,
            cpu: "250m",
            memory: "256Mi",
            memory_limit: "512Mi",
        }
    }

    fn image(&self, version: &str) -> String {
        format!("{REGISTRY}/{}:{version}", self.repository)
    }
}

struct Cluster<'a> {
    name: &'a str,
    now: Timestamp,
    objects: Objects,
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// Characters Kubernetes uses in generated names.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Cluster<'_> {
    fn at(&self, ago: SignedDuration) -> String {
        (self.now - ago).to_string()
    }

    fn uid(&self, kind: &str, namespace: &str, name: &str) -> String {
        stable_uid(&[self.name, kind, namespace, name])
    }

    fn push(&mut self, object: Value) {
        if let Err(e) = self.objects.push(object) {
            // The demo data is ours: a refusal is a bug in this file.
            panic!("demo cluster {}: {e}", self.name);
        }
    }

    /// A stable 10.x address for a seed.
    fn ip(&self, prefix: &str, seed: &str) -> String {
        let h = stable_hash(&format!("{}/{seed}", self.name));
        format!("{prefix}.{}.{}", (h >> 8) % 250 + 1, h % 250 + 2)
    }

    fn node(&self, seed: &str) -> (String, String) {
        let h = stable_hash(&format!("{}/{seed}", self.name)) % 3;
        let zone = ["a", "b", "c"][usize::try_from(h).unwrap_or(0)];
        let name = format!(
            "{}-pool-1-{zone}-{}",
            self.name,
            suffix(&format!("{}{zone}", self.name), 4)
        );
        (name, format!("10.20.{}.{}", h + 1, 11 + h))
    }
}

/// A generated-name suffix of `len` characters, stable for a seed.
fn suffix(seed: &str, len: usize) -> String {
    let mut h = stable_hash(seed);
    (0..len)
        .map(|i| {
            if i > 0 && i % 8 == 0 {
                h = stable_hash(&format!("{seed}{i}"));
            }
            let c = NAME_ALPHABET[usize::try_from(h % 27).unwrap_or(0)];
            h /= 27;
            char::from(c)
        })
        .collect()
}

/// 64 hex digits, stable for a seed (image digests, container ids).
fn digest(seed: &str) -> String {
    (0..4)
        .map(|i| format!("{:016x}", stable_hash(&format!("{seed}#{i}"))))
        .collect()
}

fn labels(app: &App) -> Value {
    json!({
        "app.kubernetes.io/name": app.name,
        "app.kubernetes.io/part-of": app.system,
        "backstage.io/kubernetes-id": app.name,
    })
}

fn pod_labels(app: &App, version: &str) -> Value {
    let mut labels = labels(app);
    labels["app.kubernetes.io/version"] = json!(version);
    labels
}

fn container(app: &App, version: &str) -> Value {
    json!({
        "name": app.name,
        "image": app.image(version),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [
            {"name": "OTEL_SERVICE_NAME", "value": app.name},
            {"name": "LOG_FORMAT", "value": "json"},
        ],
        "resources": {
            "limits": {"memory": app.memory_limit},
            "requests": {"cpu": app.cpu, "memory": app.memory},
        },
        "readinessProbe": {
            "failureThreshold": 3,
            "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
            "periodSeconds": 10,
            "successThreshold": 1,
            "timeoutSeconds": 1,
        },
        "livenessProbe": {
            "failureThreshold": 3,
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "successThreshold": 1,
            "timeoutSeconds": 1,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })
}

fn pod_template_spec(containers: &Value, restart_policy: &str) -> Value {
    json!({
        "containers": containers,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": restart_policy,
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    })
}

fn template(app: &App, version: &str, hash: Option<&str>) -> Value {
    let mut labels = pod_labels(app, version);
    if let Some(hash) = hash {
        labels["pod-template-hash"] = json!(hash);
    }
    json!({
        "metadata": {"creationTimestamp": null, "labels": labels},
        "spec": pod_template_spec(&json!([container(app, version)]), "Always"),
    })
}

fn condition(
    kind: &str,
    status: bool,
    at: &str,
    reason: Option<&str>,
    message: Option<&str>,
) -> Value {
    let mut condition = json!({
        "lastProbeTime": null,
        "lastTransitionTime": at,
        "status": if status { "True" } else { "False" },
        "type": kind,
    });
    if let Some(reason) = reason {
        condition["reason"] = json!(reason);
    }
    if let Some(message) = message {
        condition["message"] = json!(message);
    }
    condition
}

/// What admission adds to every pod's spec: the service account, its
/// token volume, the default tolerations, the node.
fn admitted_pod_spec(mut spec: Value, node: &str, seed: &str) -> Value {
    let volume = format!("kube-api-access-{}", suffix(seed, 5));
    if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for container in containers {
            container["volumeMounts"] = json!([{
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": volume,
                "readOnly": true,
            }]);
        }
    }
    let extra = json!({
        "enableServiceLinks": true,
        "nodeName": node,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "tolerations": [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
        ],
        "volumes": [{
            "name": volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                    {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
                ],
            },
        }],
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    spec
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// The replica set (name, uid, hash) of a version of an app.
fn replica_set_name(app: &App, version: &str) -> (String, String) {
    let hash = suffix(&format!("{}/{version}", app.name), 10);
    (format!("{}-{hash}", app.name), hash)
}

impl Cluster<'_> {
    /// A Deployment with its ReplicaSets and pods, and a Service.
    fn app(&mut self, app: &App) {
        let deployment_uid = self.uid("Deployment", app.namespace, app.name);
        let (rs_name, hash) = replica_set_name(app, app.version);
        let rs_uid = self.uid("ReplicaSet", app.namespace, &rs_name);

        // Pods of the current ReplicaSet.
        let mut ready = 0;
        for (i, state) in app.pods.iter().enumerate() {
            let pod = self.pod(app, app.version, &rs_name, &rs_uid, &hash, i, *state);
            if pod_ready(&pod) {
                ready += 1;
            }
            self.push(pod);
        }
        let current = i64::try_from(app.pods.len()).unwrap_or(0);
        let mut total = current;
        let mut total_ready = ready;

        // The previous ReplicaSet: still serving during a rollout, else
        // scaled to zero and kept for `rollout undo`.
        if app.revision > 1 {
            let previous = app
                .rolling_from
                .map_or_else(|| older_version(app.version), str::to_owned);
            let (old_name, old_hash) = replica_set_name(app, &previous);
            let old_uid = self.uid("ReplicaSet", app.namespace, &old_name);
            let old_replicas = if app.rolling_from.is_some() {
                for i in 0..usize::try_from(app.replicas).unwrap_or(0) {
                    let pod = self.pod(
                        app,
                        &previous,
                        &old_name,
                        &old_uid,
                        &old_hash,
                        i,
                        PodState::Healthy,
                    );
                    self.push(pod);
                }
                total += app.replicas;
                total_ready += app.replicas;
                app.replicas
            } else {
                0
            };
            self.replica_set(
                app,
                &old_name,
                &old_uid,
                &deployment_uid,
                app.revision - 1,
                old_replicas,
                old_replicas,
                app.rolled_out + days(9),
                &template(app, &previous, Some(&old_hash)),
            );
        }
        self.replica_set(
            app,
            &rs_name,
            &rs_uid,
            &deployment_uid,
            app.revision,
            current,
            ready,
            app.rolled_out,
            &template(app, app.version, Some(&hash)),
        );

        // The Deployment.
        let max_unavailable = app.replicas / 4;
        let available = total_ready;
        let progressing = if app.stuck {
            condition(
                "Progressing",
                false,
                &self.at(app.rolled_out - minutes(10)),
                Some("ProgressDeadlineExceeded"),
                Some(&format!(
                    "ReplicaSet \"{rs_name}\" has timed out progressing."
                )),
            )
        } else if app.rolling_from.is_some() {
            condition(
                "Progressing",
                true,
                &self.at(app.rolled_out),
                Some("ReplicaSetUpdated"),
                Some(&format!("ReplicaSet \"{rs_name}\" is progressing.")),
            )
        } else {
            condition(
                "Progressing",
                true,
                &self.at(app.rolled_out - minutes(2)),
                Some("NewReplicaSetAvailable"),
                Some(&format!(
                    "ReplicaSet \"{rs_name}\" has successfully progressed."
                )),
            )
        };
        // Available since the last rollout that completed.
        let settled = if app.rolling_from.is_some() {
            app.rolled_out + days(9)
        } else {
            app.rolled_out
        };
        let available_condition = if available >= app.replicas - max_unavailable {
            condition(
                "Available",
                true,
                &self.at(settled - minutes(1)),
                Some("MinimumReplicasAvailable"),
                Some("Deployment has minimum availability."),
            )
        } else {
            condition(
                "Available",
                false,
                &self.at(hours(5)),
                Some("MinimumReplicasUnavailable"),
                Some("Deployment does not have minimum availability."),
            )
        };
        let mut conditions = vec![available_condition, progressing];
        for c in &mut conditions {
            // Deployment conditions carry lastUpdateTime, not lastProbeTime.
            let at = c["lastTransitionTime"].clone();
            if let Some(map) = c.as_object_mut() {
                map.remove("lastProbeTime");
                map.insert("lastUpdateTime".into(), at);
            }
        }
        let generation = i64::from(app.revision) + 1;
        let mut status = serde_json::Map::new();
        status.insert("observedGeneration".into(), json!(generation));
        status.insert("replicas".into(), json!(total));
        status.insert("updatedReplicas".into(), json!(current));
        if total_ready > 0 {
            status.insert("readyReplicas".into(), json!(total_ready));
            status.insert("availableReplicas".into(), json!(available));
        }
        let unavailable = (app.replicas - available).max(0);
        if unavailable > 0 {
            status.insert("unavailableReplicas".into(), json!(unavailable));
        }
        status.insert("conditions".into(), Value::Array(conditions));
        let pod_template = template(app, app.version, None);
        self.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": app.revision.to_string()},
                "creationTimestamp": self.at(app.age),
                "generation": generation,
                "labels": labels(app),
                "name": app.name,
                "namespace": app.namespace,
                "uid": deployment_uid,
            },
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": app.replicas,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}},
                "strategy": {
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    "type": "RollingUpdate",
                },
                "template": pod_template,
            },
            "status": status,
        }));
        self.service(app);
    }

    #[allow(clippy::too_many_arguments)]
    fn replica_set(
        &mut self,
        app: &App,
        name: &str,
        uid: &str,
        deployment_uid: &str,
        revision: u32,
        replicas: i64,
        ready: i64,
        created: SignedDuration,
        template: &Value,
    ) {
        let mut labels = pod_labels(app, app.version);
        if let Some(version) = template.pointer("/metadata/labels/app.kubernetes.io~1version") {
            labels["app.kubernetes.io/version"] = version.clone();
        }
        let hash = template
            .pointer("/metadata/labels/pod-template-hash")
            .cloned()
            .unwrap_or(json!(""));
        labels["pod-template-hash"] = hash.clone();
        let mut status =
            json!({"replicas": replicas, "observedGeneration": 1 + i64::from(replicas == 0)});
        if replicas > 0 {
            status["fullyLabeledReplicas"] = json!(replicas);
        }
        if ready > 0 {
            status["readyReplicas"] = json!(ready);
            status["availableReplicas"] = json!(ready);
        }
        self.push(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": app.replicas.to_string(),
                    "deployment.kubernetes.io/max-replicas": (app.replicas + (app.replicas + 3) / 4).to_string(),
                    "deployment.kubernetes.io/revision": revision.to_string(),
                },
                "creationTimestamp": self.at(created),
                "generation": 1 + i64::from(replicas == 0),
                "labels": labels,
                "name": name,
                "namespace": app.namespace,
                "ownerReferences": owner("apps/v1", "Deployment", app.name, deployment_uid),
                "uid": uid,
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app.name, "pod-template-hash": hash}},
                "template": template,
            },
            "status": status,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn pod(
        &self,
        app: &App,
        version: &str,
        rs_name: &str,
        rs_uid: &str,
        hash: &str,
        index: usize,
        state: PodState,
    ) -> Value {
        let name = format!(
            "{rs_name}-{}",
            suffix(&format!("{}/{rs_name}/{index}", self.name), 5)
        );
        let uid = self.uid("Pod", app.namespace, &name);
        let image = app.image(version);
        let (node, host_ip) = self.node(&name);
        let pod_ip = self.ip("10.244", &name);
        // Pods of a settled ReplicaSet came up just after it; troubled ones
        // were started later, by a node drain or an eviction.
        let created = match state {
            PodState::Healthy => {
                if version == app.version {
                    app.rolled_out
                        - SignedDuration::from_secs(20 + 7 * i64::try_from(index).unwrap_or(0))
                } else {
                    app.rolled_out + days(9) - minutes(1)
                }
            }
            PodState::ImagePullBackOff | PodState::ErrImagePull => app.rolled_out - minutes(1),
            _ => days(2) + hours(3),
        };
        let started = created - SignedDuration::from_secs(4);
        let container_id = format!(
            "containerd://{}",
            digest(&format!("{}/{name}/c", self.name))
        );
        let image_id = format!("{REGISTRY}/{}@sha256:{}", app.repository, digest(&image));
        let mut spec = template(app, version, None)["spec"].clone();
        spec = admitted_pod_spec(spec, &node, &name);
        let unready = |reason: &str| Some(reason.to_owned());
        let (phase, container_status, not_ready): (&str, Value, Option<String>) = match state {
            PodState::Healthy => (
                "Running",
                json!({
                    "containerID": container_id, "image": image, "imageID": image_id,
                    "lastState": {}, "name": app.name, "ready": true, "restartCount": 0,
                    "started": true, "state": {"running": {"startedAt": self.at(started)}},
                }),
                None,
            ),
            PodState::CrashLoop {
                restarts,
                exit_code,
            } => {
                let finished = minutes(2) + SignedDuration::from_secs(11);
                (
                    "Running",
                    json!({
                        "containerID": container_id, "image": image, "imageID": image_id,
                        "lastState": {"terminated": {
                            "containerID": container_id, "exitCode": exit_code,
                            "finishedAt": self.at(finished), "reason": "Error",
                            "startedAt": self.at(finished + SignedDuration::from_secs(6)),
                        }},
                        "name": app.name, "ready": false, "restartCount": restarts, "started": false,
                        "state": {"waiting": {
                            "message": format!("back-off 5m0s restarting failed container={} pod={name}_{}({uid})", app.name, app.namespace),
                            "reason": "CrashLoopBackOff",
                        }},
                    }),
                    unready(&self.at(hours(5))),
                )
            }
            PodState::ImagePullBackOff => (
                "Pending",
                json!({
                    "image": image, "imageID": "", "lastState": {}, "name": app.name,
                    "ready": false, "restartCount": 0, "started": false,
                    "state": {"waiting": {
                        "message": format!("Back-off pulling image \"{image}\""),
                        "reason": "ImagePullBackOff",
                    }},
                }),
                unready(&self.at(created - SignedDuration::from_secs(1))),
            ),
            PodState::ErrImagePull => (
                "Pending",
                json!({
                    "image": image, "imageID": "", "lastState": {}, "name": app.name,
                    "ready": false, "restartCount": 0, "started": false,
                    "state": {"waiting": {
                        "message": format!(
                            "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request to https://{REGISTRY}/v2/{}/manifests/{version}: 401 Unauthorized",
                            app.repository
                        ),
                        "reason": "ErrImagePull",
                    }},
                }),
                unready(&self.at(created - SignedDuration::from_secs(1))),
            ),
            PodState::OomKilled { restarts } => {
                let finished = minutes(23);
                (
                    "Running",
                    json!({
                        "containerID": container_id, "image": image, "imageID": image_id,
                        "lastState": {"terminated": {
                            "containerID": format!("containerd://{}", digest(&format!("{}/{name}/previous", self.name))),
                            "exitCode": 137, "finishedAt": self.at(finished), "reason": "OOMKilled",
                            "startedAt": self.at(finished + hours(3) + minutes(12)),
                        }},
                        "name": app.name, "ready": true, "restartCount": restarts, "started": true,
                        "state": {"running": {"startedAt": self.at(finished - SignedDuration::from_secs(1))}},
                    }),
                    None,
                )
            }
            PodState::NotReady { minutes: failing } => (
                "Running",
                json!({
                    "containerID": container_id, "image": image, "imageID": image_id,
                    "lastState": {}, "name": app.name, "ready": false, "restartCount": 0,
                    "started": true, "state": {"running": {"startedAt": self.at(started)}},
                }),
                unready(&self.at(minutes(failing))),
            ),
            PodState::Flapping { restarts } => {
                let finished = minutes(9);
                (
                    "Running",
                    json!({
                        "containerID": container_id, "image": image, "imageID": image_id,
                        "lastState": {"terminated": {
                            "containerID": format!("containerd://{}", digest(&format!("{}/{name}/previous", self.name))),
                            "exitCode": 2, "finishedAt": self.at(finished), "reason": "Error",
                            "startedAt": self.at(finished + minutes(47)),
                        }},
                        "name": app.name, "ready": true, "restartCount": restarts, "started": true,
                        "state": {"running": {"startedAt": self.at(finished - SignedDuration::from_secs(1))}},
                    }),
                    None,
                )
            }
        };
        let scheduled = self.at(created - SignedDuration::from_secs(1));
        let initialized = self.at(created - SignedDuration::from_secs(1));
        let ready_since = self.at(started - SignedDuration::from_secs(6));
        let containers_message = format!("containers with unready status: [{}]", app.name);
        let ready_conditions = match &not_ready {
            None => vec![
                condition("Ready", true, &ready_since, None, None),
                condition("ContainersReady", true, &ready_since, None, None),
            ],
            Some(since) => vec![
                condition(
                    "Ready",
                    false,
                    since,
                    Some("ContainersNotReady"),
                    Some(&containers_message),
                ),
                condition(
                    "ContainersReady",
                    false,
                    since,
                    Some("ContainersNotReady"),
                    Some(&containers_message),
                ),
            ],
        };
        let mut conditions = vec![
            condition(
                "PodReadyToStartContainers",
                true,
                &self.at(created - SignedDuration::from_secs(3)),
                None,
                None,
            ),
            condition("Initialized", true, &initialized, None, None),
        ];
        conditions.extend(ready_conditions);
        conditions.push(condition("PodScheduled", true, &scheduled, None, None));
        let mut labels = pod_labels(app, version);
        labels["pod-template-hash"] = json!(hash);
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "creationTimestamp": self.at(created),
                "generateName": format!("{rs_name}-"),
                "labels": labels,
                "name": name,
                "namespace": app.namespace,
                "ownerReferences": owner("apps/v1", "ReplicaSet", rs_name, rs_uid),
                "uid": uid,
            },
            "spec": spec,
            "status": {
                "conditions": conditions,
                "containerStatuses": [container_status],
                "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}],
                "phase": phase,
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "qosClass": "Burstable",
                "startTime": self.at(created - SignedDuration::from_secs(1)),
            },
        })
    }

    fn service(&mut self, app: &App) {
        let cluster_ip = self.ip("10.96", &format!("svc/{}/{}", app.namespace, app.name));
        self.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "creationTimestamp": self.at(app.age - minutes(1)),
                "labels": labels(app),
                "name": app.name,
                "namespace": app.namespace,
                "uid": self.uid("Service", app.namespace, app.name),
            },
            "spec": {
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
                "selector": {"app.kubernetes.io/name": app.name},
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        }));
    }

    fn ingress(&mut self, app: &App, host: &str, address: &str) {
        self.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "creationTimestamp": self.at(app.age - minutes(2)),
                "generation": 1,
                "labels": labels(app),
                "name": app.name,
                "namespace": app.namespace,
                "uid": self.uid("Ingress", app.namespace, app.name),
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{
                    "host": host,
                    "http": {"paths": [{
                        "backend": {"service": {"name": app.name, "port": {"number": 80}}},
                        "path": "/",
                        "pathType": "Prefix",
                    }]},
                }],
                "tls": [{"hosts": [host], "secretName": format!("{}-tls", app.name)}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn autoscaler(
        &mut self,
        app: &App,
        min: i64,
        max: i64,
        target: i64,
        current: i64,
        replicas: i64,
        desired: i64,
    ) {
        let at_max = desired >= max && current > target;
        let limited = if at_max {
            condition(
                "ScalingLimited",
                true,
                &self.at(hours(6)),
                Some("TooManyReplicas"),
                Some("the desired replica count is more than the maximum replica count"),
            )
        } else {
            condition(
                "ScalingLimited",
                false,
                &self.at(days(11)),
                Some("DesiredWithinRange"),
                Some("the desired count is within the acceptable range"),
            )
        };
        let mut conditions = vec![
            condition(
                "AbleToScale",
                true,
                &self.at(app.age - minutes(3)),
                Some("ReadyForNewScale"),
                Some("recommended size matches current size"),
            ),
            condition(
                "ScalingActive",
                true,
                &self.at(days(11)),
                Some("ValidMetricFound"),
                Some(
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                ),
            ),
            limited,
        ];
        for c in &mut conditions {
            if let Some(map) = c.as_object_mut() {
                map.remove("lastProbeTime");
            }
        }
        let milli_cpu = 250 * current / 100;
        self.push(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {
                "creationTimestamp": self.at(app.age - minutes(3)),
                "labels": labels(app),
                "name": app.name,
                "namespace": app.namespace,
                "uid": self.uid("HorizontalPodAutoscaler", app.namespace, app.name),
            },
            "spec": {
                "maxReplicas": max,
                "metrics": [{
                    "resource": {"name": "cpu", "target": {"averageUtilization": target, "type": "Utilization"}},
                    "type": "Resource",
                }],
                "minReplicas": min,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
            },
            "status": {
                "conditions": conditions,
                "currentMetrics": [{
                    "resource": {"current": {"averageUtilization": current, "averageValue": format!("{milli_cpu}m")}, "name": "cpu"},
                    "type": "Resource",
                }],
                "currentReplicas": replicas,
                "desiredReplicas": desired,
                "lastScaleTime": self.at(hours(6) + minutes(14)),
            },
        }));
    }

    /// The nightly reconciliation CronJob, with its Jobs and their pods:
    /// `failed` makes the last night's run fail after three attempts.
    fn reconciliation(&mut self, version: &'static str, nights: i64, failed: bool) {
        let app = App::new(
            "reconciliation-job",
            "payments",
            "payments",
            "payments/reconciliation-job",
            version,
        );
        let cron_uid = self.uid("CronJob", app.namespace, app.name);
        // The runs: 02:30 UTC on each of the last `nights` nights.
        let today = self.now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut last_run = today
            .at(2, 30, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(self.now);
        if last_run > self.now {
            last_run = last_run.checked_sub(24.hours()).unwrap_or(last_run);
        }
        let job_template_labels = labels(&app);
        let mut container = container(&app, version);
        if let Some(c) = container.as_object_mut() {
            for key in ["ports", "readinessProbe", "livenessProbe"] {
                c.remove(key);
            }
            c.insert(
                "args".into(),
                json!(["reconcile", "--settlement-date=yesterday"]),
            );
        }
        let job_pod_spec = pod_template_spec(&json!([container]), "Never");
        let mut last_success = None;
        for night in (0..nights).rev() {
            let scheduled = last_run - SignedDuration::from_hours(24 * night);
            let ago = self.now.duration_since(scheduled);
            let job_name = format!("{}-{}", app.name, scheduled.as_second() / 60);
            let job_uid = self.uid("Job", app.namespace, &job_name);
            let fails = failed && night == 0;
            let mut pod_labels = job_template_labels.clone();
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", job_uid.as_str()),
                ("batch.kubernetes.io/job-name", job_name.as_str()),
                ("controller-uid", job_uid.as_str()),
                ("job-name", job_name.as_str()),
            ] {
                pod_labels[k] = json!(v);
            }
            let run_time = if fails {
                SignedDuration::from_secs(38)
            } else {
                minutes(6) + SignedDuration::from_secs(41)
            };
            let attempts = if fails { 3 } else { 1 };
            let mut finished = ago;
            for attempt in 0..attempts {
                // Failed attempts back off 10 s, 20 s before the next.
                let start = ago
                    - SignedDuration::from_secs(2)
                    - (run_time + SignedDuration::from_secs(10 * attempt))
                        * i32::try_from(attempt).unwrap_or(0);
                let end = start - run_time;
                finished = end;
                let pod_name = format!(
                    "{job_name}-{}",
                    suffix(&format!("{}/{job_name}/{attempt}", self.name), 5)
                );
                let pod_uid = self.uid("Pod", app.namespace, &pod_name);
                let (node, host_ip) = self.node(&pod_name);
                let pod_ip = self.ip("10.244", &pod_name);
                let image = app.image(version);
                let (reason, exit_code, phase) = if fails {
                    ("Error", 1, "Failed")
                } else {
                    ("Completed", 0, "Succeeded")
                };
                let done_reason = if fails { "PodFailed" } else { "PodCompleted" };
                let spec = admitted_pod_spec(job_pod_spec.clone(), &node, &pod_name);
                self.push(json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "creationTimestamp": self.at(start + SignedDuration::from_secs(1)),
                        "finalizers": [],
                        "generateName": format!("{job_name}-"),
                        "labels": pod_labels,
                        "name": pod_name,
                        "namespace": app.namespace,
                        "ownerReferences": owner("batch/v1", "Job", &job_name, &job_uid),
                        "uid": pod_uid,
                    },
                    "spec": spec,
                    "status": {
                        "conditions": [
                            condition("PodReadyToStartContainers", false, &self.at(end), None, None),
                            condition("Initialized", true, &self.at(start + SignedDuration::from_secs(1)), Some(done_reason), None),
                            condition("Ready", false, &self.at(end), Some(done_reason), None),
                            condition("ContainersReady", false, &self.at(end), Some(done_reason), None),
                            condition("PodScheduled", true, &self.at(start + SignedDuration::from_secs(1)), None, None),
                        ],
                        "containerStatuses": [{
                            "containerID": format!("containerd://{}", digest(&pod_name)),
                            "image": image,
                            "imageID": format!("{REGISTRY}/{}@sha256:{}", app.repository, digest(&image)),
                            "lastState": {},
                            "name": app.name,
                            "ready": false,
                            "restartCount": 0,
                            "started": false,
                            "state": {"terminated": {
                                "containerID": format!("containerd://{}", digest(&pod_name)),
                                "exitCode": exit_code,
                                "finishedAt": self.at(end),
                                "reason": reason,
                                "startedAt": self.at(start),
                            }},
                        }],
                        "hostIP": host_ip,
                        "hostIPs": [{"ip": host_ip}],
                        "phase": phase,
                        "podIP": pod_ip,
                        "podIPs": [{"ip": pod_ip}],
                        "qosClass": "Burstable",
                        "startTime": self.at(start + SignedDuration::from_secs(1)),
                    },
                }));
            }
            let begun = self.at(ago - SignedDuration::from_secs(1));
            let ended = self.at(finished);
            let status = if fails {
                json!({
                    "conditions": [
                        {"lastProbeTime": ended, "lastTransitionTime": ended, "message": "Job has reached the specified backoff limit", "reason": "BackoffLimitExceeded", "status": "True", "type": "FailureTarget"},
                        {"lastProbeTime": ended, "lastTransitionTime": ended, "message": "Job has reached the specified backoff limit", "reason": "BackoffLimitExceeded", "status": "True", "type": "Failed"},
                    ],
                    "failed": attempts,
                    "ready": 0,
                    "startTime": begun,
                    "terminating": 0,
                    "uncountedTerminatedPods": {},
                })
            } else {
                last_success = Some(ended.clone());
                json!({
                    "completionTime": ended,
                    "conditions": [
                        {"lastProbeTime": ended, "lastTransitionTime": ended, "message": "Reached expected number of succeeded pods", "reason": "CompletionsReached", "status": "True", "type": "SuccessCriteriaMet"},
                        {"lastProbeTime": ended, "lastTransitionTime": ended, "message": "Reached expected number of succeeded pods", "reason": "CompletionsReached", "status": "True", "type": "Complete"},
                    ],
                    "ready": 0,
                    "startTime": begun,
                    "succeeded": 1,
                    "terminating": 0,
                    "uncountedTerminatedPods": {},
                })
            };
            self.push(json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": scheduled.to_string()},
                    "creationTimestamp": self.at(ago - SignedDuration::from_secs(1)),
                    "generation": 1,
                    "labels": pod_labels,
                    "name": job_name,
                    "namespace": app.namespace,
                    "ownerReferences": owner("batch/v1", "CronJob", app.name, &cron_uid),
                    "uid": job_uid,
                },
                "spec": {
                    "backoffLimit": 2,
                    "completionMode": "NonIndexed",
                    "completions": 1,
                    "manualSelector": false,
                    "parallelism": 1,
                    "podReplacementPolicy": "TerminatingOrFailed",
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
                    "suspend": false,
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": pod_labels},
                        "spec": job_pod_spec,
                    },
                },
                "status": status,
            }));
        }
        let mut cron_status = json!({"lastScheduleTime": last_run.to_string()});
        if let Some(success) = last_success {
            cron_status["lastSuccessfulTime"] = json!(success);
        }
        self.push(json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "creationTimestamp": self.at(days(301)),
                "generation": 3,
                "labels": job_template_labels,
                "name": app.name,
                "namespace": app.namespace,
                "uid": cron_uid,
            },
            "spec": {
                "concurrencyPolicy": "Forbid",
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {
                    "metadata": {"creationTimestamp": null, "labels": job_template_labels},
                    "spec": {
                        "backoffLimit": 2,
                        "template": {
                            "metadata": {"creationTimestamp": null, "labels": job_template_labels},
                            "spec": job_pod_spec,
                        },
                    },
                },
                "schedule": "30 2 * * *",
                "successfulJobsHistoryLimit": 3,
                "suspend": false,
                "timeZone": "Etc/UTC",
            },
            "status": cron_status,
        }));
    }

    /// CoreDNS in `kube-system`: what every cluster runs, and no
    /// component's.
    fn coredns(&mut self) {
        let app = App {
            replicas: 2,
            pods: &[PodState::Healthy, PodState::Healthy],
            rolled_out: days(41),
            age: days(412),
            cpu: "100m",
            memory: "70Mi",
            memory_limit: "170Mi",
            ..App::new(
                "coredns",
                "kube-system",
                "kube-dns",
                "kube-system/coredns",
                "v1.11.3",
            )
        };
        let deployment_uid = self.uid("Deployment", app.namespace, app.name);
        let (rs_name, hash) = replica_set_name(&app, app.version);
        let rs_uid = self.uid("ReplicaSet", app.namespace, &rs_name);
        let dns_labels = json!({"k8s-app": "kube-dns"});
        let image = "registry.k8s.io/coredns/coredns:v1.11.3";
        let dns_container = json!({
            "args": ["-conf", "/etc/coredns/Corefile"],
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "name": "coredns",
            "ports": [
                {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
            ],
            "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
            "readinessProbe": {"failureThreshold": 3, "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        });
        let spec = {
            let mut spec = pod_template_spec(&json!([dns_container]), "Always");
            spec["dnsPolicy"] = json!("Default");
            spec["priorityClassName"] = json!("system-cluster-critical");
            spec
        };
        let mut pod_labels = dns_labels.clone();
        pod_labels["pod-template-hash"] = json!(hash);
        for i in 0..2 {
            let mut pod = self.pod(
                &app,
                app.version,
                &rs_name,
                &rs_uid,
                &hash,
                i,
                PodState::Healthy,
            );
            pod["metadata"]["labels"] = pod_labels.clone();
            let node = pod["spec"]["nodeName"].clone();
            let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
            pod["spec"] = admitted_pod_spec(spec.clone(), node.as_str().unwrap_or(""), &name);
            pod["spec"]["priority"] = json!(2_000_000_000);
            let status = &mut pod["status"]["containerStatuses"][0];
            status["name"] = json!("coredns");
            status["image"] = json!(image);
            status["imageID"] = json!(format!(
                "registry.k8s.io/coredns/coredns@sha256:{}",
                digest(image)
            ));
            self.push(pod);
        }
        self.push(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": "2",
                    "deployment.kubernetes.io/max-replicas": "3",
                    "deployment.kubernetes.io/revision": "1",
                },
                "creationTimestamp": self.at(app.rolled_out),
                "generation": 1,
                "labels": pod_labels,
                "name": rs_name,
                "namespace": app.namespace,
                "ownerReferences": owner("apps/v1", "Deployment", app.name, &deployment_uid),
                "uid": rs_uid,
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": pod_labels},
                "template": {"metadata": {"creationTimestamp": null, "labels": pod_labels}, "spec": spec},
            },
            "status": {"availableReplicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1, "readyReplicas": 2, "replicas": 2},
        }));
        let available = self.at(app.rolled_out - minutes(1));
        self.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "creationTimestamp": self.at(app.age),
                "generation": 1,
                "labels": {"k8s-app": "kube-dns"},
                "name": "coredns",
                "namespace": "kube-system",
                "uid": deployment_uid,
            },
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 2,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": dns_labels},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}, "type": "RollingUpdate"},
                "template": {"metadata": {"creationTimestamp": null, "labels": dns_labels}, "spec": spec},
            },
            "status": {
                "availableReplicas": 2,
                "conditions": [
                    {"lastTransitionTime": available, "lastUpdateTime": available, "message": "Deployment has minimum availability.", "reason": "MinimumReplicasAvailable", "status": "True", "type": "Available"},
                    {"lastTransitionTime": self.at(app.age), "lastUpdateTime": available, "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."), "reason": "NewReplicaSetAvailable", "status": "True", "type": "Progressing"},
                ],
                "observedGeneration": 1,
                "readyReplicas": 2,
                "replicas": 2,
                "updatedReplicas": 2,
            },
        }));
        self.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
                "creationTimestamp": self.at(app.age),
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                "name": "kube-dns",
                "namespace": "kube-system",
                "uid": self.uid("Service", "kube-system", "kube-dns"),
            },
            "spec": {
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
                "selector": {"k8s-app": "kube-dns"},
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        }));
    }
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The patch release before `version` (`2.14.3` -> `2.14.2`, `2.15.0` ->
/// `2.14.9`), for the scaled-down previous ReplicaSet.
fn older_version(version: &str) -> String {
    let base = version.split('-').next().unwrap_or(version);
    let parts: Vec<u64> = base.split('.').filter_map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [major, minor, patch] if *patch > 0 => format!("{major}.{minor}.{}", patch - 1),
        [major, minor, 0] if *minor > 0 => format!("{major}.{}.9", minor - 1),
        _ => format!("{base}-previous"),
    }
}

fn prod_eu(cluster: &mut Cluster<'_>) {
    let payment_gateway = App {
        revision: 7,
        replicas: 3,
        pods: &[PodState::Healthy; 3],
        rolled_out: days(3) + hours(4),
        age: days(214),
        cpu: "500m",
        ..App::new(
            "payment-gateway",
            "payments",
            "payments",
            "payments/payment-gateway",
            "2.14.3",
        )
    };
    cluster.app(&payment_gateway);
    cluster.ingress(&payment_gateway, "pay.brightwharf.example", "203.0.113.24");
    cluster.autoscaler(&payment_gateway, 3, 10, 70, 48, 3, 3);

    let ledger = App {
        revision: 12,
        replicas: 2,
        pods: &[
            PodState::Healthy,
            PodState::CrashLoop {
                restarts: 14,
                exit_code: 1,
            },
        ],
        rolled_out: days(6) + hours(2),
        age: days(388),
        ..App::new(
            "ledger-service",
            "payments",
            "payments",
            "payments/ledger-service",
            "4.2.0",
        )
    };
    cluster.app(&ledger);
    cluster.reconciliation("1.8.0", 2, false);

    let booking = App {
        revision: 21,
        replicas: 3,
        pods: &[
            PodState::Healthy,
            PodState::OomKilled { restarts: 6 },
            PodState::Healthy,
        ],
        rolled_out: days(4) + hours(7),
        age: days(301),
        memory: "384Mi",
        memory_limit: "512Mi",
        ..App::new(
            "booking-service",
            "shipping",
            "booking",
            "shipping/booking-service",
            "3.8.2",
        )
    };
    cluster.app(&booking);
    cluster.autoscaler(&booking, 2, 3, 75, 91, 3, 3);

    let label = App {
        revision: 5,
        replicas: 2,
        pods: &[PodState::ImagePullBackOff],
        rolling_from: Some("5.1.9"),
        stuck: true,
        rolled_out: minutes(47),
        age: days(150),
        ..App::new(
            "label-service",
            "shipping",
            "labels",
            "shipping/label-service",
            "5.2.O",
        )
    };
    cluster.app(&label);

    let tracking = App {
        revision: 33,
        replicas: 4,
        pods: &[
            PodState::Healthy,
            PodState::Healthy,
            PodState::NotReady { minutes: 38 },
            PodState::Healthy,
        ],
        rolled_out: days(1) + hours(9),
        age: days(260),
        ..App::new(
            "tracking-service",
            "tracking",
            "tracking",
            "tracking/tracking-service",
            "7.0.4",
        )
    };
    cluster.app(&tracking);
    cluster.ingress(&tracking, "track.brightwharf.example", "203.0.113.24");

    cluster.coredns();
}

fn staging(cluster: &mut Cluster<'_>) {
    let payment_gateway = App {
        revision: 9,
        rolled_out: hours(20),
        age: days(214),
        ..App::new(
            "payment-gateway",
            "payments",
            "payments",
            "payments/payment-gateway",
            "2.15.0-rc.2",
        )
    };
    cluster.app(&payment_gateway);

    let ledger = App {
        revision: 15,
        rolled_out: days(2),
        age: days(388),
        ..App::new(
            "ledger-service",
            "payments",
            "payments",
            "payments/ledger-service",
            "4.3.0-rc.1",
        )
    };
    cluster.app(&ledger);
    cluster.reconciliation("1.9.0-rc.1", 1, true);

    let booking = App {
        revision: 24,
        pods: &[PodState::ErrImagePull],
        rolling_from: Some("3.8.2"),
        rolled_out: minutes(3),
        age: days(301),
        ..App::new(
            "booking-service",
            "shipping",
            "booking",
            "shipping/booking-service",
            "3.9.0-rc.1",
        )
    };
    cluster.app(&booking);

    let label = App {
        revision: 6,
        pods: &[PodState::Flapping { restarts: 38 }],
        rolled_out: days(2) + hours(5),
        age: days(150),
        ..App::new(
            "label-service",
            "shipping",
            "labels",
            "shipping/label-service",
            "5.1.9",
        )
    };
    cluster.app(&label);

    let tracking = App {
        revision: 40,
        rolled_out: hours(30),
        age: days(260),
        ..App::new(
            "tracking-service",
            "tracking",
            "tracking",
            "tracking/tracking-service",
            "7.1.0-rc.3",
        )
    };
    cluster.app(&tracking);
    cluster.ingress(
        &tracking,
        "track.staging.brightwharf.example",
        "203.0.113.80",
    );

    cluster.coredns();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_clusters_build() {
        let clusters = demo_clusters();
        assert_eq!(clusters.len(), 2);
        for (name, objects) in &clusters {
            assert!(objects.len() > 30, "{name}: {}", objects.len());
        }
        assert!(demo_cluster("nowhere").is_none());
    }

    #[test]
    fn same_names_every_run() {
        let a = demo_cluster_at("prod-eu", Timestamp::UNIX_EPOCH + days(20_000)).unwrap();
        let b = demo_cluster_at("prod-eu", Timestamp::UNIX_EPOCH + days(20_001)).unwrap();
        let names = |o: &Objects| {
            o.iter()
                .map(|v| v["metadata"]["name"].as_str().unwrap_or("").to_owned())
                .filter(|n| !n.starts_with("reconciliation-job-"))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
    }

    #[test]
    fn older_versions() {
        assert_eq!(older_version("2.14.3"), "2.14.2");
        assert_eq!(older_version("2.15.0-rc.2"), "2.14.9");
        assert_eq!(older_version("1.0.0"), "1.0.0-previous");
    }
}
