//! The wire format byte by byte, over plain HTTP: discovery documents,
//! list and object shapes, Status bodies, selectors (and their abuse),
//! paging, tables, the PATCH rules, bounds and faults.

mod support;

use std::time::{Duration, Instant};

use callboard_demo_kube::{Fault, MAX_BODY_BYTES, MAX_SELECTOR_LEN, Objects, Options};
use serde_json::{Value, json};
use support::{Cluster, request};

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    names
}

fn rv(value: &Value) -> u64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion: {}", value["metadata"]))
}

#[test]
fn discovery_documents() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let api = cluster.get("/api");
    assert_eq!(api.status, 200);
    assert_eq!(api.header("content-type"), Some("application/json"));
    let api = api.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let groups = cluster.get("/apis").json();
    assert_eq!(groups["kind"], "APIGroupList");
    let listed: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["preferredVersion"]["groupVersion"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        listed,
        [
            "apps/v1",
            "autoscaling/v2",
            "batch/v1",
            "networking.k8s.io/v1"
        ]
    );

    let core = cluster.get("/api/v1").json();
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    let pods = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods")
        .expect("pods");
    assert_eq!(
        *pods,
        json!({
            "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
            "verbs": ["get", "list"], "shortNames": ["po"], "categories": ["all"],
        })
    );
    let namespaces = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "namespaces")
        .expect("namespaces");
    assert_eq!(namespaces["namespaced"], false);

    for (path, resource, kind, short) in [
        (
            "/apis/apps/v1",
            "deployments",
            "Deployment",
            json!(["deploy"]),
        ),
        ("/apis/apps/v1", "replicasets", "ReplicaSet", json!(["rs"])),
        ("/apis/batch/v1", "cronjobs", "CronJob", json!(["cj"])),
        ("/apis/batch/v1", "jobs", "Job", Value::Null),
        (
            "/apis/networking.k8s.io/v1",
            "ingresses",
            "Ingress",
            json!(["ing"]),
        ),
        (
            "/apis/autoscaling/v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            json!(["hpa"]),
        ),
    ] {
        let list = cluster.get(path).json();
        let entry = list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == resource)
            .unwrap_or_else(|| panic!("{resource} in {path}"))
            .clone();
        assert_eq!(entry["kind"], kind);
        assert_eq!(entry["shortNames"], short);
        assert_eq!(entry["namespaced"], true);
    }
    let apps = cluster.get("/apis/apps/v1").json();
    assert_eq!(
        apps["resources"][0]["verbs"],
        json!(["get", "list", "patch"])
    );
    assert_eq!(cluster.get("/apis/apps").json()["kind"], "APIGroup");

    let version = cluster.get("/version").json();
    assert_eq!(version["major"], "1");
    assert!(
        version["gitVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("v1.")
    );
    assert_eq!(cluster.get("/healthz").body, b"ok");
}

