//! The stand-in against the real client: Debian's `kubectl` (installed
//! when missing) pointed at a demo cluster on 127.0.0.1 must read it as it
//! reads a real cluster: discovery, lists and gets as JSON, selectors,
//! server-side tables, `rollout restart`, and the errors.

mod support;

use std::collections::BTreeSet;

use callboard_demo_kube::{Fault, Objects, Options};
use serde_json::Value;
use support::{Cluster, Kubectl, TlsFront};

/// Objects of a kind, as (namespace, name, labels).
fn of_kind(objects: &Objects, kind: &str) -> Vec<(String, String, Value)> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| {
            (
                o["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                o["metadata"]["labels"].clone(),
            )
        })
        .collect()
}

fn plain(cluster: &Cluster) -> Kubectl {
    Kubectl::new(&cluster.url(), None, None)
}

/// A demo cluster served, and the objects it serves.
fn demo(name: &str) -> (Cluster, Objects) {
    let objects = callboard_demo_kube::demo_cluster(name).expect("demo cluster");
    let cluster = Cluster::start(Options {
        cluster: name.to_owned(),
        objects: objects.clone(),
        ..Options::default()
    });
    (cluster, objects)
}

#[test]
fn lists_every_pod_as_json() {
    let (cluster, objects) = demo("prod-eu");
    let kubectl = plain(&cluster);
    let list = kubectl.ok(&["get", "pods", "-A", "-o", "json"]).json();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    let want: BTreeSet<(String, String)> = of_kind(&objects, "Pod")
        .into_iter()
        .map(|(ns, name, _)| (ns, name))
        .collect();
    let got: BTreeSet<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                i["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
    for item in items {
        // The server leaves kind and apiVersion out of list items; kubectl
        // fills them in from the list, as with a real server.
        assert_eq!(item["kind"], "Pod");
        assert_eq!(item["apiVersion"], "v1");
        assert!(item["metadata"]["uid"].is_string());
        assert!(item["metadata"]["resourceVersion"].is_string());
        assert!(item["status"]["phase"].is_string());
    }
}

#[test]
fn selects_deployments_by_kubernetes_id() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let kubectl = plain(&cluster);
    let run = kubectl.ok(&[
        "get",
        "deployments",
        "-n",
        "payments",
        "-l",
        "backstage.io/kubernetes-id=payment-gateway",
        "-o",
        "json",
    ]);
    assert_eq!(run.names(), ["payment-gateway"]);
    let deployment = &run.json()["items"][0];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["status"]["readyReplicas"], 3);

    // Namespaced: the same component in another namespace is not listed.
    let run = kubectl.ok(&[
        "get",
        "deployments",
        "-n",
        "shipping",
        "-l",
        "backstage.io/kubernetes-id=payment-gateway",
        "-o",
        "json",
    ]);
    assert!(run.names().is_empty());
}

#[test]
fn set_based_and_negated_selectors() {
    let (cluster, objects) = demo("prod-eu");
    let kubectl = plain(&cluster);
    let run = kubectl.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app.kubernetes.io/name in (booking-service,label-service)",
        "-o",
        "json",
    ]);
    let mut want: Vec<String> = of_kind(&objects, "Pod")
        .into_iter()
        .filter(|(_, _, labels)| {
            matches!(
                labels["app.kubernetes.io/name"].as_str(),
                Some("booking-service" | "label-service")
            )
        })
        .map(|(_, name, _)| name)
        .collect();
    want.sort();
    assert!(want.len() >= 5, "{want:?}");
    assert_eq!(run.names(), want);

    // Pods of no component: CoreDNS only.
    let run = kubectl.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "!backstage.io/kubernetes-id",
        "-o",
        "json",
    ]);
    let names = run.names();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("coredns-")), "{names:?}");

    // `notin` and `!=` and a field selector together.
    let run = kubectl.ok(&[
        "get",
        "pods",
        "-n",
        "shipping",
        "-l",
        "app.kubernetes.io/name notin (booking-service),app.kubernetes.io/version!=5.1.9",
        "--field-selector",
        "status.phase=Pending",
        "-o",
        "json",
    ]);
    let names = run.names();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("label-service-"), "{names:?}");
}

