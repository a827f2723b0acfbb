//! The kubernetes plugin (`example-plugins/kubernetes`, plugin API 0.4)
//! through the host with real wasm, against the demo's Kubernetes API
//! server stand-in (`demo/kube-apiserver`, the real wire format) on
//! loopback: `prod-eu` behind a bearer token the operator binds (the plugin
//! never sees it), `staging` open, `dev` empty, `legacy` refusing every
//! credential. Checks the entity tab (errors with their fixes first, empty
//! clusters folded, a refusing cluster named once), the card, the errors
//! page across the catalog, Backstage's workloads query and clusters
//! routes, caching, the restart action (an owner's patches the deployment,
//! a non-owner's and a foreign deployment are refused), and clusters the
//! plugin cannot use (a token cluster without bound credentials, a closed
//! port, a host not granted), each one operator notice.

use std::path::Path;

use callboard::{
    config::Config,
    identity::config::Anonymous,
    plugins::{capabilities::http::credentials::CredentialConfig, manifest::Capabilities},
};
use callboard_catalog::{LocationConfig, LocationKind};
use callboard_demo_kube::{Fault, Objects, Options, Running};
use serde_json::{Value, json};

use crate::{
    people::no_redirects,
    support::{
        TestServer, admin_token, captured_logs, owners_may, publish, session, wait_for_entities,
    },
};

const PLUGIN: &str = "kubernetes";

/// Two teams, their people, and the demo's components annotated with the
/// ids the demo clusters label their objects with; `notifier` runs
/// nowhere, `docs-site` has no annotation.
const CATALOG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: payments}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: shipping}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {displayName: Alice Liddell}, memberOf: [payments]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {profile: {displayName: Bob Cratchit}, memberOf: [shipping]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: payment-gateway, annotations: {backstage.io/kubernetes-id: payment-gateway}}
spec: {type: service, lifecycle: production, owner: payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ledger-service, annotations: {backstage.io/kubernetes-id: ledger-service}}
spec: {type: service, lifecycle: production, owner: payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: reconciliation-job, annotations: {backstage.io/kubernetes-id: reconciliation-job, backstage.io/kubernetes-namespace: payments}}
spec: {type: service, lifecycle: production, owner: payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: booking-service, annotations: {backstage.io/kubernetes-id: booking-service}}
spec: {type: service, lifecycle: production, owner: shipping}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: label-service, annotations: {backstage.io/kubernetes-label-selector: 'app.kubernetes.io/name=label-service,app.kubernetes.io/part-of in (labels)'}}
spec: {type: service, lifecycle: production, owner: shipping}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: tracking-service, annotations: {backstage.io/kubernetes-id: tracking-service}}
spec: {type: service, lifecycle: production, owner: shipping}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: notifier, annotations: {backstage.io/kubernetes-id: notifier}}
spec: {type: service, lifecycle: production, owner: shipping}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: docs-site}
spec: {type: website, lifecycle: production, owner: shipping}
";

/// Entities in [`CATALOG`].
const ENTITIES: u64 = 12;

/// The fake clusters: `prod-eu` (token required), `staging`, `dev`
/// (empty), `legacy` (refuses everything).
struct Clusters {
    prod: Running,
    staging: Running,
    dev: Running,
    legacy: Running,
    token: String,
}

async fn cluster(name: &str, objects: Objects, token: Option<&str>, fault: Fault) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    callboard_demo_kube::serve(
        listener,
        Options {
            cluster: name.to_owned(),
            token: token.map(str::to_owned),
            objects,
            fault,
        },
    )
    .await
    .unwrap()
}

