//! The harness against real plugins, built by `cargo xtask build-plugins`
//! (`cargo xtask test` sets `CALLBOARD_TEST_PLUGINS` to their folder):
//! hello (routes, key-value, a card), the API 0.4 fixture (the principal,
//! permissions, actions, search), kubernetes (its clusters answered by the
//! stub, an ungranted host refused, credentials the plugin never sees, the
//! restart action as an owner and refused to others), misbehave (errors
//! naming the plugin, its version and the call; ticks; events; guarded
//! routes),
//! and building a plugin crate from source.

use std::path::PathBuf;

use callboard_plugin_harness::{
    CallError, Capabilities, CredentialConfig, Event, Harness, HarnessError, OutRequest,
    OutResponse, Principal, ResponseExt as _, Stream, http, ui,
};
use serde_json::{Value, json};

/// The folder of packed plugins; never skipped silently.
fn plugins_dir() -> PathBuf {
    let dir = std::env::var_os("CALLBOARD_TEST_PLUGINS").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "CALLBOARD_TEST_PLUGINS is not set: these tests run real plugins. Run `cargo xtask test`, \
             or `cargo xtask build-plugins` and set CALLBOARD_TEST_PLUGINS to the folder it prints"
        )
    });
    assert!(
        dir.is_dir(),
        "CALLBOARD_TEST_PLUGINS={} is not a folder; run `cargo xtask build-plugins`",
        dir.display()
    );
    dir
}

fn plugin_file(id: &str) -> PathBuf {
    let file = plugins_dir().join(format!("{id}.wasm"));
    assert!(
        file.is_file(),
        "{} is missing: run `cargo xtask build-plugins`",
        file.display()
    );
    file
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

const TEAM_A: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-b}
spec: {type: team, children: []}";

fn component(name: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "annotations": {"backstage.io/kubernetes-id": name}
        },
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}
    })
}

fn alice() -> Principal {
    Principal::user("user:default/alice", "Alice", ["group:default/team-a"])
}

fn bob() -> Principal {
    Principal::user("user:default/bob", "Bob", ["group:default/team-b"])
}

