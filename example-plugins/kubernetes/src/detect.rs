//! Health first: what is failing, why, and what to do about it, as
//! Backstage's error detection (`kubernetes-common/src/error-detection`)
//! finds it, one error per container or object (the most telling cause),
//! each with a severity, the object, a message and a proposed fix.
//!
//! - pods: a container waiting in `CrashLoopBackOff`, `ImagePullBackOff`,
//!   `ErrImagePull`, `InvalidImageName`, `CreateContainerConfigError`,
//!   `CreateContainerError`; last killed `OOMKilled`; running but failing
//!   its readiness probe past its start-up allowance; restarted at least
//!   `restart_threshold` times; a pod that cannot be scheduled;
//! - deployments: a rollout past its progress deadline
//!   (`ProgressDeadlineExceeded`), fewer replicas available than needed,
//!   pods that cannot be created (`ReplicaFailure`);
//! - autoscalers: at their maximum replicas, or unable to read metrics;
//! - jobs: failed (unless a newer run of the same CronJob completed).

use serde_json::{Value, json};

use crate::{kinds::Kind, model::Resources};

/// Kubernetes' defaults for a readiness probe's period and failure threshold.
const DEFAULT_PROBE_PERIOD_SECS: i64 = 10;
const DEFAULT_PROBE_FAILURES: i64 = 3;

const DOCS_IMAGES: &str = "https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff";
const DOCS_MEMORY: &str = "https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/#exceed-a-container-s-memory-limit";
const DOCS_CONFIG: &str =
    "https://kubernetes.io/docs/tasks/configure-pod-container/configure-pod-configmap/";
const DOCS_PROBES: &str = "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/";
const DOCS_DEPLOYMENT: &str =
    "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment";
const DOCS_HPA: &str = "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/";

/// One problem found on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// What kind of problem: `CrashLoopBackOff`, `OOMKilled`,
    /// `ReadinessProbeFailed`, `ProgressDeadlineExceeded`, ...
    pub error_type: String,
    /// 0 (minor) to 10 (critical), as Backstage's `ErrorSeverity`.
    pub severity: u8,
    /// The object's kind.
    pub kind: Kind,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The container, for pod problems.
    pub container: Option<String>,
    /// The workload it belongs to, `deployment/<name>`, `cronjob/<name>`...
    pub workload: String,
    /// What is wrong, in the cluster's words where it has them.
    pub message: String,
    /// Why it happens.
    pub root_cause: String,
    /// What to do, in order.
    pub actions: Vec<String>,
    /// Where to read more.
    pub docs_link: Option<String>,
    /// How many times it happened (restarts, for restarting containers).
    pub occurrences: i64,
}

impl Detected {
    /// `pod payments/ledger-7f9-x2x (container ledger)`.
    pub fn object(&self) -> String {
        let mut text = format!(
            "{} {}/{}",
            self.kind.kind().to_ascii_lowercase(),
            self.namespace,
            self.name
        );
        if let Some(c) = &self.container {
            text.push_str(&format!(" (container {c})"));
        }
        text
    }

    /// The proposed fix as one text: the root cause, then the actions.
    pub fn fix(&self) -> String {
        let mut text = format!(
            "{} Proposed fix: {}",
            self.root_cause,
            self.actions.join(" ")
        );
        if let Some(link) = &self.docs_link {
            text.push_str(&format!(" See {link}"));
        }
        text
    }

    /// Backstage's `DetectedError`.
    pub fn backstage(&self) -> Value {
        let mut fix = json!({
            "errorType": self.error_type,
            "rootCauseExplanation": self.root_cause,
            "actions": self.actions,
        });
        if let Some(link) = &self.docs_link {
            fix["type"] = json!("docs");
            fix["docsLink"] = json!(link);
        } else if let Some(container) = &self.container {
            fix["type"] = json!("logs");
            fix["container"] = json!(container);
        } else {
            fix["type"] = json!("events");
            fix["podName"] = json!(self.name);
        }
        json!({
            "type": self.error_type,
            "severity": self.severity,
            "message": self.message,
            "proposedFix": fix,
            "sourceRef": {
                "name": self.name,
                "namespace": self.namespace,
                "kind": self.kind.kind(),
                "apiGroup": self.kind.api_version(),
            },
            "occurrenceCount": self.occurrences,
        })
    }
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn seconds(value: &Value) -> Option<i64> {
    value
        .as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Every problem in `resources`, most severe first (pods, the causes,
/// before the workloads they fail). `now` is seconds
/// since the epoch; `restart_threshold` the restarts that count.
pub fn detect(resources: &Resources, now: i64, restart_threshold: i64) -> Vec<Detected> {
    let mut found = Vec::new();
    for pod in resources.get(Kind::Pods) {
        found.extend(pod_errors(pod, now, restart_threshold));
    }
    for deployment in resources.get(Kind::Deployments) {
        found.extend(deployment_errors(deployment));
    }
    for hpa in resources.get(Kind::Hpas) {
        found.extend(hpa_errors(hpa));
    }
    let jobs = resources.get(Kind::Jobs);
    for job in jobs {
        found.extend(job_errors(job, jobs));
    }
    found.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.namespace.cmp(&b.namespace))
            .then_with(|| a.name.cmp(&b.name))
    });
    found
}