#[test]
fn lists_and_objects_have_the_real_shapes() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let all = cluster.get("/api/v1/pods").json();
    assert_eq!(all["kind"], "PodList");
    assert_eq!(all["apiVersion"], "v1");
    let list_version = rv(&all);
    let items = all["items"].as_array().expect("items");
    assert!(items.len() > 15);
    for item in items {
        assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
        assert!(rv(item) <= list_version);
        // Pods point at their ReplicaSet or Job.
        let owner = &item["metadata"]["ownerReferences"][0];
        assert!(
            matches!(owner["kind"].as_str(), Some("ReplicaSet" | "Job")),
            "{owner}"
        );
        assert_eq!(owner["controller"], true);
    }
    let payments = cluster.get("/api/v1/namespaces/payments/pods").json();
    let in_payments = items
        .iter()
        .filter(|i| i["metadata"]["namespace"] == "payments")
        .count();
    assert_eq!(
        payments["items"].as_array().map(Vec::len),
        Some(in_payments)
    );

    // The crash-looping pod, as the kubelet reports one.
    let crashing = payments["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .expect("a CrashLoopBackOff pod in payments");
    let status = &crashing["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert!(status["restartCount"].as_i64().unwrap_or(0) > 5);
    assert_eq!(status["ready"], false);

    // Owner chain: pod -> ReplicaSet -> Deployment, by uid.
    let rs_ref = &crashing["metadata"]["ownerReferences"][0];
    let rs = cluster
        .get(&format!(
            "/apis/apps/v1/namespaces/payments/replicasets/{}",
            rs_ref["name"].as_str().expect("rs name")
        ))
        .json();
    assert_eq!(rs["kind"], "ReplicaSet");
    assert_eq!(rs["apiVersion"], "apps/v1");
    assert_eq!(rs["metadata"]["uid"], rs_ref["uid"]);
    let deployment_ref = &rs["metadata"]["ownerReferences"][0];
    let deployment = cluster
        .get(&format!(
            "/apis/apps/v1/namespaces/payments/deployments/{}",
            deployment_ref["name"].as_str().expect("deployment name")
        ))
        .json();
    assert_eq!(deployment["metadata"]["uid"], deployment_ref["uid"]);
    assert_eq!(deployment["status"]["readyReplicas"], 1);
    assert_eq!(deployment["status"]["availableReplicas"], 1);
    assert_eq!(deployment["status"]["conditions"][0]["type"], "Available");

    for (path, kind) in [
        ("/api/v1/services", "ServiceList"),
        ("/api/v1/namespaces", "NamespaceList"),
        ("/apis/apps/v1/deployments", "DeploymentList"),
        ("/apis/apps/v1/replicasets", "ReplicaSetList"),
        ("/apis/batch/v1/jobs", "JobList"),
        ("/apis/batch/v1/cronjobs", "CronJobList"),
        ("/apis/networking.k8s.io/v1/ingresses", "IngressList"),
        (
            "/apis/autoscaling/v2/horizontalpodautoscalers",
            "HorizontalPodAutoscalerList",
        ),
    ] {
        let list = cluster.get(path).json();
        assert_eq!(list["kind"], kind, "{path}");
        assert_eq!(rv(&list), list_version, "{path}");
        assert!(
            !list["items"].as_array().expect("items").is_empty(),
            "{path}"
        );
    }
    let namespace = cluster.get("/api/v1/namespaces/payments").json();
    assert_eq!(namespace["kind"], "Namespace");
    assert_eq!(namespace["status"]["phase"], "Active");
    // A namespace that does not exist lists as empty, as on a real server.
    let empty = cluster.get("/api/v1/namespaces/nowhere/pods").json();
    assert_eq!(empty["items"], json!([]));
}

#[test]
fn errors_are_status_objects() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let missing = cluster.get("/apis/apps/v1/namespaces/payments/deployments/nowhere");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "deployments.apps \"nowhere\" not found", "reason": "NotFound",
            "details": {"name": "nowhere", "group": "apps", "kind": "deployments"}, "code": 404,
        })
    );
    let missing = cluster
        .get("/api/v1/namespaces/payments/pods/nowhere")
        .json();
    assert_eq!(missing["message"], "pods \"nowhere\" not found");
    assert_eq!(
        missing["details"],
        json!({"name": "nowhere", "kind": "pods"})
    );

    for path in [
        "/nowhere",
        "/api/v2",
        "/api/v1/widgets",
        "/api/v1/pods/loose-pod",
        "/apis/apps/v1/namespaces/payments/deployments/payment-gateway/scale",
        "/apis/extensions/v1beta1/ingresses",
    ] {
        let reply = cluster.get(path);
        assert_eq!(reply.status, 404, "{path}");
        let body = reply.json();
        assert_eq!(body["kind"], "Status", "{path}");
        assert_eq!(body["reason"], "NotFound", "{path}");
        assert_eq!(body["code"], 404, "{path}");
    }

    for (method, path) in [
        ("POST", "/api/v1/namespaces/payments/pods"),
        ("DELETE", "/api/v1/namespaces/payments/pods/x"),
        (
            "PUT",
            "/apis/apps/v1/namespaces/payments/deployments/payment-gateway",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/payments/services/payment-gateway",
        ),
    ] {
        let reply = request(
            cluster.addr,
            method,
            path,
            &[("Content-Type", "application/merge-patch+json")],
            b"{}",
        );
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.json()["reason"], "MethodNotAllowed");
    }

    let watch = cluster.get("/api/v1/pods?watch=true");
    assert_eq!(watch.status, 405);
    let protobuf_only = cluster.get_with(
        "/api/v1/pods",
        &[("Accept", "application/vnd.kubernetes.protobuf")],
    );
    assert_eq!(protobuf_only.status, 406);
    assert_eq!(protobuf_only.json()["reason"], "NotAcceptable");
}