/// Every text a view shows, for assertions.
fn texts(view: &ui::View) -> String {
    serde_json::to_string(view).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_routes_key_value_and_its_card() {
    let h = Harness::builder()
        .component_file(plugin_file("hello"))
        .entity(TEAM_A)
        .entity(component("shop", "team-a"))
        .principal(alice())
        .build()
        .await
        .unwrap();
    assert_eq!(h.label(), "hello@1.0.0");

    let ping = h.get("/ping").await.unwrap();
    assert_eq!((ping.status, ping.text().as_str()), (200, "pong"));
    assert_eq!(&*ping.served_by, "hello@1.0.0");
    assert_eq!(h.get("/greet/Ada?x=1").await.unwrap().text(), "Hello, Ada!");

    // Key-value: the plugin's counter, seen from the test and seeded by it.
    assert_eq!(h.kv_get_i64("visits").await.unwrap(), None);
    for n in 1..=2 {
        let visit = h
            .request("POST", "/visits", Vec::new(), [("x-test", "1")])
            .await
            .unwrap();
        assert_eq!(visit.json::<Value>().unwrap(), json!({"visits": n}));
    }
    assert_eq!(h.kv_get_i64("visits").await.unwrap(), Some(2));
    h.kv_set("visits", 40_i64.to_le_bytes()).await.unwrap();
    let echo = h
        .request(
            "POST",
            "/echo",
            b"raw bytes".to_vec(),
            [("content-type", "x/y")],
        )
        .await
        .unwrap();
    assert_eq!(echo.body, b"raw bytes");
    assert_eq!(
        echo.header("Content-Type"),
        Some("application/octet-stream")
    );

    // Its card, rendered for an entity of the harness catalog.
    let card = h
        .view("entity-card", "component:default/shop")
        .await
        .unwrap()
        .expect("hello shows a card on components");
    assert_eq!(card.title, "Hello");
    let shown = texts(&card);
    assert!(shown.contains("Hello, shop!"), "{shown}");
    assert!(shown.contains("\"40\""), "{shown}");
    // A group is not a kind the card applies to: the portal would not ask.
    assert!(
        h.view("entity-card", "group:default/team-a")
            .await
            .unwrap()
            .is_none()
    );

    // Calls the portal would never make name the plugin, its version and the call.
    let undeclared = h
        .view("entity-tab", "component:default/shop")
        .await
        .unwrap_err();
    assert!(matches!(undeclared, HarnessError::Misuse { .. }));
    let message = undeclared.to_string();
    assert!(
        message.contains("hello@1.0.0")
            && message.contains("view entity-tab of component:default/shop"),
        "{message}"
    );
    let missing = h
        .view("entity-card", "component:default/nowhere")
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no entity"), "{missing}");
    // No action export in hello's API version? It has one (0.4), but no view
    // button; an unknown action is the plugin's own error.
    let unknown = h
        .action("entity-card", "shop", "launch", [("a", "b")])
        .await
        .unwrap_err();
    assert_eq!(unknown.plugin(), Some("hello@1.0.0"));
    assert!(unknown.plugin_message().is_some(), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_principal_permissions_actions_and_search_of_an_api_0_4_plugin() {
    let h = Harness::builder()
        .component_file(plugin_file("api-v0-4"))
        .entity(TEAM_A)
        .entity(component("shop", "team-a"))
        .entity(component("warehouse", "team-b"))
        .principal(alice())
        .allow_owners("api-v0-4.bump")
        .build()
        .await
        .unwrap();

    // The principal the plugin is told.
    let me: Value = h.get("/whoami").await.unwrap().json().unwrap();
    assert_eq!(
        me,
        json!({"user": "user:default/alice", "name": "Alice",
               "ownership": ["user:default/alice", "group:default/team-a"]})
    );
    let anonymous: Value = h
        .as_principal(Principal::Anonymous)
        .get("/whoami")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(anonymous, json!({"anonymous": true}));

    // Owners hold the permission on what they own, nowhere else.
    let may = |h: Harness, entity: &'static str| async move {
        let answer: Value = h
            .get(&format!("/may?entity={entity}"))
            .await
            .unwrap()
            .json()
            .unwrap();
        answer["allowed"].as_bool().unwrap()
    };
    assert!(may(h.clone(), "component:default/shop").await);
    assert!(!may(h.clone(), "component:default/warehouse").await);
    assert!(!may(h.as_principal(bob()), "component:default/shop").await);

    // The card's button runs as the person who pressed it.
    let card = h
        .view("entity-card", "component:default/shop")
        .await
        .unwrap()
        .unwrap();
    assert!(texts(&card).contains("Hello, Alice. Bumped 0 times."));
    let outcome = h
        .action(
            "entity-card",
            "component:default/shop",
            "bump",
            [("by", "3")],
        )
        .await
        .unwrap();
    assert_eq!(outcome.notice.title, "Bumped by Alice");
    assert_eq!(
        h.kv_get_json::<i64>("bumps:component:default/shop")
            .await
            .unwrap(),
        Some(3)
    );
    let refused = h
        .as_principal(bob())
        .action(
            "entity-card",
            "component:default/shop",
            "bump",
            [("by", "1")],
        )
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(refused.plugin_message().is_some(), "{message}");
    assert!(
        message.contains("api-v0-4@0.4.0") && message.contains("action bump"),
        "{message}"
    );

    // Search: the plugin's documents, and queries as the principal.
    let put = h
        .post_json(
            "/index",
            &json!([{"id": "d1", "title": "Runbook", "text": "restart the shop", "entity": "component:default/shop"}]),
        )
        .await
        .unwrap();
    assert!(put.status < 300, "{}: {}", put.status, put.text());
    assert_eq!(h.documents().len(), 1);
    let found: Value = h.get("/find?q=shop").await.unwrap().json().unwrap();
    assert!(found.to_string().contains("Runbook"), "{found}");
}

/// A Kubernetes API server, as the stub: pods and a deployment of `shop`
/// for the bearer token the operator binds; 401 without it.
fn cluster(request: &OutRequest) -> OutResponse {
    let token = request
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    if token != Some("Bearer prod-token") {
        return http::json(
            401,
            &json!({"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"}),
        );
    }
    let labels = json!({"backstage.io/kubernetes-id": "shop", "app": "shop"});
    let pod = |name: &str| {
        json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "labels": labels},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                       "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]
            }
        })
    };
    let deployment = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "shop", "namespace": "shop", "uid": "uid-deploy", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}}},
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}
    });
    let path = request.url.split_once("6443").map_or("", |(_, p)| p);
    match (request.method.as_str(), path) {
        ("GET", p) if p.starts_with("/api/v1/pods?") => http::json(
            200,
            &json!({"kind": "PodList", "items": [pod("shop-1"), pod("shop-2")]}),
        ),
        ("GET", p) if p.starts_with("/apis/apps/v1/deployments?") => http::json(
            200,
            &json!({"kind": "DeploymentList", "items": [deployment]}),
        ),
        ("GET" | "PATCH", "/apis/apps/v1/namespaces/shop/deployments/shop") => {
            http::json(200, &deployment)
        }
        ("GET", _) => http::json(200, &json!({"kind": "List", "items": []})),
        _ => http::empty(405),
    }
}