fn meta(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        object["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// `deployment/<name>` for a pod of a ReplicaSet, `job/<name>`, ... or the pod.
pub fn pod_workload(pod: &Value) -> String {
    let (_, name) = meta(pod);
    let Some(owner) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.first())
    else {
        return format!("pod/{name}");
    };
    let owner_name = owner["name"].as_str().unwrap_or("");
    match owner["kind"].as_str().unwrap_or("") {
        "ReplicaSet" => {
            let hash = pod["metadata"]["labels"]["pod-template-hash"]
                .as_str()
                .unwrap_or("");
            let deployment = owner_name
                .strip_suffix(hash)
                .and_then(|n| n.strip_suffix('-'))
                .filter(|n| !hash.is_empty() && !n.is_empty());
            match deployment {
                Some(d) => format!("deployment/{d}"),
                None => format!("replicaset/{owner_name}"),
            }
        }
        kind => format!("{}/{owner_name}", kind.to_ascii_lowercase()),
    }
}

/// The spec of container `name` of a pod.
fn container_spec<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
}

fn pod_errors(pod: &Value, now: i64, restart_threshold: i64) -> Vec<Detected> {
    let (namespace, name) = meta(pod);
    let workload = pod_workload(pod);
    let mut found = Vec::new();
    let error = |error_type: &str,
                 severity: u8,
                 container: Option<&str>,
                 message: String,
                 root_cause: String,
                 actions: Vec<String>,
                 docs: Option<&str>,
                 occurrences: i64| Detected {
        error_type: error_type.to_owned(),
        severity,
        kind: Kind::Pods,
        namespace: namespace.clone(),
        name: name.clone(),
        container: container.map(str::to_owned),
        workload: workload.clone(),
        message,
        root_cause,
        actions,
        docs_link: docs.map(str::to_owned),
        occurrences,
    };
    let logs = |c: &str, previous: bool| {
        format!(
            "Read the container's logs: kubectl logs -n {namespace} {name} -c {c}{}.",
            if previous { " --previous" } else { "" }
        )
    };

    // A pod no node can take.
    let unschedulable = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c["type"] == "PodScheduled" && c["status"] == "False" && c["reason"] == "Unschedulable"
        });
    if let Some(condition) = unschedulable {
        found.push(error(
            "Unschedulable",
            6,
            None,
            condition["message"]
                .as_str()
                .unwrap_or("no node can run the pod")
                .to_owned(),
            "The scheduler finds no node with room for the pod's requests that also meets its node selector, affinity and tolerations.".to_owned(),
            vec![
                "Lower the pod's CPU and memory requests, or add nodes.".to_owned(),
                format!("Check its node selector, affinity and tolerations: kubectl describe pod -n {namespace} {name}."),
            ],
            None,
            1,
        ));
    }

    for cs in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let c = cs["name"].as_str().unwrap_or("?");
        let restarts = cs["restartCount"].as_i64().unwrap_or(0);
        let waiting = &cs["state"]["waiting"];
        let last = &cs["lastState"]["terminated"];
        let image = cs["image"]
            .as_str()
            .or_else(|| container_spec(pod, c).and_then(|s| s["image"].as_str()))
            .unwrap_or("?");
        let limit = container_spec(pod, c)
            .and_then(|s| s["resources"]["limits"]["memory"].as_str())
            .map(str::to_owned);
        let waiting_message = waiting["message"].as_str().map(str::to_owned);
        let last_reason = last["reason"].as_str();
        let last_exit = last["exitCode"].as_i64();
        match waiting["reason"].as_str() {
            Some("CrashLoopBackOff") => {
                let oom = last_reason == Some("OOMKilled");
                let mut actions = vec![logs(c, true)];
                if oom {
                    actions.push(format!(
                        "It ran out of memory: raise resources.limits.memory{} or bound the application's memory use.",
                        limit.as_deref().map(|l| format!(" (now {l})")).unwrap_or_default()
                    ));
                } else {
                    actions.push(
                        "Fix what makes it exit (a stack trace, missing configuration, an unreachable dependency) and roll out again."
                            .to_owned(),
                    );
                }
                found.push(error(
                    "CrashLoopBackOff",
                    8,
                    Some(c),
                    waiting_message.unwrap_or_else(|| format!("container {c} is crash-looping")),
                    format!(
                        "The container {c} has crashed {restarts} times{}; Kubernetes restarts it with a growing back-off until it stops crashing.",
                        match (last_reason, last_exit) {
                            (Some(reason), Some(code)) => format!(" (last run: {reason}, exit code {code})"),
                            (Some(reason), None) => format!(" (last run: {reason})"),
                            (None, Some(code)) => format!(" (last exit code {code})"),
                            (None, None) => String::new(),
                        }
                    ),
                    actions,
                    oom.then_some(DOCS_MEMORY),
                    restarts.max(1),
                ));
                continue;
            }
            Some(reason @ ("ImagePullBackOff" | "ErrImagePull")) => {
                found.push(error(
                    reason,
                    7,
                    Some(c),
                    waiting_message.unwrap_or_else(|| format!("cannot pull image {image}")),
                    format!(
                        "The image {image} cannot be pulled: the name or tag does not exist, or the cluster may not pull from its registry."
                    ),
                    vec![
                        format!("Check that the image name and tag are right ({image})."),
                        "Check that the node can pull from the registry: its imagePullSecrets and the registry's credentials.".to_owned(),
                    ],
                    Some(DOCS_IMAGES),
                    1,
                ));
                continue;
            }
            Some("InvalidImageName") => {
                found.push(error(
                    "InvalidImageName",
                    7,
                    Some(c),
                    waiting_message.unwrap_or_else(|| format!("invalid image name {image}")),
                    format!("The image reference {image} is not a valid image name."),
                    vec!["Fix the image reference in the workload's pod template.".to_owned()],
                    Some(DOCS_IMAGES),
                    1,
                ));
                continue;
            }
            Some(reason @ ("CreateContainerConfigError" | "CreateContainerError")) => {
                found.push(error(
                    reason,
                    7,
                    Some(c),
                    waiting_message.unwrap_or_else(|| format!("container {c} cannot be created")),
                    "Configuration the container needs is missing or does not match: a ConfigMap, a Secret or a key in one of them.".to_owned(),
                    vec![
                        "Check that the ConfigMaps and Secrets the pod template references exist, with the keys it names.".to_owned(),
                        format!("Read the pod's events: kubectl describe pod -n {namespace} {name}."),
                    ],
                    Some(DOCS_CONFIG),
                    1,
                ));
                continue;
            }
            _ => {}
        }
        if last_reason == Some("OOMKilled") && restarts > 0 {
            found.push(error(
                "OOMKilled",
                7,
                Some(c),
                format!(
                    "container {c} was killed for running out of memory (OOMKilled); restarted {restarts} times"
                ),
                format!(
                    "The container {c} tried to use more memory than its limit{} and was killed.",
                    limit.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
                ),
                vec![
                    format!(
                        "Raise the container's memory limit (resources.limits.memory{}).",
                        limit.as_deref().map(|l| format!(", now {l}")).unwrap_or_default()
                    ),
                    "Or bound the application's memory use (heap size, caches, batch sizes).".to_owned(),
                ],
                Some(DOCS_MEMORY),
                restarts,
            ));
            continue;
        }
        if let Some(started) = seconds(&cs["state"]["running"]["startedAt"])
            && cs["ready"] == false
            && let Some(probe) = container_spec(pod, c).map(|s| &s["readinessProbe"])
            && probe.is_object()
        {
            let allowance = probe["initialDelaySeconds"].as_i64().unwrap_or(0)
                + probe["periodSeconds"]
                    .as_i64()
                    .unwrap_or(DEFAULT_PROBE_PERIOD_SECS)
                    * probe["failureThreshold"]
                        .as_i64()
                        .unwrap_or(DEFAULT_PROBE_FAILURES);
            if started + allowance < now {
                let check = probe_text(probe);
                found.push(error(
                    "ReadinessProbeFailed",
                    5,
                    Some(c),
                    format!(
                        "container {c} is running but not ready: its readiness probe ({check}) has been failing"
                    ),
                    format!(
                        "The container {c} started but does not pass its readiness probe, so it gets no traffic; it is not crashing."
                    ),
                    vec![
                        format!("Check what the probe asks ({check}) answers inside the container."),
                        logs(c, false),
                        "Check the dependencies it waits for before it reports ready.".to_owned(),
                    ],
                    Some(DOCS_PROBES),
                    1,
                ));
                continue;
            }
        }
        if restarts >= restart_threshold {
            found.push(error(
                "Restarting",
                4,
                Some(c),
                format!("container {c} restarted {restarts} times"),
                format!(
                    "The container {c} keeps exiting{}.",
                    match (last_reason, last_exit) {
                        (Some(reason), Some(code)) =>
                            format!(" (last run: {reason}, exit code {code})"),
                        (_, Some(code)) => format!(" (last exit code {code})"),
                        _ => String::new(),
                    }
                ),
                vec![
                    logs(c, true),
                    "Look for a stack trace or a dependency it loses.".to_owned(),
                ],
                None,
                restarts,
            ));
        }
    }
    found
}

