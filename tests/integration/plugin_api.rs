//! Plugin API 0.3 through the host, with the `misbehave` and `hello`
//! fixtures: views that fail in every way next to one that works, catalog
//! reads, outbound HTTP held to its grant, events, ticks.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use callboard::{
    config::{Config, LimitOverrides},
    plugins::manifest::Capabilities,
};
use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::Value;

use crate::support::{TestServer, eventually, wait_for_entities};

const CATALOG: &str = "
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: normal-svc, title: Normal Service }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: trap-svc }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: slow-svc }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: error-svc }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: evil-svc }
spec: { type: website, lifecycle: production, owner: team-a }
";

/// A server over a fresh data dir with `plugins`, the five-component
/// catalog loaded, and `tweak` applied to the config.
async fn start(dir: &Path, plugins: &[&str], tweak: impl FnOnce(&mut Config)) -> TestServer {
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let server = TestServer::with_plugins(&dir.join("data"), plugins, |config| {
        config.catalog.locations = vec![LocationConfig {
            kind: LocationKind::File,
            target: catalog.display().to_string(),
        }];
        tweak(config);
    })
    .await;
    wait_for_entities(&server, 5).await;
    server
}

fn grant(config: &mut Config, id: &str, caps: Capabilities) {
    config.grants.plugins.insert(id.to_owned(), caps);
}

fn view_of<'a>(body: &'a Value, plugin: &str) -> &'a Value {
    body["views"]
        .as_array()
        .unwrap_or_else(|| panic!("no views: {body}"))
        .iter()
        .find(|v| v["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no view of {plugin}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_that_trap_loop_or_fail_become_error_boxes_while_other_views_render() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave", "hello"], |config| {
        config.plugins.view_deadline_ms = 800;
    })
    .await;

    let cases = [
        ("trap-svc", "error", "misbehave@0.1.0"),
        ("error-svc", "error", "no data for error-svc"),
        ("slow-svc", "timeout", "did not answer within 800 ms"),
    ];
    for (name, status, message) in cases {
        let path = format!("/api/views/entity/component/default/{name}");
        let (code, body) = server.get_json(&path).await;
        assert_eq!(code, 200, "{path}: {body}");
        let bad = view_of(&body, "misbehave");
        assert_eq!(bad["status"], status, "{name}: {bad}");
        let error = bad["error"].as_str().unwrap();
        assert!(error.contains(message), "{name}: {error}");
        let html = bad["html"].as_str().unwrap();
        assert!(html.contains("role=\"alert\""), "{name}: {html}");
        let hello = view_of(&body, "hello");
        assert_eq!(hello["status"], "ok", "{name}: {hello}");
        assert!(
            hello["html"]
                .as_str()
                .unwrap()
                .contains(&format!("Hello, {name}!")),
            "{hello}"
        );
    }

    // Nothing to show: the slot is reported empty, with no markup.
    let (_, body) = server
        .get_json("/api/views/entity/component/default/normal-svc")
        .await;
    assert_eq!(view_of(&body, "misbehave")["status"], "empty");
    assert_eq!(view_of(&body, "misbehave")["html"], "");
    assert!(
        view_of(&body, "hello")["html"]
            .as_str()
            .unwrap()
            .contains("Hello, Normal Service!")
    );

    // Only the slot asked for; hello's card is for components only.
    let (_, body) = server
        .get_json("/api/views/entity/component/default/normal-svc?slot=entity-tab")
        .await;
    assert_eq!(body["views"], serde_json::json!([]));
    let (code, _) = server
        .get_json("/api/views/entity/component/default/normal-svc?slot=sidebar")
        .await;
    assert_eq!(code, 400);
    let (code, _) = server
        .get_json("/api/views/entity/component/default/no-such-svc")
        .await;
    assert_eq!(code, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_put_markup_or_script_on_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |_| {}).await;
    let (_, body) = server
        .get_json("/api/views/entity/component/default/evil-svc")
        .await;
    let view = view_of(&body, "misbehave");
    assert_eq!(view["status"], "ok", "{view}");
    let html = view["html"].as_str().unwrap();
    for forbidden in ["<script", "<img", "javascript:", "data:text"] {
        assert!(!html.contains(forbidden), "{forbidden} in {html}");
    }
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    // The portal's entity page embeds the same, under a CSP without inline script.
    let response = server
        .client
        .get(server.url("/catalog/default/component/evil-svc"))
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("<script"),
        "the entity page has a script tag"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reads_need_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |_| {}).await;
    let (_, body) = server
        .get_json("/api/plugins/misbehave/catalog?ref=component:default/normal-svc")
        .await;
    assert_eq!(
        body["error"], "catalog access is not granted to this plugin",
        "{body}"
    );
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |config| {
        let caps = Capabilities {
            catalog: true,
            ..Capabilities::default()
        };
        grant(config, "misbehave", caps);
    })
    .await;
    let (_, body) = server
        .get_json("/api/plugins/misbehave/catalog?ref=normal-svc")
        .await;
    assert_eq!(
        body["entity"]["metadata"]["title"], "Normal Service",
        "{body}"
    );
    let (_, body) = server
        .get_json("/api/plugins/misbehave/catalog?ref=nothing-here")
        .await;
    assert_eq!(body["entity"], Value::Null, "{body}");
    let (_, body) = server
        .get_json("/api/plugins/misbehave/catalog?filter=kind=component,spec.type=website")
        .await;
    assert_eq!(
        body["refs"],
        serde_json::json!(["component:default/evil-svc"])
    );
    let (_, body) = server
        .get_json(
            "/api/plugins/misbehave/catalog?filter=spec.type=website&filter=metadata.name=trap-svc",
        )
        .await;
    assert_eq!(body["refs"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = server
        .get_json("/api/plugins/misbehave/catalog?ref=a:b:c/d/e")
        .await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid catalog request"),
        "{body}"
    );
    server.stop().await;
}