async fn kubernetes() -> Harness {
    Harness::builder()
        .component_file(plugin_file("kubernetes"))
        .entity(TEAM_A)
        .entity(component("shop", "team-a"))
        .setting(
            "clusters",
            json!([
                {"name": "prod", "url": "https://k8s.prod.example:6443"},
                {"name": "staging", "url": "https://k8s.staging.example:6443"}
            ]),
        )
        // The manifest asks for `*`: only prod's host is granted.
        .grant_http_hosts(["k8s.prod.example:6443"])
        .credentials(
            "k8s.prod.example:6443",
            CredentialConfig {
                headers: [("authorization".to_owned(), "Bearer prod-token".to_owned())].into(),
                ..CredentialConfig::default()
            },
        )
        .http_stub(cluster)
        .principal(alice())
        .allow_owners("kubernetes.restart")
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_clusters_answered_by_the_stub_and_an_ungranted_host_refused() {
    let h = kubernetes().await;
    assert_eq!(h.label(), "kubernetes@1.0.0");
    assert_eq!(h.info().effective.http_hosts, ["k8s.prod.example:6443"]);

    let card = h
        .view("entity-card", "component:default/shop")
        .await
        .unwrap()
        .expect("a card for an annotated component");
    let stats: Vec<&ui::Stat> = card
        .cards
        .iter()
        .flat_map(|c| &c.blocks)
        .filter_map(|b| match b {
            ui::Block::Stats(s) => Some(s),
            _ => None,
        })
        .flatten()
        .collect();
    let prod = stats
        .iter()
        .find(|s| s.label == "prod")
        .unwrap_or_else(|| panic!("no stat for prod in {}", texts(&card)));
    assert_eq!(prod.value, "2/2 pods ready");
    // Staging's host is not granted: refused by the host, never sent.
    let shown = texts(&card);
    assert!(
        shown.contains("staging") && shown.contains("not granted"),
        "{shown}"
    );
    let sent = h.http_requests();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|r| r.url.starts_with("https://k8s.prod.example:6443/")),
        "{:?}",
        sent.iter().map(|r| &r.url).collect::<Vec<_>>()
    );
    // The operator's token reached the cluster; the plugin never saw it
    // (it answers Backstage's cluster list from its settings alone).
    assert!(sent.iter().all(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer prod-token")
    }));
    let clusters = h.get("/clusters").await.unwrap();
    assert_eq!(clusters.status, 200);
    assert!(!clusters.text().contains("prod-token"));
    // Answers are cached in the plugin's key-value store.
    assert!(!h.kv_keys("c1/prod/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_restart_runs_as_the_owner_and_is_refused_to_others() {
    let h = kubernetes().await;
    let tab = h
        .view("entity-tab", "component:default/shop")
        .await
        .unwrap()
        .unwrap();
    let button = tab
        .cards
        .iter()
        .flat_map(|c| &c.blocks)
        .find_map(|b| match b {
            ui::Block::Button(b) if b.action == "restart" => Some(b.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no restart button for the owner in {}", texts(&tab)));

    let outcome = h
        .action(
            "entity-tab",
            "component:default/shop",
            "restart",
            button.values.clone(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.notice.tone, ui::Tone::Good);
    assert!(
        outcome.notice.title.contains("shop/shop") && outcome.notice.title.contains("prod"),
        "{:?}",
        outcome.notice
    );
    assert!(
        outcome
            .notice
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("Alice"),
        "{:?}",
        outcome.notice
    );
    let patch = h
        .http_requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("the restart patched the deployment");
    assert!(String::from_utf8_lossy(&patch.body).contains("kubectl.kubernetes.io/restartedAt"));

    // Bob is not an owner: no button, and pressing it anyway is refused by
    // the plugin, with an error naming the plugin, its version and the call.
    let bob = h.as_principal(bob());
    let his = bob
        .view("entity-tab", "component:default/shop")
        .await
        .unwrap()
        .unwrap();
    assert!(!texts(&his).contains("\"restart\""), "{}", texts(&his));
    let patches = h
        .http_requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let refused = bob
        .action(
            "entity-tab",
            "component:default/shop",
            "restart",
            button.values,
        )
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, HarnessError::Plugin { .. }), "{message}");
    assert!(
        message.contains("kubernetes@1.0.0")
            && message.contains("action restart in entity-tab of component:default/shop"),
        "{message}"
    );
    assert_eq!(
        h.http_requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        patches,
        "a refused restart sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_names_the_plugin_its_version_and_the_call() {
    let h = Harness::builder()
        .component_file(plugin_file("misbehave"))
        .configure(|config| config.plugins.limits.timeout_ms = 1000)
        .build()
        .await
        .unwrap();

    let panicked = h.get("/panic").await.unwrap_err();
    assert!(
        matches!(panicked.call_error(), Some(CallError::Trap { .. })),
        "{panicked:?}"
    );
    let message = panicked.to_string();
    assert!(
        message.contains("misbehave@0.1.0") && message.contains("GET /panic"),
        "{message}"
    );
    assert_eq!(panicked.call(), Some("GET /panic"));

    let looped = h.get("/loop").await.unwrap_err();
    assert!(
        matches!(looped.call_error(), Some(CallError::Timeout { .. })),
        "{looped:?}"
    );
    assert!(looped.to_string().contains("misbehave@0.1.0"), "{looped}");

    // Ticks run when the test says (nothing runs in the background).
    assert_eq!(h.kv_get_i64("ticks").await.unwrap(), None);
    h.tick().await.unwrap();
    h.tick().await.unwrap();
    assert_eq!(h.kv_get_i64("ticks").await.unwrap(), Some(2));

    // Events of a stream the plugin asks for and is granted (by default,
    // what it asks for), delivered as one batch.
    let page_view = || Event::now("page-view", Some("user:default/alice".into()), "/catalog");
    let api_call = Event::now("api-call", None, "/api/catalog/entities").with("status", 200);
    h.deliver(Stream::Usage, vec![page_view(), page_view(), api_call])
        .await
        .unwrap();
    assert_eq!(h.kv_get_i64("events").await.unwrap(), Some(3));
    assert_eq!(h.kv_get_i64("events:page-view").await.unwrap(), Some(2));
    assert_eq!(h.kv_get_i64("events:api-call").await.unwrap(), Some(1));
    // Not granted: the portal would never deliver them.
    let unsubscribed = Harness::builder()
        .component_file(plugin_file("misbehave"))
        .grants(Capabilities {
            kv: true,
            ..Capabilities::default()
        })
        .build()
        .await
        .unwrap();
    let refused = unsubscribed
        .deliver(Stream::Usage, vec![page_view()])
        .await
        .unwrap_err();
    assert!(matches!(refused, HarnessError::Setup(_)), "{refused}");
    assert!(refused.to_string().contains("usage"), "{refused}");

    // A route behind a declared permission: 403 without it, the plugin with it.
    assert_eq!(h.get("/guarded").await.unwrap().status, 403);
    let allowed = Harness::builder()
        .component_file(plugin_file("misbehave"))
        .allow("misbehave.guarded")
        .build()
        .await
        .unwrap();
    assert_eq!(allowed.get("/guarded").await.unwrap().status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_a_plugin_crate_and_embeds_its_plugin_toml() {
    // In a folder of its own beside the packed plugins: building one crate
    // alone unifies its dependencies' features differently from `cargo
    // xtask build-plugins`, whose artifacts it would otherwise invalidate.
    let target = plugins_dir()
        .parent()
        .expect("the packed plugins are in the target folder")
        .join("plugin-harness");
    let h = Harness::builder()
        .build_crate(workspace().join("example-plugins/hello"))
        .cargo_target_dir(target)
        .build()
        .await
        .unwrap();
    assert_eq!(h.manifest().id, "hello");
    assert_eq!(h.get("/ping").await.unwrap().text(), "pong");

    let bare = Harness::builder()
        .component_file(std::env::temp_dir().join("callboard-harness-no-such-component.wasm"))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(bare, HarnessError::Setup(_)), "{bare}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stubbed_calls_keep_the_hosts_checks_redirects_and_size_cap() {
    let h = Harness::builder()
        .component_file(plugin_file("api-v0-4"))
        .grant_http_hosts(["a.example", "b.example"])
        .credentials(
            "a.example",
            CredentialConfig {
                headers: [("authorization".to_owned(), "Bearer a".to_owned())].into(),
                ..CredentialConfig::default()
            },
        )
        .configure(|config| config.plugins.http_max_response_bytes = 1000)
        .http_stub(|request| {
            let credentials = request.headers.iter().any(|(k, _)| k == "authorization");
            match request.url.as_str() {
                "https://a.example/out" => OutResponse {
                    status: 302,
                    headers: vec![("Location".into(), "https://evil.example/x".into())],
                    body: Vec::new(),
                },
                "https://a.example/to-b" => OutResponse {
                    status: 302,
                    headers: vec![("location".into(), "https://b.example/landing".into())],
                    body: Vec::new(),
                },
                "https://a.example/big" => http::text(200, "x".repeat(1001)),
                _ => http::text(200, format!("credentials: {credentials}")),
            }
        })
        .build()
        .await
        .unwrap();
    let urls = [
        "https://a.example/here",
        "https://a.example/out",
        "https://a.example/to-b",
        "https://a.example/big",
        "https://c.example/",
        "http://127.0.0.1:9/",
    ];
    let query: Vec<String> = urls
        .iter()
        .map(|u| format!("url={}", u.replace(':', "%3A").replace('/', "%2F")))
        .collect();
    let answers: Value = h
        .get(&format!("/fanout?{}", query.join("&")))
        .await
        .unwrap()
        .json()
        .unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), urls.len(), "{answers:?}");
    // The operator's credentials on their host.
    assert_eq!(answers[0]["body"], "credentials: true", "{answers:?}");
    // A redirect to a host not granted is refused at that hop.
    assert!(
        answers[1]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("evil.example"),
        "{answers:?}"
    );
    // Followed to another granted host, without the first host's credentials.
    assert_eq!(answers[2]["body"], "credentials: false", "{answers:?}");
    // The response size cap.
    assert!(answers[3]["error"].is_string(), "{answers:?}");
    // Hosts not granted never reach the stub.
    assert!(answers[4]["error"].is_string(), "{answers:?}");
    assert!(answers[5]["error"].is_string(), "{answers:?}");
    let reached: Vec<String> = h.http_requests().into_iter().map(|r| r.url).collect();
    assert!(
        reached
            .iter()
            .all(|u| u.starts_with("https://a.example/") || u.starts_with("https://b.example/")),
        "{reached:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_all_s_responses_share_one_byte_cap() {
    // 1000 bytes per response, so the batch may bring back 4000 in all.
    let h = Harness::builder()
        .component_file(plugin_file("api-v0-4"))
        .grant_http_hosts(["a.example"])
        .configure(|config| config.plugins.http_max_response_bytes = 1000)
        .http_stub(|_| http::text(200, "x".repeat(900)))
        .build()
        .await
        .unwrap();
    let query: Vec<String> = (0..6)
        .map(|i| format!("url=https%3A%2F%2Fa.example%2F{i}"))
        .collect();
    let answers: Value = h
        .get(&format!("/fanout?{}", query.join("&")))
        .await
        .unwrap()
        .json()
        .unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 6, "{answers:?}");
    let answered = answers.iter().filter(|a| a["status"] == 200).count();
    let refused: Vec<&str> = answers.iter().filter_map(|a| a["error"].as_str()).collect();
    // Four fit (3600 bytes); a fifth would be 4500.
    assert_eq!(answered, 4, "{answers:?}");
    assert_eq!(refused.len(), 2, "{answers:?}");
    assert!(
        refused.iter().all(|e| e.contains("4000")),
        "the refusal names the batch's cap: {refused:?}"
    );
}