#[test]
fn prints_server_side_tables() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let kubectl = plain(&cluster);
    let table = kubectl.ok(&["get", "pods", "-n", "payments"]).stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let crashing = table
        .lines()
        .find(|l| l.contains("CrashLoopBackOff"))
        .unwrap_or_else(|| panic!("no CrashLoopBackOff pod in:\n{table}"));
    assert!(crashing.starts_with("ledger-service-"), "{crashing}");
    assert!(crashing.contains("0/1"), "{crashing}");
    // Restarts with the time since the last one, as kubectl shows them.
    assert!(crashing.contains("14 ("), "{crashing}");
    assert!(crashing.contains(" ago)"), "{crashing}");
    assert!(table.lines().any(|l| l.contains("Completed")), "{table}");

    // Every namespace: kubectl adds the NAMESPACE column from each row's metadata.
    let all = kubectl.ok(&["get", "pods", "-A"]).stdout;
    assert!(all.starts_with("NAMESPACE"), "{all}");
    for (status, namespace) in [
        ("ImagePullBackOff", "shipping"),
        ("CrashLoopBackOff", "payments"),
        ("Running", "kube-system"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.starts_with(namespace) && l.contains(status)),
            "no {status} pod in {namespace}:\n{all}"
        );
    }
    // Wide columns come from the server too.
    let wide = kubectl
        .ok(&["get", "pods", "-n", "shipping", "-o", "wide"])
        .stdout;
    assert!(wide.lines().next().unwrap_or("").contains("NODE"), "{wide}");
    assert!(wide.contains("prod-eu-pool-1-"), "{wide}");

    let deployments = kubectl.ok(&["get", "deployments", "-A"]).stdout;
    let ledger = deployments
        .lines()
        .find(|l| l.contains("ledger-service"))
        .expect("ledger-service row");
    assert_eq!(
        ledger.split_whitespace().collect::<Vec<_>>()[..5],
        ["payments", "ledger-service", "1/2", "2", "1"]
    );
    let hpa = kubectl.ok(&["get", "hpa", "-n", "shipping"]).stdout;
    assert!(hpa.contains("cpu: 91%/75%"), "{hpa}");
    let jobs = kubectl
        .ok(&["get", "jobs,cronjobs", "-n", "payments"])
        .stdout;
    assert!(jobs.contains("Complete"), "{jobs}");
    assert!(jobs.contains("30 2 * * *"), "{jobs}");
    let ingress = kubectl.ok(&["get", "ingress", "-A"]).stdout;
    assert!(ingress.contains("pay.brightwharf.example"), "{ingress}");

    // One object by name, with its short name.
    let pod = table
        .lines()
        .find(|l| l.contains("CrashLoopBackOff"))
        .and_then(|l| l.split_whitespace().next())
        .expect("pod name");
    let one = kubectl.ok(&["get", "po", pod, "-n", "payments"]).stdout;
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.contains("CrashLoopBackOff"), "{one}");
}