#[test]
fn tokens_and_faults() {
    let cluster = Cluster::demo("staging", Some("s3cret"), Fault::None);
    let unauthorized = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    });
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Basic czNjcmV0")],
        vec![("Authorization", "Bearer s3cret-and-more")],
    ] {
        let reply = cluster.get_with("/api/v1/pods", &headers);
        assert_eq!(reply.status, 401, "{headers:?}");
        assert_eq!(reply.json(), unauthorized);
    }
    let ok = cluster.get_with("/api/v1/pods", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(ok.status, 200);
    let ok = cluster.get_with("/api/v1/pods", &[("Authorization", "bearer s3cret")]);
    assert_eq!(ok.status, 200);

    let always = Cluster::demo("staging", Some("s3cret"), Fault::Unauthorized);
    let reply = always.get_with("/api", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(reply.status, 401);

    let forbidden = Cluster::demo("staging", None, Fault::Forbidden);
    assert_eq!(
        forbidden.get("/api/v1").status,
        200,
        "discovery still works"
    );
    let reply = forbidden.get("/api/v1/namespaces/payments/pods/some-pod");
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"some-pod\" is forbidden: User \"system:anonymous\" cannot get resource \"pods\" in API group \"\" in the namespace \"payments\"",
            "reason": "Forbidden", "details": {"name": "some-pod", "kind": "pods"}, "code": 403,
        })
    );
    let reply = forbidden.get("/apis/batch/v1/cronjobs").json();
    assert_eq!(
        reply["message"],
        "cronjobs.batch is forbidden: User \"system:anonymous\" cannot list resource \"cronjobs\" in API group \"batch\" at the cluster scope"
    );
    let reply = request(
        forbidden.addr,
        "PATCH",
        "/apis/apps/v1/namespaces/payments/deployments/payment-gateway",
        &[("Content-Type", "application/merge-patch+json")],
        b"{}",
    );
    assert_eq!(reply.status, 403);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot patch resource \"deployments\" in API group \"apps\"")
    );
}