/// `GET /ready on port http`, `exec cat /tmp/ready`, `TCP port 5432`.
fn probe_text(probe: &Value) -> String {
    let port = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if probe["httpGet"].is_object() {
        format!(
            "GET {} on port {}",
            probe["httpGet"]["path"].as_str().unwrap_or("/"),
            port(&probe["httpGet"]["port"])
        )
    } else if probe["tcpSocket"].is_object() {
        format!("TCP port {}", port(&probe["tcpSocket"]["port"]))
    } else if let Some(command) = probe["exec"]["command"].as_array() {
        format!(
            "exec {}",
            command
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        )
    } else if probe["grpc"].is_object() {
        format!("gRPC port {}", port(&probe["grpc"]["port"]))
    } else {
        "its check".to_owned()
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn deployment_errors(deployment: &Value) -> Vec<Detected> {
    let (namespace, name) = meta(deployment);
    let error =
        |error_type: &str, severity: u8, message: String, root: String, actions: Vec<String>| {
            Detected {
                error_type: error_type.to_owned(),
                severity,
                kind: Kind::Deployments,
                namespace: namespace.clone(),
                name: name.clone(),
                container: None,
                workload: format!("deployment/{name}"),
                message,
                root_cause: root,
                actions,
                docs_link: Some(DOCS_DEPLOYMENT.to_owned()),
                occurrences: 1,
            }
        };
    let status = &deployment["status"];
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let available = status["availableReplicas"].as_i64().unwrap_or(0);
    let mut found = Vec::new();
    if let Some(c) = condition(deployment, "Progressing")
        && c["status"] == "False"
        && c["reason"] == "ProgressDeadlineExceeded"
    {
        let deadline = deployment["spec"]["progressDeadlineSeconds"]
            .as_i64()
            .unwrap_or(600);
        found.push(error(
            "ProgressDeadlineExceeded",
            7,
            format!(
                "rollout stuck: {}",
                c["message"].as_str().unwrap_or("the rollout timed out")
            ),
            format!(
                "The rollout made no progress for {deadline} s: the new pods do not become ready (see their errors)."
            ),
            vec![
                "Fix what keeps the new pods from becoming ready (their errors above) and roll out again.".to_owned(),
                format!("Or roll back: kubectl rollout undo -n {namespace} deployment/{name}."),
            ],
        ));
    }
    if let Some(c) = condition(deployment, "Available")
        && c["status"] == "False"
        && desired > 0
    {
        found.push(error(
            "DeploymentUnavailable",
            6,
            format!(
                "{available} of {desired} replicas available: {}",
                c["message"]
                    .as_str()
                    .unwrap_or("Deployment does not have minimum availability.")
            ),
            "Fewer pods are ready than the deployment needs to be available.".to_owned(),
            vec![
                "Fix the errors of its pods (above).".to_owned(),
                format!("Read its events: kubectl describe -n {namespace} deployment/{name}."),
            ],
        ));
    }
    if let Some(c) = condition(deployment, "ReplicaFailure")
        && c["status"] == "True"
    {
        found.push(error(
            "ReplicaFailure",
            7,
            c["message"]
                .as_str()
                .unwrap_or("pods cannot be created")
                .to_owned(),
            format!(
                "The deployment's pods cannot be created ({}): a quota, a limit range or an admission policy refuses them.",
                c["reason"].as_str().unwrap_or("FailedCreate")
            ),
            vec![
                format!("Read the ReplicaSet's events: kubectl describe -n {namespace} replicaset -l {}.",
                    selector_text(&deployment["spec"]["selector"]["matchLabels"])),
                "Raise the namespace's quota or lower the pods' requests.".to_owned(),
            ],
        ));
    }
    found
}

fn selector_text(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn hpa_errors(hpa: &Value) -> Vec<Detected> {
    let (namespace, name) = meta(hpa);
    let target = hpa["spec"]["scaleTargetRef"]["name"]
        .as_str()
        .unwrap_or(&name)
        .to_owned();
    let error =
        |error_type: &str, severity: u8, message: String, root: String, actions: Vec<String>| {
            Detected {
                error_type: error_type.to_owned(),
                severity,
                kind: Kind::Hpas,
                namespace: namespace.clone(),
                name: name.clone(),
                container: None,
                workload: format!(
                    "{}/{target}",
                    hpa["spec"]["scaleTargetRef"]["kind"]
                        .as_str()
                        .unwrap_or("Deployment")
                        .to_ascii_lowercase()
                ),
                message,
                root_cause: root,
                actions,
                docs_link: Some(DOCS_HPA.to_owned()),
                occurrences: 1,
            }
        };
    let max = hpa["spec"]["maxReplicas"].as_i64().unwrap_or(0);
    let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
    let current = hpa["status"]["currentReplicas"].as_i64().unwrap_or(0);
    let mut found = Vec::new();
    if max > 0 && max > min && current >= max {
        let usage = hpa_usage(hpa);
        found.push(error(
            "HpaAtMaxReplicas",
            5,
            format!(
                "running {current} replicas, the autoscaler's maximum ({max}){}",
                usage.as_deref().map(|u| format!("; {u}")).unwrap_or_default()
            ),
            format!(
                "The load needs more replicas of {target} than the autoscaler may start, so each replica runs above its target."
            ),
            vec![
                format!("Raise spec.maxReplicas of the autoscaler {name} if the load is expected."),
                "Or make each replica handle more (requests and limits, efficiency), or find why the load grew.".to_owned(),
            ],
        ));
    }
    if let Some(c) = condition(hpa, "ScalingActive")
        && c["status"] == "False"
    {
        found.push(error(
            "HpaScalingInactive",
            5,
            c["message"]
                .as_str()
                .unwrap_or("the autoscaler cannot compute a replica count")
                .to_owned(),
            "The autoscaler cannot read the metrics it scales by, so it does not scale.".to_owned(),
            vec![
                "Check that the metrics server (or the metrics adapter) runs and that the pods set resource requests.".to_owned(),
            ],
        ));
    }
    found
}

/// `cpu at 91% of a 75% target`, from the first resource metric.
fn hpa_usage(hpa: &Value) -> Option<String> {
    let metric = hpa["status"]["currentMetrics"].as_array()?.first()?;
    let resource = &metric["resource"];
    let name = resource["name"].as_str()?;
    let current = resource["current"]["averageUtilization"].as_i64()?;
    let target = hpa["spec"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["resource"]["name"] == name)?["resource"]["target"]["averageUtilization"]
        .as_i64()?;
    Some(format!("{name} at {current}% of a {target}% target"))
}

fn job_errors(job: &Value, jobs: &[Value]) -> Vec<Detected> {
    let Some(failed) = condition(job, "Failed").filter(|c| c["status"] == "True") else {
        return Vec::new();
    };
    let (namespace, name) = meta(job);
    let owner = job["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["kind"] == "CronJob"))
        .and_then(|r| r["name"].as_str());
    let started = |j: &Value| {
        seconds(&j["status"]["startTime"]).or_else(|| seconds(&j["metadata"]["creationTimestamp"]))
    };
    // A newer run of the same CronJob that completed: this failure is history.
    if let Some(owner) = owner {
        let this = started(job);
        let superseded = jobs.iter().any(|other| {
            other["metadata"]["namespace"].as_str() == Some(namespace.as_str())
                && other["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| {
                        o.iter()
                            .any(|r| r["kind"] == "CronJob" && r["name"] == owner)
                    })
                && condition(other, "Complete").is_some_and(|c| c["status"] == "True")
                && started(other) > this
        });
        if superseded {
            return Vec::new();
        }
    }
    let failures = job["status"]["failed"].as_i64().unwrap_or(0);
    let reason = failed["reason"].as_str().unwrap_or("Failed");
    vec![Detected {
        error_type: "JobFailed".to_owned(),
        severity: 6,
        kind: Kind::Jobs,
        namespace: namespace.clone(),
        name: name.clone(),
        container: None,
        workload: owner.map_or_else(|| format!("job/{name}"), |o| format!("cronjob/{o}")),
        message: format!(
            "{reason}: {}",
            failed["message"].as_str().unwrap_or("the job failed")
        ),
        root_cause: format!(
            "The job's pods failed {failures} time{} and it gave up.",
            if failures == 1 { "" } else { "s" }
        ),
        actions: vec![
            format!("Read the logs of its failed pods: kubectl logs -n {namespace} job/{name}."),
            match owner {
                Some(o) => format!(
                    "Fix the cause, then run it again: kubectl create job -n {namespace} --from=cronjob/{o} {o}-rerun."
                ),
                None => "Fix the cause, then run it again.".to_owned(),
            },
        ],
        docs_link: None,
        occurrences: failures.max(1),
    }]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const NOW: &str = "2026-05-04T12:00:00Z";

    fn now() -> i64 {
        seconds(&json!(NOW)).unwrap()
    }

    fn resources(kind: Kind, objects: Vec<Value>) -> Resources {
        Resources(BTreeMap::from([(kind, objects)]))
    }

    /// A pod as the API server lists it (less what detection ignores).
    fn pod(name: &str, status: Value) -> Value {
        let mut pod = json!({
            "metadata": {
                "name": name,
                "namespace": "payments",
                "labels": {"backstage.io/kubernetes-id": "ledger-service", "pod-template-hash": "6d4b9c8f7d"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ledger-service-6d4b9c8f7d", "controller": true}],
                "creationTimestamp": "2026-05-02T09:00:00Z",
            },
            "spec": {"containers": [{
                "name": "ledger-service",
                "image": "registry.example/payments/ledger-service:4.2.0",
                "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
            }]},
        });
        pod["status"] = status;
        pod
    }

    fn detect_pod(status: Value) -> Vec<Detected> {
        detect(
            &resources(
                Kind::Pods,
                vec![pod("ledger-service-6d4b9c8f7d-x2x4k", status)],
            ),
            now(),
            5,
        )
    }

    #[test]
    fn crash_loop_back_off() {
        let found = detect_pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "ledger-service", "ready": false, "restartCount": 14, "started": false,
                "image": "registry.example/payments/ledger-service:4.2.0",
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-05-04T11:57:49Z"}},
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=ledger-service pod=ledger-service-6d4b9c8f7d-x2x4k_payments(1234)"}},
            }],
        }));
        assert_eq!(found.len(), 1, "one error for one cause: {found:#?}");
        let e = &found[0];
        assert_eq!(e.error_type, "CrashLoopBackOff");
        assert_eq!(e.severity, 8);
        assert_eq!(e.workload, "deployment/ledger-service");
        assert_eq!(e.container.as_deref(), Some("ledger-service"));
        assert_eq!(e.occurrences, 14);
        assert!(
            e.message
                .starts_with("back-off 5m0s restarting failed container=ledger-service")
        );
        assert!(
            e.root_cause
                .contains("crashed 14 times (last run: Error, exit code 1)"),
            "{}",
            e.root_cause
        );
        assert!(
            e.fix().contains(
                "kubectl logs -n payments ledger-service-6d4b9c8f7d-x2x4k -c ledger-service --previous"
            ),
            "{}",
            e.fix()
        );
        assert_eq!(
            e.object(),
            "pod payments/ledger-service-6d4b9c8f7d-x2x4k (container ledger-service)"
        );
        let b = e.backstage();
        assert_eq!(b["type"], "CrashLoopBackOff");
        assert_eq!(b["proposedFix"]["type"], "logs");
        assert_eq!(b["proposedFix"]["container"], "ledger-service");
        assert_eq!(b["sourceRef"]["kind"], "Pod");
        assert_eq!(b["sourceRef"]["apiGroup"], "v1");
        assert_eq!(b["occurrenceCount"], 14);
    }

    #[test]
    fn image_pull_errors() {
        for reason in ["ImagePullBackOff", "ErrImagePull"] {
            let found = detect_pod(json!({
                "phase": "Pending",
                "containerStatuses": [{
                    "name": "ledger-service", "ready": false, "restartCount": 0, "imageID": "",
                    "image": "registry.example/shipping/label-service:5.2.O",
                    "lastState": {},
                    "state": {"waiting": {"reason": reason, "message": "Back-off pulling image \"registry.example/shipping/label-service:5.2.O\""}},
                }],
            }));
            assert_eq!(found.len(), 1, "{found:#?}");
            assert_eq!(found[0].error_type, reason);
            assert!(
                found[0]
                    .fix()
                    .contains("Check that the image name and tag are right (registry.example/shipping/label-service:5.2.O)"),
                "{}",
                found[0].fix()
            );
            assert_eq!(found[0].backstage()["proposedFix"]["type"], "docs");
        }
    }

    #[test]
    fn oom_killed() {
        let found = detect_pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "ledger-service", "ready": true, "restartCount": 6, "started": true,
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-05-04T11:37:00Z"}},
                "state": {"running": {"startedAt": "2026-05-04T11:36:59Z"}},
            }],
        }));
        assert_eq!(found.len(), 1, "not also counted as restarting: {found:#?}");
        let e = &found[0];
        assert_eq!(e.error_type, "OOMKilled");
        assert_eq!(e.occurrences, 6);
        assert!(
            e.root_cause.contains("its limit (512Mi)"),
            "{}",
            e.root_cause
        );
        assert!(
            e.fix().contains("resources.limits.memory, now 512Mi"),
            "{}",
            e.fix()
        );
    }

    #[test]
    fn readiness_probe_failing() {
        let status = |started: &str, ready: bool| {
            json!({
                "phase": "Running",
                "containerStatuses": [{
                    "name": "ledger-service", "ready": ready, "restartCount": 0, "started": true,
                    "lastState": {}, "state": {"running": {"startedAt": started}},
                }],
            })
        };
        let found = detect_pod(status("2026-05-02T08:59:56Z", false));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].error_type, "ReadinessProbeFailed");
        assert!(
            found[0].message.contains("GET /ready on port http"),
            "{}",
            found[0].message
        );
        // Within its allowance (30 s here) it is only starting; ready is fine.
        assert!(detect_pod(status("2026-05-04T11:59:50Z", false)).is_empty());
        assert!(detect_pod(status("2026-05-02T08:59:56Z", true)).is_empty());
    }

    #[test]
    fn restarting_over_the_threshold() {
        let status = |restarts: i64| {
            json!({
                "phase": "Running",
                "containerStatuses": [{
                    "name": "ledger-service", "ready": true, "restartCount": restarts,
                    "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
                    "state": {"running": {"startedAt": "2026-05-04T11:51:00Z"}},
                }],
            })
        };
        let found = detect_pod(status(38));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].error_type, "Restarting");
        assert_eq!(
            found[0].message,
            "container ledger-service restarted 38 times"
        );
        assert!(found[0].root_cause.contains("exit code 2"));
        assert!(detect_pod(status(4)).is_empty(), "under the threshold");
        assert!(detect_pod(json!({"phase": "Running"})).is_empty());
        assert!(detect_pod(json!(null)).is_empty(), "no status at all");
    }

    #[test]
    fn unschedulable_pods() {
        let found = detect_pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}],
        }));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].error_type, "Unschedulable");
        assert_eq!(
            found[0].message,
            "0/3 nodes are available: 3 Insufficient memory."
        );
    }

    #[test]
    fn deployments() {
        let deployment = json!({
            "metadata": {"name": "label-service", "namespace": "shipping"},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "selector": {"matchLabels": {"app": "label-service"}}},
            "status": {
                "replicas": 3, "availableReplicas": 1,
                "conditions": [
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"label-service-5d9\" has timed out progressing."},
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"x\" is forbidden: exceeded quota"},
                ],
            },
        });
        let found = detect(&resources(Kind::Deployments, vec![deployment]), now(), 5);
        let types: Vec<&str> = found.iter().map(|e| e.error_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "ProgressDeadlineExceeded",
                "ReplicaFailure",
                "DeploymentUnavailable"
            ]
        );
        assert_eq!(
            found[0].message,
            "rollout stuck: ReplicaSet \"label-service-5d9\" has timed out progressing."
        );
        assert!(
            found[0]
                .fix()
                .contains("kubectl rollout undo -n shipping deployment/label-service")
        );
        assert!(found[2].message.starts_with("1 of 2 replicas available"));
        let healthy = json!({
            "metadata": {"name": "ok", "namespace": "x"},
            "spec": {"replicas": 2},
            "status": {"conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ]},
        });
        assert!(detect(&resources(Kind::Deployments, vec![healthy]), now(), 5).is_empty());
    }

    #[test]
    fn autoscalers() {
        let hpa = |current: i64, max: i64| {
            json!({
                "metadata": {"name": "booking-service", "namespace": "shipping"},
                "spec": {
                    "minReplicas": 2, "maxReplicas": max,
                    "scaleTargetRef": {"kind": "Deployment", "name": "booking-service"},
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 75}}}],
                },
                "status": {
                    "currentReplicas": current, "desiredReplicas": current,
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 91}}}],
                },
            })
        };
        let found = detect(&resources(Kind::Hpas, vec![hpa(3, 3)]), now(), 5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].error_type, "HpaAtMaxReplicas");
        assert_eq!(found[0].workload, "deployment/booking-service");
        assert_eq!(
            found[0].message,
            "running 3 replicas, the autoscaler's maximum (3); cpu at 91% of a 75% target"
        );
        assert!(detect(&resources(Kind::Hpas, vec![hpa(3, 10)]), now(), 5).is_empty());
    }

    #[test]
    fn failed_jobs_unless_a_newer_run_completed() {
        let job = |name: &str, started: &str, failed: bool| {
            let condition = if failed {
                json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"})
            } else {
                json!({"type": "Complete", "status": "True", "reason": "CompletionsReached"})
            };
            json!({
                "metadata": {"name": name, "namespace": "payments", "ownerReferences": [{"kind": "CronJob", "name": "reconciliation-job"}]},
                "status": {"startTime": started, "failed": if failed { 3 } else { 0 }, "conditions": [condition]},
            })
        };
        let failed = job("reconciliation-job-100", "2026-05-04T02:30:01Z", true);
        let found = detect(&resources(Kind::Jobs, vec![failed.clone()]), now(), 5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].error_type, "JobFailed");
        assert_eq!(found[0].workload, "cronjob/reconciliation-job");
        assert_eq!(
            found[0].message,
            "BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        assert_eq!(found[0].occurrences, 3);
        let older_success = job("reconciliation-job-99", "2026-05-03T02:30:01Z", false);
        assert_eq!(
            detect(
                &resources(Kind::Jobs, vec![failed.clone(), older_success]),
                now(),
                5
            )
            .len(),
            1
        );
        let newer_success = job("reconciliation-job-101", "2026-05-05T02:30:01Z", false);
        assert!(
            detect(
                &resources(Kind::Jobs, vec![failed, newer_success]),
                now(),
                5
            )
            .is_empty()
        );
    }

    #[test]
    fn most_severe_first() {
        let mut r = resources(
            Kind::Pods,
            vec![
                pod(
                    "a",
                    json!({"containerStatuses": [{"name": "ledger-service", "restartCount": 9, "lastState": {}, "state": {"running": {}}, "ready": true}]}),
                ),
                pod(
                    "b",
                    json!({"containerStatuses": [{"name": "ledger-service", "restartCount": 1, "lastState": {}, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                ),
            ],
        );
        r.0.insert(Kind::Hpas, vec![]);
        let found = detect(&r, now(), 5);
        assert_eq!(
            found
                .iter()
                .map(|e| e.error_type.as_str())
                .collect::<Vec<_>>(),
            ["CrashLoopBackOff", "Restarting"]
        );
    }

    #[test]
    fn workloads_of_pods() {
        let p = pod("x", json!({}));
        assert_eq!(pod_workload(&p), "deployment/ledger-service");
        let job_pod = json!({"metadata": {"name": "j-1-abc", "ownerReferences": [{"kind": "Job", "name": "j-1"}]}});
        assert_eq!(pod_workload(&job_pod), "job/j-1");
        assert_eq!(
            pod_workload(&json!({"metadata": {"name": "bare"}})),
            "pod/bare"
        );
    }

    /// The demo clusters' troubles (demo/kube-apiserver/src/demo.rs), found
    /// in the objects its API server lists, by component.
    #[test]
    fn the_demo_clusters() {
        let now = jiff::Timestamp::from_second(seconds(&json!(NOW)).unwrap()).unwrap();
        let found = |cluster: &str| {
            let objects = callboard_demo_kube::demo_cluster_at(cluster, now).unwrap();
            let mut by_id: BTreeMap<String, Resources> = BTreeMap::new();
            for object in objects.iter() {
                let Some(id) = object["metadata"]["labels"]["backstage.io/kubernetes-id"].as_str()
                else {
                    continue;
                };
                let Some(kind) = Kind::ALL.into_iter().find(|k| object["kind"] == k.kind()) else {
                    continue;
                };
                by_id
                    .entry(id.to_owned())
                    .or_default()
                    .0
                    .entry(kind)
                    .or_default()
                    .push(object.clone());
            }
            by_id
                .into_iter()
                .map(|(id, resources)| {
                    let types: Vec<String> = detect(&resources, now.as_second(), 5)
                        .into_iter()
                        .map(|e| format!("{} {}", e.error_type, e.workload))
                        .collect();
                    (id, types)
                })
                .filter(|(_, types)| !types.is_empty())
                .collect::<BTreeMap<_, _>>()
        };
        let map = |pairs: &[(&str, &[&str])]| {
            pairs
                .iter()
                .map(|(id, types)| {
                    (
                        (*id).to_owned(),
                        types.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            found("prod-eu"),
            map(&[
                (
                    "booking-service",
                    &[
                        "OOMKilled deployment/booking-service",
                        "HpaAtMaxReplicas deployment/booking-service"
                    ]
                ),
                (
                    "label-service",
                    &[
                        "ImagePullBackOff deployment/label-service",
                        "ProgressDeadlineExceeded deployment/label-service"
                    ]
                ),
                (
                    "ledger-service",
                    &[
                        "CrashLoopBackOff deployment/ledger-service",
                        "DeploymentUnavailable deployment/ledger-service"
                    ]
                ),
                (
                    "tracking-service",
                    &["ReadinessProbeFailed deployment/tracking-service"]
                ),
            ])
        );
        assert_eq!(
            found("staging"),
            map(&[
                (
                    "booking-service",
                    &["ErrImagePull deployment/booking-service"]
                ),
                ("label-service", &["Restarting deployment/label-service"]),
                (
                    "reconciliation-job",
                    &["JobFailed cronjob/reconciliation-job"]
                ),
            ])
        );
    }
}
