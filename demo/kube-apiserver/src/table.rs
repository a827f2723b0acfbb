//! Server-side printing: the `meta.k8s.io` `Table` the API server answers
//! when a client asks for `application/json;as=Table` (as `kubectl get`
//! does for its human-readable output). Columns and cells follow the API
//! server's printers (`pkg/printers/internalversion`, Kubernetes 1.31): the
//! server always sends the wide columns (priority 1), the client hides them
//! unless `-o wide`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::objects::ResourceType;

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

fn column(name: &str, kind: &str, priority: u8, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "format": if name == "Name" { "name" } else { "" },
        "description": description,
        "priority": priority,
    })
}

/// The column definitions for a resource type.
pub(crate) fn columns(resource: &ResourceType) -> Vec<Value> {
    let name = column("Name", "string", 0, NAME_DOC);
    let age = column("Age", "string", 0, AGE_DOC);
    let containers = column("Containers", "string", 1, CONTAINERS_DOC);
    let images = column("Images", "string", 1, IMAGES_DOC);
    let selector = |doc: &str| column("Selector", "string", 1, doc);
    match resource.kind {
        "Pod" => vec![
            name,
            column(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            column(
                "IP",
                "string",
                1,
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            column(
                "Node",
                "string",
                1,
                "NodeName indicates in which node this pod is scheduled.",
            ),
            column(
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            column(
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "Service" => vec![
            name,
            column(
                "Type",
                "string",
                0,
                "type determines how the Service is exposed.",
            ),
            column(
                "Cluster-IP",
                "string",
                0,
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            column(
                "External-IP",
                "string",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            column(
                "Port(s)",
                "string",
                0,
                "The list of ports that are exposed by this service.",
            ),
            age,
            column(
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        "Deployment" => vec![
            name,
            column("Ready", "string", 0, "Number of the pod with ready state"),
            column(
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
            ),
            column(
                "Available",
                "string",
                0,
                "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age,
            containers,
            images,
            selector(
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        "ReplicaSet" => vec![
            name,
            column(
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired pods.",
            ),
            column(
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of non-terminating pods.",
            ),
            column(
                "Ready",
                "integer",
                0,
                "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
            ),
            age,
            containers,
            images,
            selector("Selector is a label query over pods that should match the replica count."),
        ],
        "HorizontalPodAutoscaler" => vec![
            name,
            column(
                "Reference",
                "string",
                0,
                "scaleTargetRef points to the target resource to scale.",
            ),
            column(
                "Targets",
                "string",
                0,
                "metrics contains the specifications for which to use to calculate the desired replica count.",
            ),
            column(
                "MinPods",
                "string",
                0,
                "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
            ),
            column(
                "MaxPods",
                "string",
                0,
                "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
            ),
            column(
                "Replicas",
                "string",
                0,
                "currentReplicas is current number of replicas of pods managed by this autoscaler.",
            ),
            age,
        ],
        "Job" => vec![
            name,
            column("Status", "string", 0, "Status of the job."),
            column(
                "Completions",
                "string",
                0,
                "The number of pods which reached phase Succeeded.",
            ),
            column(
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            age,
            containers,
            images,
            selector("A label query over pods that should match the pod count."),
        ],
        "CronJob" => vec![
            name,
            column("Schedule", "string", 0, "The schedule in Cron format."),
            column(
                "Timezone",
                "string",
                0,
                "The time zone name for the given schedule.",
            ),
            column(
                "Suspend",
                "boolean",
                0,
                "This flag tells the controller to suspend subsequent executions.",
            ),
            column(
                "Active",
                "integer",
                0,
                "A list of pointers to currently running jobs.",
            ),
            column(
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
            ),
            age,
            containers,
            images,
            selector("A label query over pods that should match the pod count."),
        ],
        "Ingress" => vec![
            name,
            column(
                "Class",
                "string",
                0,
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            column(
                "Hosts",
                "string",
                0,
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            column(
                "Address",
                "string",
                0,
                "Address is a list containing ingress points for the load-balancer",
            ),
            column(
                "Ports",
                "string",
                0,
                "Ports of TLS configurations that open",
            ),
            age,
        ],
        "Namespace" => vec![
            name,
            column("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        _ => vec![name, age],
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn array<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn timestamp(object: &Value, pointer: &str) -> Option<Timestamp> {
    object.pointer(pointer)?.as_str()?.parse().ok()
}

fn age(object: &Value, pointer: &str, now: Timestamp) -> String {
    match timestamp(object, pointer) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_owned(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub(crate) fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `k8s=v,...` sorted by key, or `<none>`.
fn format_labels(map: Option<&Value>) -> String {
    let pairs: BTreeMap<&str, &str> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_owned();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: matchLabels and matchExpressions as one
/// selector string, requirements sorted by key.
fn format_label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return "<none>".to_owned();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = text(expression, "/key").to_owned();
        let mut values: Vec<&str> = array(expression, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let requirement = match text(expression, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        requirements.push((key, requirement));
    }
    requirements.sort();
    let text = requirements
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",");
    if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    }
}

/// Container names and images, comma-joined.
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn has_condition(object: &Value, kind: &str) -> bool {
    array(object, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == kind && text(c, "/status") == "True")
}

/// The row's cells for one object.
pub(crate) fn cells(resource: &ResourceType, object: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(text(object, "/metadata/name"));
    let created = age(object, "/metadata/creationTimestamp", now);
    match resource.kind {
        "Pod" => pod_cells(object, now),
        "Service" => {
            let cluster_ip = array(object, "/spec/clusterIPs")
                .first()
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let external = service_external_ip(object);
            let ports: Vec<String> = array(object, "/spec/ports")
                .iter()
                .map(|p| {
                    let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(node_port) if node_port > 0 => {
                            format!("{}:{node_port}/{protocol}", int(p, "/port"))
                        }
                        _ => format!("{}/{protocol}", int(p, "/port")),
                    }
                })
                .collect();
            let ports = if ports.is_empty() {
                "<none>".to_owned()
            } else {
                ports.join(",")
            };
            vec![
                name,
                json!(text(object, "/spec/type")),
                json!(cluster_ip),
                json!(external),
                json!(ports),
                json!(created),
                json!(format_labels(object.pointer("/spec/selector"))),
            ]
        }
        "Deployment" => {
            let (names, images) = container_cells(array(object, "/spec/template/spec/containers"));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(object, "/status/readyReplicas"),
                    object
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                )),
                json!(int(object, "/status/updatedReplicas")),
                json!(int(object, "/status/availableReplicas")),
                json!(created),
                json!(names),
                json!(images),
                json!(format_label_selector(object.pointer("/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let (names, images) = container_cells(array(object, "/spec/template/spec/containers"));
            vec![
                name,
                json!(
                    object
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ),
                json!(int(object, "/status/replicas")),
                json!(int(object, "/status/readyReplicas")),
                json!(created),
                json!(names),
                json!(images),
                json!(format_label_selector(object.pointer("/spec/selector"))),
            ]
        }
        "HorizontalPodAutoscaler" => {
            let reference = format!(
                "{}/{}",
                text(object, "/spec/scaleTargetRef/kind"),
                text(object, "/spec/scaleTargetRef/name")
            );
            vec![
                name,
                json!(reference),
                json!(hpa_targets(object)),
                json!(
                    object
                        .pointer("/spec/minReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ),
                json!(int(object, "/spec/maxReplicas")),
                json!(int(object, "/status/currentReplicas")),
                json!(created),
            ]
        }
        "Job" => {
            let (names, images) = container_cells(array(object, "/spec/template/spec/containers"));
            let status = if has_condition(object, "Complete") {
                "Complete"
            } else if has_condition(object, "Failed") {
                "Failed"
            } else if object.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else if has_condition(object, "Suspended") {
                "Suspended"
            } else if has_condition(object, "FailureTarget") {
                "FailureTarget"
            } else if has_condition(object, "SuccessCriteriaMet") {
                "SuccessCriteriaMet"
            } else {
                "Running"
            };
            let succeeded = int(object, "/status/succeeded");
            let completions = match object.pointer("/spec/completions").and_then(Value::as_i64) {
                Some(c) => format!("{succeeded}/{c}"),
                None => {
                    let parallelism = int(object, "/spec/parallelism");
                    if parallelism > 1 {
                        format!("{succeeded}/1 of {parallelism}")
                    } else {
                        format!("{succeeded}/1")
                    }
                }
            };
            let duration = match (
                timestamp(object, "/status/startTime"),
                timestamp(object, "/status/completionTime"),
            ) {
                (None, _) => String::new(),
                (Some(start), None) => human_duration(now.duration_since(start)),
                (Some(start), Some(end)) => human_duration(end.duration_since(start)),
            };
            vec![
                name,
                json!(status),
                json!(completions),
                json!(duration),
                json!(created),
                json!(names),
                json!(images),
                json!(format_label_selector(object.pointer("/spec/selector"))),
            ]
        }
        "CronJob" => {
            let (names, images) = container_cells(array(
                object,
                "/spec/jobTemplate/spec/template/spec/containers",
            ));
            let last = match timestamp(object, "/status/lastScheduleTime") {
                Some(t) => human_duration(now.duration_since(t)),
                None => "<none>".to_owned(),
            };
            let suspend = match object.pointer("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let zone = object
                .pointer("/spec/timeZone")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            vec![
                name,
                json!(text(object, "/spec/schedule")),
                json!(zone),
                json!(suspend),
                json!(array(object, "/status/active").len()),
                json!(last),
                json!(created),
                json!(names),
                json!(images),
                json!(format_label_selector(
                    object.pointer("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        "Ingress" => {
            let class = object
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let rules = array(object, "/spec/rules");
            let hosts: Vec<&str> = rules
                .iter()
                .take(3)
                .map(|r| text(r, "/host"))
                .filter(|h| !h.is_empty())
                .collect();
            let hosts = if hosts.is_empty() {
                "*".to_owned()
            } else if rules.len() > 3 {
                format!("{} + {} more...", hosts.join(","), rules.len() - 3)
            } else {
                hosts.join(",")
            };
            let address = load_balancer(object.pointer("/status/loadBalancer/ingress"));
            let ports = if array(object, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                json!(class),
                json!(hosts),
                json!(address),
                json!(ports),
                json!(created),
            ]
        }
        "Namespace" => vec![name, json!(text(object, "/status/phase")), json!(created)],
        _ => vec![name, json!(created)],
    }
}

/// The row conditions the API server sets: completed pods are marked so.
pub(crate) fn row_conditions(resource: &ResourceType, object: &Value) -> Option<Value> {
    if resource.kind != "Pod" {
        return None;
    }
    match text(object, "/status/phase") {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    }
}

fn load_balancer(ingress: Option<&Value>) -> String {
    let mut addresses: Vec<&str> = ingress
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| i.get("hostname").and_then(Value::as_str))
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.join(",")
}

fn service_external_ip(object: &Value) -> String {
    let external: Vec<&str> = array(object, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(object, "/spec/type") {
        "ClusterIP" | "NodePort" | "" => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer(object.pointer("/status/loadBalancer/ingress"));
            let mut all: Vec<String> = Vec::new();
            if !lb.is_empty() {
                all.extend(lb.split(',').map(str::to_owned));
            }
            all.extend(external.iter().map(|s| (*s).to_owned()));
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(object, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

fn hpa_targets(object: &Value) -> String {
    let specs = array(object, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let statuses = array(object, "/status/currentMetrics");
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let entry = match text(spec, "/type") {
            "Resource" | "ContainerResource" => {
                let source = if text(spec, "/type") == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = text(spec, &format!("/{source}/name"));
                let target = spec.pointer(&format!("/{source}/target"));
                let current = status.and_then(|s| s.pointer(&format!("/{source}/current")));
                match target
                    .and_then(|t| t.get("averageValue"))
                    .and_then(Value::as_str)
                {
                    Some(value) => {
                        let now = current
                            .and_then(|c| c.get("averageValue"))
                            .and_then(Value::as_str)
                            .unwrap_or("<unknown>");
                        format!("{resource}: {now}/{value}")
                    }
                    None => {
                        let now = current
                            .and_then(|c| c.get("averageUtilization"))
                            .and_then(Value::as_i64)
                            .map(|u| format!("{u}%"))
                            .unwrap_or_else(|| "<unknown>".to_owned());
                        let want = target
                            .and_then(|t| t.get("averageUtilization"))
                            .and_then(Value::as_i64)
                            .map(|u| format!("{u}%"))
                            .unwrap_or_else(|| "<auto>".to_owned());
                        format!("{resource}: {now}/{want}")
                    }
                }
            }
            "Pods" | "Object" | "External" => {
                let source = match text(spec, "/type") {
                    "Pods" => "pods",
                    "Object" => "object",
                    _ => "external",
                };
                let value = |v: Option<&Value>| {
                    v.and_then(|t| {
                        t.get("averageValue")
                            .or_else(|| t.get("value"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                };
                let want = value(spec.pointer(&format!("/{source}/target")))
                    .unwrap_or_else(|| "<auto>".to_owned());
                let now = value(status.and_then(|s| s.pointer(&format!("/{source}/current"))))
                    .unwrap_or_else(|| "<unknown>".to_owned());
                format!("{now}/{want}")
            }
            _ => "<unknown type>".to_owned(),
        };
        list.push(entry);
    }
    if list.len() > 2 {
        let more = list.len() - 2;
        list.truncate(2);
        format!("{} + {more} more...", list.join(", "))
    } else {
        list.join(", ")
    }
}

/// The pod row, as `printPod` computes it: ready count, the status reason
/// (a waiting or terminated container's reason wins over the phase),
/// restarts with the time since the last one.
fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let total = array(pod, "/spec/containers").len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut reason = text(pod, "/status/phase").to_owned();
    if let Some(r) = pod
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        reason = r.to_owned();
    }
    let note_restart = |status: &Value, last: &mut Option<Timestamp>| {
        if let Some(finished) = timestamp(status, "/lastState/terminated/finishedAt")
            && last.is_none_or(|l| l < finished)
        {
            *last = Some(finished);
        }
    };
    let mut initializing = false;
    let init_total = array(pod, "/spec/initContainers").len();
    for (i, status) in array(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int(status, "/restartCount");
        note_restart(status, &mut last_restart);
        let terminated = status.pointer("/state/terminated");
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated.is_some() && int(status, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if let Some(terminated) = terminated {
            let r = text(terminated, "/reason");
            reason = if r.is_empty() {
                match int(terminated, "/signal") {
                    0 => format!("Init:ExitCode:{}", int(terminated, "/exitCode")),
                    signal => format!("Init:Signal:{signal}"),
                }
            } else {
                format!("Init:{r}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        restarts = 0;
        last_restart = None;
        let mut has_running = false;
        for status in array(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount");
            note_restart(status, &mut last_restart);
            let waiting = text(status, "/state/waiting/reason");
            let terminated = status.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(terminated) = terminated {
                let r = text(terminated, "/reason");
                reason = if !r.is_empty() {
                    r.to_owned()
                } else {
                    match int(terminated, "/signal") {
                        0 => format!("ExitCode:{}", int(terminated, "/exitCode")),
                        signal => format!("Signal:{signal}"),
                    }
                };
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && status.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if text(pod, "/status/reason") == "NodeLost" {
            "Unknown".to_owned()
        } else {
            "Terminating".to_owned()
        };
    }
    let restarts = match last_restart {
        Some(at) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                human_duration(now.duration_since(at))
            )
        }
        _ => restarts.to_string(),
    };
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_owned()
        } else {
            s.to_owned()
        }
    };
    let ip = array(pod, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .unwrap_or("");
    let gates = array(pod, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let conditions = array(pod, "/status/conditions");
        let met = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == text(g, "/conditionType"))
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(text(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(pod, "/metadata/creationTimestamp", now)),
        json!(or_none(ip)),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(gates),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_like_kubectl() {
        let d = |s: i64| human_duration(SignedDuration::from_secs(s));
        assert_eq!(d(-5), "<invalid>");
        assert_eq!(d(0), "0s");
        assert_eq!(d(119), "119s");
        assert_eq!(d(150), "2m30s");
        assert_eq!(d(600), "10m");
        assert_eq!(d(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(d(9 * 3600), "9h");
        assert_eq!(d(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(d(30 * 86400), "30d");
        assert_eq!(d(3 * 365 * 86400), "3y");
    }

    #[test]
    fn label_selectors_format_sorted() {
        let selector = json!({
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]}],
        });
        assert_eq!(format_label_selector(Some(&selector)), "a=1,b=2,c in (x,y)");
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
    }
}