#[test]
fn slow_fault_delays_every_answer() {
    let delay = Duration::from_millis(400);
    let cluster = Cluster::demo("prod-eu", None, Fault::Slow(delay));
    let started = Instant::now();
    assert_eq!(cluster.get("/api/v1/pods").status, 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());

    // A client with a shorter timeout gives up before the answer.
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(cluster.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut buffer = [0u8; 16];
    let error = stream.read(&mut buffer).expect_err("answered too soon");
    assert!(matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
}

#[test]
fn label_selectors_over_http() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let select = |selector: &str| {
        let reply = cluster.get(&format!("/api/v1/pods?labelSelector={}", enc(selector)));
        assert_eq!(
            reply.status,
            200,
            "{selector}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        names(&reply.json())
    };
    let all = select("");
    let gateway = select("backstage.io/kubernetes-id=payment-gateway");
    assert_eq!(gateway.len(), 3);
    assert!(gateway.iter().all(|n| n.starts_with("payment-gateway-")));
    assert_eq!(
        select("backstage.io/kubernetes-id==payment-gateway"),
        gateway
    );
    assert_eq!(
        select("  backstage.io/kubernetes-id = payment-gateway  "),
        gateway
    );
    assert_eq!(
        select("backstage.io/kubernetes-id in (payment-gateway)"),
        gateway
    );
    assert_eq!(
        select(
            "backstage.io/kubernetes-id in (payment-gateway),app.kubernetes.io/part-of=payments"
        ),
        gateway
    );
    let not_gateway = select("backstage.io/kubernetes-id!=payment-gateway");
    assert_eq!(not_gateway.len() + gateway.len(), all.len());
    // `!=` and `notin` keep pods without the label (CoreDNS).
    assert!(not_gateway.iter().any(|n| n.starts_with("coredns-")));
    assert_eq!(
        select("backstage.io/kubernetes-id notin (payment-gateway)"),
        not_gateway
    );
    let labelled = select("backstage.io/kubernetes-id");
    let unlabelled = select("!backstage.io/kubernetes-id");
    assert_eq!(labelled.len() + unlabelled.len(), all.len());
    assert!(unlabelled.iter().all(|n| n.starts_with("coredns-")));
    assert!(select("backstage.io/kubernetes-id=nobody").is_empty());
    assert!(
        select("backstage.io/kubernetes-id=payment-gateway,!backstage.io/kubernetes-id").is_empty()
    );
    // Job pods carry the job's labels too.
    let job_pods = select("job-name");
    assert!(!job_pods.is_empty());
    assert!(
        job_pods
            .iter()
            .all(|n| n.starts_with("reconciliation-job-"))
    );

    for bad in [
        "backstage.io/kubernetes-id in payment-gateway",
        "backstage.io/kubernetes-id in (payment-gateway",
        "backstage.io/kubernetes-id=payment gateway",
        "=payment-gateway",
        "a,",
        "a b",
        "a=(b)",
        "-a=b",
        "a>b",
        "((((((((((((((((",
        "a in ((((((((((((x))))))))))))",
        "))))",
    ] {
        let reply = cluster.get(&format!("/api/v1/pods?labelSelector={}", enc(bad)));
        assert_eq!(reply.status, 400, "{bad}");
        let body = reply.json();
        assert_eq!(body["kind"], "Status", "{bad}");
        assert_eq!(body["reason"], "BadRequest", "{bad}");
        assert_eq!(body["code"], 400, "{bad}");
    }
    // Long selectors are refused whole, well before any URL limit.
    let long = format!("a in ({})", vec!["b"; MAX_SELECTOR_LEN / 2].join(","));
    let reply = cluster.get(&format!("/api/v1/pods?labelSelector={}", enc(&long)));
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("longer than")
    );
    let deep = "(".repeat(MAX_SELECTOR_LEN + 1);
    let reply = cluster.get(&format!("/api/v1/pods?labelSelector={}", enc(&deep)));
    assert_eq!(reply.status, 400);
}

#[test]
fn field_selectors_over_http() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let select = |path: &str, selector: &str| {
        let reply = cluster.get(&format!("{path}?fieldSelector={}", enc(selector)));
        (reply.status, reply.json())
    };
    let (status, list) = select("/apis/apps/v1/deployments", "metadata.name=ledger-service");
    assert_eq!(status, 200);
    assert_eq!(names(&list), ["ledger-service"]);
    let (_, list) = select(
        "/apis/apps/v1/deployments",
        "metadata.namespace=payments,metadata.name!=ledger-service",
    );
    assert_eq!(names(&list), ["payment-gateway"]);
    let (_, list) = select("/api/v1/pods", "status.phase=Pending");
    assert_eq!(names(&list).len(), 1);
    let (_, list) = select("/api/v1/pods", "status.phase=Succeeded");
    assert!(
        names(&list)
            .iter()
            .all(|n| n.starts_with("reconciliation-job-"))
    );
    let (_, list) = select("/api/v1/namespaces", "metadata.name=shipping");
    assert_eq!(names(&list), ["shipping"]);
    let (status, body) = select("/api/v1/pods", "spec.containers=x");
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "field label not supported: spec.containers"
    );
    let (status, _) = select("/api/v1/pods", "metadata.name");
    assert_eq!(status, 400);
}