impl Clusters {
    async fn start() -> Self {
        let token = format!(
            "prod-eu-sa-token-{:016x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut demo = callboard_demo_kube::demo_clusters().into_iter();
        let (prod_name, prod_objects) = demo.next().unwrap();
        let (staging_name, staging_objects) = demo.next().unwrap();
        assert_eq!(
            (prod_name.as_str(), staging_name.as_str()),
            ("prod-eu", "staging")
        );
        Self {
            prod: cluster("prod-eu", prod_objects, Some(&token), Fault::None).await,
            staging: cluster("staging", staging_objects, None, Fault::None).await,
            dev: cluster("dev", Objects::new(), None, Fault::None).await,
            legacy: cluster(
                "legacy",
                callboard_demo_kube::demo_cluster("staging").unwrap(),
                None,
                Fault::Unauthorized,
            )
            .await,
            token,
        }
    }

    /// The `clusters` setting (the JSON form, prod-eu with a title).
    fn setting(&self) -> String {
        json!([
            {"name": "prod-eu", "url": self.prod.url(), "title": "Production EU"},
            {"name": "staging", "url": self.staging.url()},
            {"name": "dev", "url": self.dev.url()},
            {"name": "legacy", "url": self.legacy.url()},
        ])
        .to_string()
    }

    /// A deployment as prod-eu holds it, read directly with the token.
    async fn deployment(&self, namespace: &str, name: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                self.prod.url()
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// A server with the plugin, the catalog, sign-in required, the four
/// clusters configured (and `more`); the token bound for prod-eu when `bind`.
async fn start(dir: &Path, clusters: &Clusters, bind: bool, more: &[Value]) -> TestServer {
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let mut setting: Vec<Value> = serde_json::from_str(&clusters.setting()).unwrap();
    setting.extend_from_slice(more);
    let setting = Value::Array(setting).to_string();
    let prod = clusters.prod.addr();
    let token = clusters.token.clone();
    let server = TestServer::with_plugins(&dir.join("data"), &[PLUGIN], |config: &mut Config| {
        config.auth.anonymous = Anonymous::None;
        // Two cores shared with other tests: room for a busy machine.
        config.plugins.view_deadline_ms = 5000;
        config.catalog.locations = vec![LocationConfig {
            kind: LocationKind::File,
            target: catalog.display().to_string(),
        }];
        config.grants.plugins.insert(
            PLUGIN.into(),
            Capabilities {
                kv: true,
                catalog: true,
                http_hosts: vec!["127.0.0.1".into()],
                ..Capabilities::default()
            },
        );
        config
            .plugins
            .settings
            .insert(PLUGIN.into(), [("clusters".to_owned(), setting)].into());
        if bind {
            config.plugins.credentials.insert(
                PLUGIN.into(),
                [(
                    prod.to_string(),
                    CredentialConfig {
                        headers: [("authorization".into(), format!("Bearer {token}"))].into(),
                        ..CredentialConfig::default()
                    },
                )]
                .into(),
            );
        }
    })
    .await;
    wait_for_entities(&server, ENTITIES).await;
    server
}

async fn get(server: &TestServer, path: &str, cookie: &str) -> (u16, Value) {
    let response = no_redirects()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(server: &TestServer, path: &str, cookie: &str, body: &Value) -> (u16, Value) {
    let response = no_redirects()
        .post(server.url(path))
        .header("cookie", cookie)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The plugin's rendered view of `entity` in `slot`, as HTML.
async fn view(server: &TestServer, entity: &str, slot: &str, cookie: &str) -> String {
    let (status, body) = get(
        server,
        &format!("/api/views/entity/component/default/{entity}?slot={slot}"),
        cookie,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let views = body["views"].as_array().unwrap();
    let ours: Vec<&Value> = views.iter().filter(|v| v["plugin"] == PLUGIN).collect();
    assert_eq!(ours.len(), 1, "{entity} {slot}: {body}");
    assert_eq!(ours[0]["status"], "ok", "{entity} {slot}: {body}");
    ours[0]["html"].as_str().unwrap().to_owned()
}

/// maud escapes `"`; the plugin's texts quote names.
fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tab_card_page_and_routes_show_health_first_across_clusters() {
    let clusters = Clusters::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &clusters, true, &[]).await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let mut seen = String::new();

    // ledger-service: prod-eu's crash-looping pod first, with its fix.
    let tab = unescape(&view(&server, "ledger-service", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("CrashLoopBackOff: pod payments/ledger-service-"),
        "{tab}"
    );
    assert!(
        tab.contains(
            "The container ledger-service has crashed 14 times (last run: Error, exit code 1)"
        ),
        "{tab}"
    );
    assert!(
        tab.contains(
            "Proposed fix: Read the container's logs: kubectl logs -n payments ledger-service-"
        ),
        "{tab}"
    );
    assert!(tab.contains("-c ledger-service --previous."), "{tab}");
    assert!(
        tab.contains("DeploymentUnavailable: deployment payments/ledger-service"),
        "{tab}"
    );
    let crash = tab.find("CrashLoopBackOff").unwrap();
    assert!(
        crash < tab.find("<table").unwrap(),
        "errors come before the tables"
    );
    assert!(
        tab.contains("Production EU (prod-eu)"),
        "the cluster's title: {tab}"
    );
    // Tables of what runs: deployments (ready/desired, image), pods, services.
    assert!(
        tab.contains("registry.brightwharf.example/payments/ledger-service:4.2.0"),
        "{tab}"
    );
    assert!(
        tab.contains("<span class=\"badge tone-bad\">1/2</span>"),
        "{tab}"
    );
    assert!(
        tab.contains("<span class=\"badge tone-bad\">CrashLoopBackOff</span>"),
        "{tab}"
    );
    assert!(
        tab.contains("Services (1)") && tab.contains("ClusterIP"),
        "{tab}"
    );
    // The empty cluster folded into a line; the refusing one named once,
    // as the operator's problem, not as cards.
    assert!(tab.contains("No resources in: dev"), "{tab}");
    let refused = "kubernetes: cluster legacy refused the plugin's credentials (401); an operator should check [plugins.credentials.kubernetes.";
    assert_eq!(tab.matches(refused).count(), 1, "{tab}");
    assert!(
        tab.contains(&format!("{}\"]", clusters.legacy.addr())),
        "the binding to check: {tab}"
    );
    assert_eq!(
        tab.matches("<section class=\"plugin-card\">").count(),
        3,
        "the summary, prod-eu and staging: {tab}"
    );
    assert!(
        !tab.contains("<h3>legacy") && !tab.contains("<h3>dev"),
        "{tab}"
    );
    // No restart buttons: nobody holds kubernetes.restart yet.
    assert!(!tab.contains("Restart deployment"), "{tab}");

    // The other troubles of the demo clusters, each with its fix.
    let tab = unescape(&view(&server, "label-service", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("ImagePullBackOff: pod shipping/label-service-"),
        "{tab}"
    );
    assert!(
        tab.contains("Check that the image name and tag are right (registry.brightwharf.example/shipping/label-service:5.2.O)"),
        "{tab}"
    );
    assert!(
        tab.contains("ProgressDeadlineExceeded: deployment shipping/label-service"),
        "{tab}"
    );
    assert!(
        tab.contains("Restarting: pod shipping/label-service-"),
        "staging's 38 restarts: {tab}"
    );
    let tab = unescape(&view(&server, "booking-service", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("OOMKilled: pod shipping/booking-service-"),
        "{tab}"
    );
    assert!(
        tab.contains("Raise the container's memory limit (resources.limits.memory, now 512Mi)"),
        "{tab}"
    );
    assert!(
        tab.contains("HpaAtMaxReplicas: horizontalpodautoscaler shipping/booking-service"),
        "{tab}"
    );
    assert!(
        tab.contains("ErrImagePull: pod shipping/booking-service-"),
        "staging: {tab}"
    );
    let tab = unescape(&view(&server, "tracking-service", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("ReadinessProbeFailed: pod tracking/tracking-service-"),
        "{tab}"
    );
    assert!(
        tab.contains("its readiness probe (GET /ready on port http) has been failing"),
        "{tab}"
    );
    assert!(
        tab.contains("Ingresses (1)") && tab.contains("track.brightwharf.example"),
        "{tab}"
    );
    // The namespace annotation narrows; the failed job of last night.
    let tab = unescape(&view(&server, "reconciliation-job", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("JobFailed: job payments/reconciliation-job-"),
        "{tab}"
    );
    assert!(
        tab.contains("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{tab}"
    );
    assert!(
        tab.contains("CronJobs (1)") && tab.contains("30 2 * * *"),
        "{tab}"
    );
    // A healthy component; one running nowhere.
    let tab = unescape(&view(&server, "payment-gateway", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(tab.contains("No errors found in prod-eu"), "{tab}");
    assert!(
        !tab.contains("tone-bad\" role=\"status\"><strong>CrashLoopBackOff"),
        "{tab}"
    );
    let tab = unescape(&view(&server, "notifier", "entity-tab", &alice).await);
    seen.push_str(&tab);
    assert!(
        tab.contains("No resources in: prod-eu, staging, dev"),
        "{tab}"
    );
    assert!(
        tab.contains("Nothing in the clusters that answered is selected by component:default/notifier (backstage.io/kubernetes-id=notifier)."),
        "{tab}"
    );
    // No annotation, no tab.
    let (_, body) = get(
        &server,
        "/api/views/entity/component/default/docs-site?slot=entity-tab",
        &alice,
    )
    .await;
    assert!(
        body["views"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["plugin"] != PLUGIN || v["status"] == "empty"),
        "{body}"
    );

    // Answers are cached: the same tab again asks no cluster.
    let before = (clusters.prod.requests(), clusters.staging.requests());
    let again = unescape(&view(&server, "ledger-service", "entity-tab", &alice).await);
    assert!(again.contains("CrashLoopBackOff"));
    assert_eq!(
        (clusters.prod.requests(), clusters.staging.requests()),
        before
    );

    // The card: pods ready and errors per cluster, a link to the tab.
    let card = unescape(&view(&server, "ledger-service", "entity-card", &alice).await);
    seen.push_str(&card);
    assert!(
        card.contains("<dt>prod-eu</dt><dd class=\"value\">1/2 pods ready</dd>"),
        "{card}"
    );
    assert!(card.contains("2 errors"), "{card}");
    assert!(
        card.contains("<dt>staging</dt><dd class=\"value\">1/1 pods ready</dd>"),
        "{card}"
    );
    assert!(card.contains("no errors"), "{card}");
    assert!(
        card.contains("href=\"/catalog/default/component/ledger-service?tab=kubernetes\""),
        "{card}"
    );
    assert_eq!(card.matches("cluster legacy refused").count(), 1, "{card}");

    // The errors page: every workload with errors, across the catalog,
    // from one fan-out.
    let before = clusters.prod.requests();
    let (status, page) = get(&server, "/api/views/pages/kubernetes", &alice).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["status"], "ok", "{page}");
    let html = unescape(page["html"].as_str().unwrap());
    seen.push_str(&html);
    for (entity, problem) in [
        ("ledger-service", "CrashLoopBackOff"),
        ("label-service", "ImagePullBackOff"),
        ("label-service", "Restarting"),
        ("booking-service", "OOMKilled"),
        ("booking-service", "ErrImagePull"),
        ("tracking-service", "ReadinessProbeFailed"),
        ("reconciliation-job", "JobFailed"),
    ] {
        assert!(
            html.contains(&format!("?tab=kubernetes\">component:default/{entity}</a>")),
            "{entity}: {html}"
        );
        assert!(
            html.contains(&format!(">{problem}</span>")),
            "{problem}: {html}"
        );
    }
    assert!(
        !html.contains("component:default/payment-gateway</a>"),
        "healthy: {html}"
    );
    assert!(
        html.contains("<dt>Components checked</dt><dd class=\"value\">7</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<dt>Workloads with errors</dt><dd class=\"value\">7</dd>"),
        "{html}"
    );
    assert_eq!(
        html.matches(refused).count(),
        1,
        "the whole cluster: {html}"
    );
    // Pods, deployments, autoscalers and jobs: one combined request per
    // kind for the ids, one per kind for the custom selector.
    assert_eq!(clusters.prod.requests() - before, 8, "{html}");

    // Backstage's workloads query, by ref and by entity.
    let base = format!("/api/plugins/{PLUGIN}");
    let (status, body) = post(
        &server,
        &format!("{base}/resources/workloads/query"),
        &alice,
        &json!({"entityRef": "component:default/ledger-service", "auth": {}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    seen.push_str(&body.to_string());
    let items = body["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["cluster"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod-eu", "staging", "dev", "legacy"]);
    assert_eq!(items[0]["cluster"]["title"], "Production EU");
    let types: Vec<&str> = items[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "pods",
            "services",
            "deployments",
            "replicasets",
            "horizontalpodautoscalers",
            "jobs",
            "cronjobs",
            "ingresses"
        ]
    );
    let pods = items[0]["resources"][0]["resources"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{body}");
    assert!(pods.iter().all(|p| p["kind"] == "Pod"
        && p["metadata"]["labels"]["backstage.io/kubernetes-id"] == "ledger-service"
        && p["status"]["containerStatuses"].is_array()));
    assert_eq!(items[0]["errors"], json!([]));
    assert_eq!(items[0]["podMetrics"], json!([]));
    assert_eq!(items[0]["detectedErrors"][0]["type"], "CrashLoopBackOff");
    assert_eq!(items[0]["detectedErrors"][0]["sourceRef"]["kind"], "Pod");
    assert_eq!(
        items[2]["resources"][0],
        json!({"type": "pods", "resources": []})
    );
    let legacy = &items[3]["errors"];
    assert_eq!(legacy.as_array().unwrap().len(), 8, "{legacy}");
    assert_eq!(
        legacy[0],
        json!({"errorType": "UNAUTHORIZED_ERROR", "statusCode": 401, "resourcePath": "/api/v1/pods"})
    );
    // A posted entity only names one: its annotations are the catalog's.
    let (status, by_entity) = post(
        &server,
        &format!("{base}/resources/workloads/query"),
        &alice,
        &json!({"entity": {"kind": "Component", "metadata": {"name": "ledger-service", "annotations": {"backstage.io/kubernetes-label-selector": "k8s-app=kube-dns"}}}}),
    )
    .await;
    assert_eq!(status, 200, "{by_entity}");
    assert_eq!(
        by_entity["items"][0]["resources"][0]["resources"],
        items[0]["resources"][0]["resources"]
    );
    for (body, status) in [
        (json!({"entityRef": "component:default/nothing-here"}), 404),
        (json!({"nothing": true}), 400),
    ] {
        let (got, answer) = post(
            &server,
            &format!("{base}/resources/workloads/query"),
            &alice,
            &body,
        )
        .await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    // Plugin routes need a signed-in person.
    let response = reqwest::Client::new()
        .post(server.url(&format!("{base}/resources/workloads/query")))
        .json(&json!({"entityRef": "component:default/ledger-service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Or the operator's admin token, which reads every entity.
    let response = reqwest::Client::new()
        .post(server.url(&format!("{base}/resources/workloads/query")))
        .bearer_auth(admin_token(&dir.path().join("data")))
        .json(&json!({"entityRef": "component:default/tracking-service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["items"][0]["detectedErrors"][0]["type"], "ReadinessProbeFailed",
        "{body}"
    );
    let (status, list) = get(&server, &format!("{base}/clusters"), &alice).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["prod-eu", "staging", "dev", "legacy"]
    );
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["authProvider"] == "serviceAccount")
    );
    seen.push_str(&list.to_string());

    // The token reached prod-eu (it answered) and nothing the plugin shows or logs.
    assert!(!seen.contains(&clusters.token));
    assert!(!captured_logs().contains(&clusters.token));
    server.stop().await;
}

/// Presses a button of the tab as a browser would.
async fn press(
    server: &TestServer,
    cookie: &str,
    csrf: &str,
    entity: &str,
    values: &[(&str, &str)],
) -> (u16, String) {
    let entity_ref = format!("component:default/{entity}");
    let mut fields: Vec<(&str, &str)> = vec![
        ("_csrf", csrf),
        ("_slot", "entity-tab"),
        ("_entity", &entity_ref),
        ("_path", ""),
        ("_query", ""),
    ];
    fields.extend_from_slice(values);
    let response = no_redirects()
        .post(server.url(&format!("/plugins/{PLUGIN}/-/actions/restart")))
        .header("cookie", cookie)
        .header("origin", server.running.url())
        .form(&fields)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        unescape(&response.text().await.unwrap()),
    )
}

fn version(deployment: &Value) -> u64 {
    deployment["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn restarted_at(deployment: &Value) -> Option<&str> {
    deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_restart_their_deployments_and_nobody_else_does() {
    let clusters = Clusters::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &clusters, true, &[]).await;
    publish(&server, &owners_may("kubernetes.restart")).await;
    let (alice, alice_csrf) = session(&server, "user:default/alice").await;
    let (bob, bob_csrf) = session(&server, "user:default/bob").await;

    // The buttons are there for an owner only.
    let tab = unescape(&view(&server, "ledger-service", "entity-tab", &alice).await);
    assert!(
        tab.contains("Restart deployment payments/ledger-service</button>"),
        "{tab}"
    );
    assert!(
        tab.contains("action=\"/plugins/kubernetes/-/actions/restart\""),
        "{tab}"
    );
    assert!(tab.contains("name=\"cluster\" value=\"prod-eu\""), "{tab}");
    let tab = unescape(&view(&server, "ledger-service", "entity-tab", &bob).await);
    assert!(!tab.contains("Restart deployment"), "{tab}");

    let before = clusters.deployment("payments", "ledger-service").await;
    assert_eq!(restarted_at(&before), None);
    let restart = [
        ("cluster", "prod-eu"),
        ("namespace", "payments"),
        ("deployment", "ledger-service"),
    ];

    // A non-owner is refused by the plugin's permission check.
    let (status, body) = press(&server, &bob, &bob_csrf, "ledger-service", &restart).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("you do not have permission kubernetes.restart"),
        "{body}"
    );
    let after_bob = clusters.deployment("payments", "ledger-service").await;
    assert_eq!(version(&after_bob), version(&before));
    assert_eq!(restarted_at(&after_bob), None);

    // The owner restarts it: kubectl's patch reaches the cluster.
    let (status, body) = press(&server, &alice, &alice_csrf, "ledger-service", &restart).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Restarting deployment payments/ledger-service in prod-eu"),
        "{body}"
    );
    assert!(
        body.contains("Alice Liddell asked for a rollout restart"),
        "{body}"
    );
    let after = clusters.deployment("payments", "ledger-service").await;
    assert!(version(&after) > version(&before), "{after}");
    let at: jiff::Timestamp = restarted_at(&after)
        .unwrap_or_else(|| panic!("no restartedAt: {after}"))
        .parse()
        .unwrap();
    assert!(
        jiff::Timestamp::now().duration_since(at).as_secs() < 120,
        "{at}"
    );
    assert_eq!(
        after["metadata"]["generation"].as_i64(),
        before["metadata"]["generation"].as_i64().map(|g| g + 1)
    );
    // The view is shown again, from the cluster (the cache was forgotten).
    assert!(
        body.contains("CrashLoopBackOff: pod payments/ledger-service-"),
        "{body}"
    );

    // Posted values are not trusted: another component's deployment,
    // another namespace's, an unknown cluster, a malformed name.
    for (values, why) in [
        (
            [
                ("cluster", "prod-eu"),
                ("namespace", "shipping"),
                ("deployment", "label-service"),
            ],
            "deployment shipping/label-service in cluster prod-eu does not belong to component:default/ledger-service",
        ),
        (
            [
                ("cluster", "prod-eu"),
                ("namespace", "kube-system"),
                ("deployment", "coredns"),
            ],
            "does not belong to component:default/ledger-service",
        ),
        (
            [
                ("cluster", "elsewhere"),
                ("namespace", "payments"),
                ("deployment", "ledger-service"),
            ],
            "\"elsewhere\" is not a configured cluster",
        ),
        (
            [
                ("cluster", "prod-eu"),
                ("namespace", "payments"),
                ("deployment", "../../api"),
            ],
            "is not a deployment name",
        ),
        (
            [
                ("cluster", "prod-eu"),
                ("namespace", "payments"),
                ("deployment", "no-such-deployment"),
            ],
            "NotFound",
        ),
    ] {
        let (status, body) = press(&server, &alice, &alice_csrf, "ledger-service", &values).await;
        assert_eq!(status, 422, "{why}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    // reconciliation-job names its namespace: only deployments there count.
    let (status, body) = press(&server, &alice, &alice_csrf, "reconciliation-job", &restart).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("does not belong to component:default/reconciliation-job"),
        "{body}"
    );
    for (namespace, name) in [("shipping", "label-service"), ("kube-system", "coredns")] {
        let d = clusters.deployment(namespace, name).await;
        assert_eq!(restarted_at(&d), None, "{namespace}/{name} untouched");
    }
    // Only alice's one restart changed the cluster.
    assert_eq!(
        version(&clusters.deployment("payments", "ledger-service").await),
        version(&after)
    );
    assert!(!captured_logs().contains(&clusters.token));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_the_plugin_cannot_use_are_one_operator_notice_each() {
    let clusters = Clusters::start().await;
    // A port nothing listens on, and a host the operator did not grant.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let more = [
        json!({"name": "gone", "url": format!("http://{closed}")}),
        json!({"name": "outside", "url": "http://192.0.2.1:6443"}),
    ];
    let dir = tempfile::tempdir().unwrap();
    // prod-eu wants a token, and none is bound.
    let server = start(dir.path(), &clusters, false, &more).await;
    let (alice, _) = session(&server, "user:default/alice").await;
    let tab = unescape(&view(&server, "ledger-service", "entity-tab", &alice).await);
    let refused = "kubernetes: cluster prod-eu refused the plugin's credentials (401); an operator should check [plugins.credentials.kubernetes.";
    assert_eq!(tab.matches(refused).count(), 1, "{tab}");
    assert!(
        tab.contains(&format!("{}\"]", clusters.prod.addr())),
        "{tab}"
    );
    for problem in [
        "cluster legacy refused the plugin's credentials (401); an operator",
        "kubernetes: cluster gone is unreachable</strong>",
        "kubernetes: cluster outside's host is not granted to the plugin</strong>",
    ] {
        assert_eq!(tab.matches(problem).count(), 1, "{problem}: {tab}");
    }
    assert!(
        tab.contains("[grants.plugins.kubernetes] http_hosts"),
        "{tab}"
    );
    // staging still shows; no card for the others.
    assert!(tab.contains("<h3>staging</h3>"), "{tab}");
    assert_eq!(
        tab.matches("<section class=\"plugin-card\">").count(),
        2,
        "the summary and staging: {tab}"
    );
    // Six clusters by eight kinds are two batches: prod-eu refused the
    // first, and was not asked the rest.
    let asked = clusters.prod.requests();
    assert!((1..8).contains(&asked), "{asked}");
    // Nor again within the cache's time.
    let again = unescape(&view(&server, "ledger-service", "entity-tab", &alice).await);
    assert_eq!(again.matches(refused).count(), 1, "{again}");
    assert_eq!(clusters.prod.requests(), asked);
    server.stop().await;
}