/// A billing-API-like server on loopback: `/ok`, `/slow`, `/big`,
/// `/redirect` (to `localhost`, which is not granted).
async fn upstream() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = hits.clone();
    let app = Router::new()
        .route("/ok", get(|| async { "upstream says hi" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 2 << 20] }))
        .route(
            "/redirect",
            get(move || async move {
                axum::response::Redirect::temporary(&format!("http://localhost:{port}/ok"))
            }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}"), hits)
}

async fn fetch(server: &TestServer, url: &str) -> Value {
    let path = format!(
        "/api/plugins/misbehave/fetch?url={}",
        percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC)
    );
    server.get_json(&path).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_reaches_granted_hosts_only_within_time_and_size() {
    let (base, hits) = upstream().await;

    // No grant: refused before any connection.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |_| {}).await;
    let body = fetch(&server, &format!("{base}/ok")).await;
    assert_eq!(body["error"], "Denied(\"127.0.0.1\")", "{body}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a denied request reached the server"
    );
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |config| {
        config.plugins.http_max_response_bytes = 1 << 20;
        config.plugins.overrides.insert(
            "misbehave".into(),
            LimitOverrides {
                timeout_ms: Some(3_000),
                ..LimitOverrides::default()
            },
        );
        let caps = Capabilities {
            http_hosts: vec!["127.0.0.1".into()],
            ..Capabilities::default()
        };
        grant(config, "misbehave", caps);
    })
    .await;
    let body = fetch(&server, &format!("{base}/ok")).await;
    assert_eq!(body["status"], 200, "{body}");
    assert_eq!(body["body"], "upstream says hi");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Same machine, other name: still not granted, never connected.
    let port = base.rsplit(':').next().unwrap();
    let body = fetch(&server, &format!("http://localhost:{port}/ok")).await;
    assert_eq!(body["error"], "Denied(\"localhost\")", "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A redirect to a host that is not granted is not followed.
    let body = fetch(&server, &format!("{base}/redirect")).await;
    assert_eq!(body["error"], "Denied(\"localhost\")", "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "only the redirect itself");

    let body = fetch(&server, &format!("{base}/big")).await;
    assert_eq!(body["error"], "TooLarge(1048576)", "{body}");

    let path = format!(
        "/api/plugins/misbehave/fetch?timeout_ms=300&url={}",
        percent_encoding::utf8_percent_encode(
            &format!("{base}/slow"),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let (_, body) = server.get_json(&path).await;
    assert_eq!(body["error"], "Timeout", "{body}");

    let body = fetch(&server, "file:///etc/passwd").await;
    assert!(
        body["error"].as_str().unwrap().starts_with("InvalidUrl"),
        "{body}"
    );
    server.stop().await;
}

async fn counters(server: &TestServer, kinds: &str) -> Value {
    server
        .get_json(&format!("/api/plugins/misbehave/counters?kinds={kinds}"))
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_catalog_events_reach_a_subscribed_plugin_and_ticks_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["misbehave"], |config| {
        let caps = Capabilities {
            kv: true,
            events: vec!["usage".into(), "catalog".into()],
            ..Capabilities::default()
        };
        grant(config, "misbehave", caps);
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            server.get("/api/catalog/entity-facets?facet=kind").await.0,
            200
        );
    }
    let user = |path: &str| {
        server
            .client
            .get(server.url(path))
            .header("x-forwarded-user", "alice")
    };
    assert_eq!(
        user("/catalog/default/component/normal-svc")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let found = user("/api/catalog/entities/by-query?fullTextFilterTerm=zzzz")
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);

    let kinds = "entity-added,api-call,page-view,entity-view,search,plugin-call";
    let seen = eventually(20, "events counted by the plugin", || async {
        let c = counters(&server, kinds).await;
        let k = &c["by_kind"];
        (k["entity-added"].as_i64() >= Some(5)
            && k["api-call"].as_i64() >= Some(4)
            && k["page-view"].as_i64() >= Some(1)
            && k["entity-view"].as_i64() >= Some(1)
            && k["search"].as_i64() >= Some(1))
        .then_some(c)
    })
    .await;
    // The five components and the Location entity that lists them.
    assert_eq!(seen["by_kind"]["entity-added"], 6, "{seen}");
    assert_eq!(seen["by_kind"]["entity-view"], 1, "{seen}");
    assert_eq!(seen["by_kind"]["search"], 1, "{seen}");

    let info = server.running.state.plugins.get("misbehave").unwrap();
    let events = info.events.expect("event counters");
    assert!(events.delivered >= 12, "{events:?}");
    assert_eq!(events.dropped, 0, "{events:?}");

    // Scheduled every second, the first right away.
    eventually(15, "two ticks", || async {
        (counters(&server, "").await["ticks"].as_i64() >= Some(2)).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_loses_events_and_counts_them_while_requests_flow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &["misbehave"], |config| {
        config.plugins.event_queue = 8;
        config.plugins.event_batch = 4;
        config.plugins.overrides.insert(
            "misbehave".into(),
            LimitOverrides {
                timeout_ms: Some(500),
                ..LimitOverrides::default()
            },
        );
        let caps = Capabilities {
            kv: true,
            events: vec!["usage".into()],
            ..Capabilities::default()
        };
        grant(config, "misbehave", caps);
    })
    .await;
    // This search's event makes the plugin spin to its deadline, so its
    // queue fills while requests keep coming.
    let (code, _) = server
        .get("/api/catalog/entities/by-query?fullTextFilterTerm=slow-events")
        .await;
    assert_eq!(code, 200);
    for _ in 0..200 {
        assert_eq!(server.get("/api/health").await.0, 200);
    }
    // Every health request's usage event is accounted for once it is
    // delivered, dropped or in a failed batch; events still queued or in
    // the batch being delivered are not counted yet, so wait for the sum.
    let events = eventually(20, "dropped and failed counts", || async {
        let events = server.running.state.plugins.get("misbehave")?.events?;
        (events.dropped > 0
            && events.failed_batches > 0
            && events.dropped + events.delivered + 4 * events.failed_batches >= 200)
            .then_some(events)
    })
    .await;
    assert!(
        events.dropped + events.delivered + 4 * events.failed_batches >= 200,
        "{events:?}"
    );

    // And the operator sees it through the admin API.
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let admin: Value = server
        .client
        .get(server.url("/api/admin/plugins/misbehave"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(admin["events"]["dropped"].as_u64() > Some(0), "{admin}");
    assert!(
        admin["events"]["failed_batches"].as_u64() > Some(0),
        "{admin}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_asking_for_api_0_3_features_on_an_older_component_is_refused() {
    use callboard::plugins::manifest::{self, SlotKind, ViewSlot};
    let data = tempfile::tempdir().unwrap();
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bytes = std::fs::read(crate::support::plugin_file("api-v0-1")).unwrap();
    let mut m = manifest::read(&bytes).unwrap();
    m.views.push(ViewSlot {
        slot: SlotKind::EntityCard,
        title: "Old".into(),
        kinds: Vec::new(),
        path: None,
    });
    std::fs::write(
        plugins.join("api-v0-1.wasm"),
        manifest::embed(&bytes, &m).unwrap(),
    )
    .unwrap();
    let server = TestServer::start(crate::support::config(data.path())).await;
    let failures = server.running.state.plugins.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].error.contains(
            "manifest sets \"views\", which needs plugin API 0.3.0, but the component is built against 0.1.0"
        ),
        "{}",
        failures[0].error
    );
    assert!(server.running.state.plugins.list().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_built_against_api_0_2_and_0_3_still_load_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["api-v0-2", "api-v0-3"], |config| {
        grant(
            config,
            "api-v0-2",
            Capabilities {
                kv: true,
                ..Capabilities::default()
            },
        );
        grant(
            config,
            "api-v0-3",
            Capabilities {
                kv: true,
                catalog: true,
                ..Capabilities::default()
            },
        );
    })
    .await;
    let apis: Vec<(String, String)> = server
        .running
        .state
        .plugins
        .list()
        .into_iter()
        .map(|p| (p.id, p.api_version.to_string()))
        .collect();
    assert_eq!(
        apis,
        [
            ("api-v0-2".to_owned(), "0.2.0".to_owned()),
            ("api-v0-3".to_owned(), "0.3.0".to_owned())
        ]
    );
    // 0.2: a route, kv and the licence interface (none: open source).
    assert_eq!(
        server.get("/api/plugins/api-v0-2/count").await,
        (200, "api 0.2 count 1".into())
    );
    assert_eq!(
        server.get("/api/plugins/api-v0-2/license").await,
        (200, "licensed: no".into())
    );
    // 0.3: a route reading the catalog, an entity card, and ticks.
    assert_eq!(
        server.get("/api/plugins/api-v0-3/").await,
        (200, "api 0.3 says hi".into())
    );
    let (status, entity) = server
        .get("/api/plugins/api-v0-3/entity?component:default/error-svc")
        .await;
    assert_eq!(status, 200, "{entity}");
    assert!(entity.contains("\"error-svc\""), "{entity}");
    let (status, body) = server
        .get_json("/api/views/entity/component/default/error-svc")
        .await;
    assert_eq!(status, 200, "{body}");
    let card = view_of(&body, "api-v0-3");
    assert_eq!(card["status"], "ok", "{card}");
    let html = card["html"].as_str().unwrap();
    assert!(
        html.contains("entity named: true") && html.contains("0.3"),
        "{html}"
    );
    eventually(20, "a tick of the 0.3 plugin", || async {
        let (_, body) = server.get("/api/plugins/api-v0-3/ticks").await;
        (body != "ticks 0").then_some(())
    })
    .await;
    server.stop().await;
}