#[test]
fn paging_with_limit_and_continue() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let everything = names(&cluster.get("/api/v1/pods").json());
    let mut seen = Vec::new();
    let mut path = "/api/v1/pods?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let page = cluster.get(&path).json();
        let items = page["items"].as_array().expect("items").len();
        assert!(items <= 4);
        seen.extend(names(&page));
        pages += 1;
        match page["metadata"]["continue"].as_str() {
            Some(token) => {
                let remaining = page["metadata"]["remainingItemCount"]
                    .as_u64()
                    .expect("remaining");
                assert_eq!(
                    usize::try_from(remaining).unwrap_or(0),
                    everything.len() - seen.len()
                );
                path = format!("/api/v1/pods?limit=4&continue={}", enc(token));
            }
            None => break,
        }
        assert!(pages < 100);
    }
    seen.sort();
    assert_eq!(seen, everything);
    assert_eq!(pages, everything.len().div_ceil(4));

    // With a selector, pages hold matching items only.
    let first = cluster
        .get("/api/v1/pods?limit=1&labelSelector=app.kubernetes.io%2Fname%3Dpayment-gateway")
        .json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    assert!(first["metadata"]["remainingItemCount"].is_null());
    assert!(first["metadata"]["continue"].is_string());

    // A limit of zero or less lists everything; nonsense is refused.
    assert_eq!(
        names(&cluster.get("/api/v1/pods?limit=0").json()),
        everything
    );
    assert_eq!(cluster.get("/api/v1/pods?limit=lots").status, 400);
    let bad = cluster.get("/api/v1/pods?continue=garbage");
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("continue key is not valid")
    );
}

#[test]
fn tables_and_partial_metadata() {
    let cluster = Cluster::demo("prod-eu", None, Fault::None);
    let table_accept = [(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    )];
    let table = cluster
        .get_with("/api/v1/namespaces/payments/pods", &table_accept)
        .json();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert!(rv(&table) > 0);
    let rows = table["rows"].as_array().expect("rows");
    for row in rows {
        assert_eq!(row["cells"].as_array().map(Vec::len), Some(columns.len()));
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["metadata"]["namespace"], "payments");
    }
    let crashing = rows
        .iter()
        .find(|r| r["cells"][2] == "CrashLoopBackOff")
        .expect("crash-looping row");
    assert_eq!(crashing["cells"][1], "0/1");
    let completed = rows
        .iter()
        .find(|r| r["cells"][2] == "Completed")
        .expect("completed row");
    assert_eq!(completed["conditions"][0]["type"], "Completed");

    let beta = cluster
        .get_with(
            "/apis/apps/v1/namespaces/shipping/deployments/label-service?includeObject=Object",
            &[(
                "Accept",
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
            )],
        )
        .json();
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(beta["rows"][0]["cells"][0], "label-service");
    assert_eq!(beta["rows"][0]["cells"][1], "2/2");
    assert_eq!(beta["rows"][0]["object"]["kind"], "Deployment");

    let metadata = cluster
        .get_with(
            "/apis/apps/v1/deployments",
            &[(
                "Accept",
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            )],
        )
        .json();
    assert_eq!(metadata["kind"], "PartialObjectMetadataList");
    assert_eq!(metadata["items"][0]["kind"], "PartialObjectMetadata");
    assert!(metadata["items"][0].get("spec").is_none());
}

fn patch(
    cluster: &Cluster,
    name: &str,
    content_type: &str,
    body: &[u8],
    token: Option<&str>,
) -> support::Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request(
        cluster.addr,
        "PATCH",
        &format!("/apis/apps/v1/namespaces/payments/deployments/{name}"),
        &headers,
        body,
    )
}