#[test]
fn rollout_restart_patches_the_deployment() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let kubectl = plain(&cluster);
    let get = || {
        kubectl
            .ok(&[
                "get",
                "deployment",
                "booking-service",
                "-n",
                "shipping",
                "-o",
                "json",
            ])
            .json()
    };
    let version = |v: &Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .expect("resourceVersion")
    };
    let before = get();
    assert!(
        before["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null()
    );
    let run = kubectl.ok(&[
        "rollout",
        "restart",
        "deployment/booking-service",
        "-n",
        "shipping",
    ]);
    assert_eq!(
        run.stdout.trim(),
        "deployment.apps/booking-service restarted"
    );
    let after = get();
    let restarted =
        after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .expect("restartedAt annotation");
    assert!(restarted.parse::<jiff::Timestamp>().is_ok(), "{restarted}");
    assert!(version(&after) > version(&before));
    assert_eq!(
        after["metadata"]["generation"].as_i64(),
        before["metadata"]["generation"].as_i64().map(|g| g + 1)
    );
    // The rest of the object is untouched.
    assert_eq!(after["spec"]["replicas"], before["spec"]["replicas"]);
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(
        after["spec"]["template"]["spec"],
        before["spec"]["template"]["spec"]
    );
    // The list's resource version follows the cluster's.
    let list = kubectl
        .ok(&["get", "deployments", "-A", "-o", "json"])
        .json();
    let listed = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["metadata"]["name"] == "booking-service")
        .expect("listed");
    assert_eq!(version(listed), version(&after));

    // kubectl patch, as a merge patch and as a strategic one.
    let run = kubectl.ok(&[
        "patch",
        "deployment",
        "booking-service",
        "-n",
        "shipping",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    assert_eq!(run.stdout.trim(), "deployment.apps/booking-service patched");
    let scaled = get();
    assert_eq!(scaled["spec"]["replicas"], 4);
    assert!(version(&scaled) > version(&after));
    let run = kubectl.ok(&[
        "patch",
        "deployment",
        "booking-service",
        "-n",
        "shipping",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    assert_eq!(
        run.stdout.trim(),
        "deployment.apps/booking-service patched (no change)"
    );
    assert_eq!(version(&get()), version(&scaled));
    kubectl.ok(&[
        "patch", "deployment", "booking-service", "-n", "shipping", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"booking-service","image":"registry.brightwharf.example/shipping/booking-service:3.8.3"}]}}}}"#,
    ]);
    let patched = get();
    let container = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.brightwharf.example/shipping/booking-service:3.8.3"
    );
    // Merged by name, not replaced: the rest of the container is kept.
    assert_eq!(
        container["ports"],
        before["spec"]["template"]["spec"]["containers"][0]["ports"]
    );

    // Nothing else can be written.
    let run = kubectl.run(&["delete", "pod", "--all", "-n", "shipping"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("MethodNotAllowed") || run.stderr.contains("not allow"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_token_reaches_the_server_over_tls_only() {
    let cluster = Cluster::demo("staging", Some("demo-token"), Fault::None);
    let tls = TlsFront::new(cluster.addr);

    let good = Kubectl::new(&tls.url, Some("demo-token"), Some(&tls.ca));
    let run = good.ok(&["get", "namespaces", "-o", "json"]);
    assert!(run.names().contains(&"payments".to_owned()));
    let table = good.ok(&["get", "pods", "-n", "shipping"]).stdout;
    assert!(table.contains("ErrImagePull"), "{table}");

    let wrong = Kubectl::new(&tls.url, Some("not-the-token"), Some(&tls.ca));
    let run = wrong.run(&["get", "pods", "-A"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("You must be logged in to the server"),
        "{}",
        run.stderr
    );

    // Over plain HTTP kubectl keeps the kubeconfig's token to itself
    // (client-go applies credentials to https:// servers only).
    let plain = Kubectl::new(&cluster.url(), Some("demo-token"), None);
    let run = plain.run(&["get", "pods", "-A"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("You must be logged in to the server"),
        "{}",
        run.stderr
    );
}

#[test]
fn faults_read_as_kubectl_errors() {
    let forbidden = Cluster::demo("prod-eu", None, Fault::Forbidden);
    let run = plain(&forbidden).run(&["get", "pods", "-n", "payments"]);
    assert!(!run.success);
    assert!(run.stderr.contains("Forbidden"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "cannot list resource \"pods\" in API group \"\" in the namespace \"payments\""
        ),
        "{}",
        run.stderr
    );
    let run = plain(&forbidden).run(&["get", "deployments", "-A"]);
    assert!(
        run.stderr.contains(
            "cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        ),
        "{}",
        run.stderr
    );

    let unauthorized = Cluster::demo("prod-eu", None, Fault::Unauthorized);
    let run = plain(&unauthorized).run(&["get", "pods", "-A"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("You must be logged in to the server"),
        "{}",
        run.stderr
    );

    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let run = plain(&cluster).run(&["get", "deployment", "nowhere", "-n", "payments"]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("Error from server (NotFound): deployments.apps \"nowhere\" not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn custom_objects_serve_too() {
    let objects = callboard_demo_kube::Objects::new().with(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "solo",
            "namespace": "sandbox",
            "labels": {"backstage.io/kubernetes-id": "solo"},
        },
        "spec": {"containers": [{"name": "solo", "image": "busybox:1.36"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{
                "name": "solo", "image": "busybox:1.36", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}},
                "lastState": {},
            }],
        },
    }));
    let cluster = Cluster::start(Options {
        objects,
        ..Options::default()
    });
    let kubectl = plain(&cluster);
    let table = kubectl.ok(&["get", "pods", "-A"]).stdout;
    assert!(
        table.contains("sandbox") && table.contains("solo"),
        "{table}"
    );
    assert!(
        table.contains("1/1") && table.contains("Running"),
        "{table}"
    );
    let namespaces = kubectl.ok(&["get", "namespaces", "-o", "json"]).names();
    assert!(namespaces.contains(&"sandbox".to_owned()), "{namespaces:?}");
    let pod = kubectl
        .ok(&["get", "pod", "solo", "-n", "sandbox", "-o", "json"])
        .json();
    assert_eq!(
        pod["metadata"]["uid"],
        callboard_demo_kube::stable_uid(&["Pod", "sandbox", "solo"])
    );
}