#[test]
fn patching_a_deployment() {
    let cluster = Cluster::demo("prod-eu", Some("t0ken"), Fault::None);
    let auth = [("Authorization", "Bearer t0ken")];
    let path = "/apis/apps/v1/namespaces/payments/deployments/ledger-service";
    let before = cluster.get_with(path, &auth).json();
    let list_before = rv(&cluster.get_with("/apis/apps/v1/deployments", &auth).json());

    // Without the token: refused, unchanged.
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        b"{}",
        None,
    );
    assert_eq!(reply.status, 401);
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        b"{}",
        Some("nope"),
    );
    assert_eq!(reply.status, 401);

    let restart = br#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2025-06-01T10:00:00Z"}}}}}"#;
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/strategic-merge-patch+json",
        restart,
        Some("t0ken"),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let after = reply.json();
    assert_eq!(after["kind"], "Deployment");
    assert_eq!(
        after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2025-06-01T10:00:00Z"
    );
    assert!(rv(&after) > rv(&before));
    assert!(rv(&after) > list_before);
    assert_eq!(
        after["metadata"]["generation"].as_i64(),
        before["metadata"]["generation"].as_i64().map(|g| g + 1)
    );
    assert_eq!(
        after["status"]["observedGeneration"],
        after["metadata"]["generation"]
    );
    assert_eq!(cluster.get_with(path, &auth).json(), after);
    assert_eq!(
        rv(&cluster.get_with("/apis/apps/v1/deployments", &auth).json()),
        rv(&after)
    );

    // Identity, status and kind cannot be patched; a label can.
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        br#"{"kind":"Pod","metadata":{"name":"renamed","uid":"x","labels":{"team":"ledger"}},"status":{"replicas":99}}"#,
        Some("t0ken"),
    );
    assert_eq!(reply.status, 200);
    let relabelled = reply.json();
    assert_eq!(relabelled["kind"], "Deployment");
    assert_eq!(relabelled["metadata"]["name"], "ledger-service");
    assert_eq!(relabelled["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(relabelled["metadata"]["labels"]["team"], "ledger");
    assert_eq!(
        relabelled["status"]["replicas"],
        before["status"]["replicas"]
    );
    // Metadata only: the generation stays.
    assert_eq!(
        relabelled["metadata"]["generation"],
        after["metadata"]["generation"]
    );

    // A no-op changes nothing, not even the resource version.
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        b"{}",
        Some("t0ken"),
    );
    assert_eq!(rv(&reply.json()), rv(&relabelled));

    // A stale resourceVersion conflicts.
    let stale = format!(
        r#"{{"metadata":{{"resourceVersion":"{}"}},"spec":{{"replicas":3}}}}"#,
        rv(&before)
    );
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        stale.as_bytes(),
        Some("t0ken"),
    );
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["reason"], "Conflict");

    // Dry run: answered, not stored.
    let reply = request(
        cluster.addr,
        "PATCH",
        &format!("{path}?dryRun=All"),
        &[("Content-Type", "application/merge-patch+json"), auth[0]],
        br#"{"spec":{"replicas":5}}"#,
    );
    assert_eq!(reply.json()["spec"]["replicas"], 5);
    assert_eq!(cluster.get_with(path, &auth).json()["spec"]["replicas"], 2);

    // Invalid results, bodies and types.
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        br#"{"spec":{"replicas":-1}}"#,
        Some("t0ken"),
    );
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["reason"], "Invalid");
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        b"{not json",
        Some("t0ken"),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["reason"], "BadRequest");
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        b"[1,2]",
        Some("t0ken"),
    );
    assert_eq!(reply.status, 400);
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/json-patch+json",
        b"[]",
        Some("t0ken"),
    );
    assert_eq!(reply.status, 415);
    assert_eq!(reply.json()["reason"], "UnsupportedMediaType");
    let reply = patch(
        &cluster,
        "nowhere",
        "application/merge-patch+json",
        b"{}",
        Some("t0ken"),
    );
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json()["message"],
        "deployments.apps \"nowhere\" not found"
    );

    // Bodies are capped.
    let mut huge = br#"{"metadata":{"annotations":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_BODY_BYTES));
    huge.extend(br#""}}}"#);
    let reply = patch(
        &cluster,
        "ledger-service",
        "application/merge-patch+json",
        &huge,
        Some("t0ken"),
    );
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["reason"], "RequestEntityTooLarge");
    assert_eq!(
        cluster.get_with(path, &auth).json()["metadata"]["annotations"]["x"],
        Value::Null
    );
}

#[test]
fn custom_object_sets() {
    let mut objects = Objects::new();
    let pod = |ns: &str, name: &str, app: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/name": app}},
            "spec": {"containers": [{"name": "main", "image": "example:1"}]},
            "status": {"phase": "Running"},
        })
    };
    objects.push(pod("team-a", "web-1", "web")).expect("valid");
    objects.push(pod("team-b", "web-2", "web")).expect("valid");
    // Refused: duplicates, unknown kinds, missing namespaces, bad names.
    assert!(objects.push(pod("team-a", "web-1", "web")).is_err());
    assert!(objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}})).is_err());
    assert!(objects.push(json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}})).is_err());
    assert!(
        objects
            .push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}))
            .is_err()
    );
    assert!(objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name", "namespace": "a"}})).is_err());
    assert!(objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "a"}})).is_err());
    assert!(objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"n": 1}}})).is_err());
    assert_eq!(objects.len(), 2);

    let from_list = Objects::from_json(
        &json!({"kind": "List", "apiVersion": "v1", "items": [pod("team-c", "api-1", "api")]})
            .to_string(),
    )
    .expect("list");
    assert_eq!(from_list.len(), 1);
    assert!(Objects::from_json("{}").is_err());
    for object in from_list {
        objects.push(object).expect("valid");
    }

    let cluster = Cluster::start(Options {
        cluster: "custom".to_owned(),
        objects,
        ..Options::default()
    });
    let pods = cluster
        .get("/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dweb")
        .json();
    assert_eq!(names(&pods), ["web-1", "web-2"]);
    let web = cluster.get("/api/v1/namespaces/team-a/pods/web-1").json();
    assert_eq!(
        web["metadata"]["uid"],
        callboard_demo_kube::stable_uid(&["Pod", "team-a", "web-1"])
    );
    assert!(web["metadata"]["creationTimestamp"].as_str().is_some());
    let namespaces = names(&cluster.get("/api/v1/namespaces").json());
    for ns in ["default", "kube-system", "team-a", "team-b", "team-c"] {
        assert!(
            namespaces.contains(&ns.to_owned()),
            "{ns} in {namespaces:?}"
        );
    }
    // Every object has its own resource version, all below the list's.
    let versions: std::collections::BTreeSet<u64> = pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(rv)
        .collect();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| *v <= rv(&pods)));
}

#[test]
fn two_clusters_side_by_side() {
    let clusters: Vec<(String, Cluster)> = callboard_demo_kube::demo_clusters()
        .into_iter()
        .map(|(name, objects)| {
            let cluster = Cluster::start(Options {
                cluster: name.clone(),
                token: Some(format!("{name}-token")),
                objects,
                fault: Fault::None,
            });
            (name, cluster)
        })
        .collect();
    assert_eq!(clusters.len(), 2);
    let mut uids = Vec::new();
    for (name, cluster) in &clusters {
        let auth = format!("Bearer {name}-token");
        let list = cluster
            .get_with(
                "/apis/apps/v1/namespaces/payments/deployments?labelSelector=backstage.io%2Fkubernetes-id%3Dpayment-gateway",
                &[("Authorization", auth.as_str())],
            )
            .json();
        assert_eq!(names(&list), ["payment-gateway"], "{name}");
        uids.push(list["items"][0]["metadata"]["uid"].clone());
        // One cluster's token does not open the other.
        let other = if name == "prod-eu" {
            "staging"
        } else {
            "prod-eu"
        };
        let reply = cluster.get_with(
            "/api/v1/pods",
            &[("Authorization", format!("Bearer {other}-token").as_str())],
        );
        assert_eq!(reply.status, 401);
    }
    assert_ne!(
        uids[0], uids[1],
        "each cluster's objects have their own uids"
    );
}
