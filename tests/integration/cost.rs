//! The cost plugin through the host, with real wasm: billing export files in
//! a granted directory, a billing API on a real loopback server (granted, and
//! not granted), and the demo's catalog and billing export. Figures are
//! checked against what the rows the tests write add up to.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use callboard::plugins::manifest::Capabilities;
use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::{Value, json};

use crate::support::{TestServer, config, install};

/// Two teams, one system, four components (`idle` has no costs).
const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: team-a }
spec: { type: team, profile: { displayName: Team A }, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: team-b }
spec: { type: team, profile: { displayName: Team B }, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: { name: shop }
spec: { owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: checkout }
spec: { type: service, lifecycle: production, owner: team-a, system: shop }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: search }
spec: { type: service, lifecycle: production, owner: group:default/team-b, system: shop }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: mailer }
spec: { type: service, lifecycle: production, owner: team-b }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: idle }
spec: { type: library, lifecycle: production, owner: team-a, system: shop }
"#;
const CATALOG_ENTITIES: u64 = 7;

/// One billing line: month, component ("" = untagged), service, dollars.
type Line = (&'static str, &'static str, &'static str, &'static str);

/// January to June 2026 (complete months whenever the tests run).
///
/// | month | checkout | search | mailer | untagged |
/// |---|---|---|---|---|
/// | Jan-Apr | 950 + 450 = 1,400 | 800 | 350 | 100 |
/// | May | 1,000 + 500 = 1,500 | 800 | 350 | 100 |
/// | Jun | 1,100.40 + 520 = 1,620.40 | 1,310 | 300 | 100 |
fn lines() -> Vec<Line> {
    let mut lines = Vec::new();
    for month in ["2026-01", "2026-02", "2026-03", "2026-04"] {
        lines.extend([
            (month, "checkout", "compute", "950.00"),
            (month, "checkout", "database", "450.00"),
        ]);
    }
    lines.extend([
        ("2026-05", "checkout", "compute", "1000.00"),
        ("2026-05", "checkout", "database", "500.00"),
        ("2026-06", "checkout", "compute", "1100.40"),
        (
            "2026-06",
            "component:default/checkout",
            "database",
            "520.00",
        ),
    ]);
    for month in ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"] {
        lines.extend([
            (month, "search", "compute", "800.00"),
            (month, "mailer", "email", "350.00"),
        ]);
    }
    lines.extend([
        ("2026-06", "search", "compute", "1310.00"),
        ("2026-06", "mailer", "email", "300.00"),
    ]);
    for month in [
        "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
    ] {
        lines.push((month, "", "support", "100.00"));
    }
    lines
}

/// Writes the lines as two export files with different column orders.
fn write_billing(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (first, second): (Vec<Line>, Vec<Line>) =
        lines().into_iter().partition(|(_, component, _, _)| {
            matches!(*component, "" | "checkout") || component.starts_with("component:")
        });
    let mut a = String::from("month,account,service,component,cost_usd\n");
    for (month, component, service, cost) in first {
        a.push_str(&format!("{month},prod,{service},{component},{cost}\n"));
    }
    let mut b = String::from("Component,Service,Month,Cost_USD,Account\n");
    for (month, component, service, cost) in second {
        b.push_str(&format!(
            "{component},{service},{month},{cost},\"prod, EU\"\n"
        ));
    }
    std::fs::write(dir.join("2026-a.csv"), a).unwrap();
    std::fs::write(dir.join("2026-b.csv"), b).unwrap();
    // Not an export: ignored.
    std::fs::write(dir.join("notes.txt"), "month,component\nnot,csv\n").unwrap();
}

/// Starts a server with the cost plugin, the catalog at `catalog` (waiting
/// for `entities` of it), the grant and the plugin settings given.
async fn start(
    dir: &Path,
    catalog: &Path,
    entities: u64,
    grant: Capabilities,
    settings: &[(&str, String)],
) -> TestServer {
    let data = dir.join("data");
    install(&data, &["cost"]);
    let mut config = config(&data);
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    config.grants.plugins.insert("cost".into(), grant);
    if !settings.is_empty() {
        config.plugins.settings.insert(
            "cost".into(),
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        );
    }
    let server = TestServer::start(config).await;
    crate::support::wait_for_entities(&server, entities).await;
    server
}

fn write_catalog(dir: &Path) -> PathBuf {
    let file = dir.join("catalog.yaml");
    std::fs::write(&file, CATALOG).unwrap();
    file
}

fn files_grant(billing: &Path) -> Capabilities {
    Capabilities {
        catalog: true,
        files: BTreeMap::from([("/billing".to_owned(), billing.display().to_string())]),
        ..Capabilities::default()
    }
}

/// The cost plugin's card for an entity, if the host lists one.
async fn card(server: &TestServer, kind: &str, name: &str) -> Option<Value> {
    let path = format!("/api/views/entity/{kind}/default/{name}");
    let (status, body) = server.get_json(&path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body["views"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: no views: {body}"))
        .iter()
        .find(|v| v["plugin"] == "cost" && v["slot"] == "entity-card")
        .cloned()
}

/// The HTML of a view that rendered.
fn html(view: &Value) -> String {
    assert_eq!(view["status"], "ok", "{view:#}");
    view["html"].as_str().unwrap().to_owned()
}

/// The HTML of the cost card for an entity, which must render.
async fn card_html(server: &TestServer, kind: &str, name: &str) -> String {
    let view = card(server, kind, name)
        .await
        .unwrap_or_else(|| panic!("no cost card for {kind}:{name}"));
    html(&view)
}

/// The HTML of a cost page.
async fn page_html(server: &TestServer, path: &str) -> String {
    let (status, body) = server
        .get_json(&format!("/api/views/pages/cost{path}"))
        .await;
    assert_eq!(status, 200, "page {path}: {body}");
    html(&body)
}

/// `(error.name, error.message)` of a plugin's error body (the SDK's
/// Backstage-shaped error).
fn plugin_error(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (
        v["error"]["name"].as_str().unwrap_or_default().to_owned(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected {needle:?} in:\n{haystack}"
        );
    }
}

/// Checks the figures the rows of [`lines`] add up to, in views and JSON.
async fn check_figures(server: &TestServer) {
    // checkout: $1,620.40 in June against $1,500 in May: +8.03%.
    let checkout = card_html(server, "component", "checkout").await;
    assert_contains(
        &checkout,
        &[
            "$1,620 / month",
            "+8%",
            "Jun 2026",
            "$8,720", // January to June
            "compute",
            "$1,100",
            "database",
            "$520",
            "/plugins/cost/teams/team-a",
        ],
    );
    assert!(!checkout.contains("Cost anomaly"), "{checkout}");

    // shop = checkout + search: $2,930.40 against $2,300: +27.4%.
    let shop = card_html(server, "system", "shop").await;
    assert_contains(
        &shop,
        &[
            "$2,930 / month",
            "+27%",
            "checkout",
            "search",
            "Team A",
            "Team B",
        ],
    );

    let (status, c) = server
        .get_json("/api/plugins/cost/components/checkout")
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["component"], "checkout");
    assert_eq!(c["system"], "shop");
    assert_eq!(c["owner"], "team-a");
    assert_eq!(c["month"], "2026-06");
    assert_eq!(c["cost_usd"], 1620.4);
    assert_eq!(c["previous_usd"], 1500.0);
    assert_eq!(c["change_pct"], 8.0);
    assert_eq!(c["total_12m_usd"], 8720.4);
    assert_eq!(c["anomaly"], Value::Null);
    let trend: Vec<(&str, f64)> = c["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["month"].as_str().unwrap(),
                p["cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        trend,
        [
            ("2026-01", 1400.0),
            ("2026-02", 1400.0),
            ("2026-03", 1400.0),
            ("2026-04", 1400.0),
            ("2026-05", 1500.0),
            ("2026-06", 1620.4)
        ]
    );
    let services: Vec<(&str, f64)> = c["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap(),
                s["cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(services, [("compute", 1100.4), ("database", 520.0)]);

    let (status, s) = server.get_json("/api/plugins/cost/systems/shop").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["cost_usd"], 2930.4);
    assert_eq!(s["previous_usd"], 2300.0);
    let members: Vec<&str> = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["checkout", "search"]);

    // Teams: team-a = checkout; team-b = search + mailer, $1,610 against $1,150: +40%.
    let (status, teams) = server.get_json("/api/plugins/cost/teams").await;
    assert_eq!(status, 200, "{teams}");
    assert_eq!(teams["month"], "2026-06");
    let rows: Vec<(&str, &str, f64, f64)> = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["team"].as_str().unwrap(),
                t["name"].as_str().unwrap(),
                t["cost_usd"].as_f64().unwrap(),
                t["change_pct"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("team-a", "Team A", 1620.4, 8.0),
            ("team-b", "Team B", 1610.0, 40.0)
        ]
    );
    assert_eq!(teams["untagged_usd"], 100.0);

    let (status, b) = server.get_json("/api/plugins/cost/teams/team-b").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["cost_usd"], 1610.0);
    assert_eq!(b["change_pct"], 40.0);
    let owned: Vec<&str> = b["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(owned, ["search", "mailer"]);
    assert_eq!(b["systems"][0]["system"], "shop");
    assert_eq!(b["systems"][0]["cost_usd"], 1310.0);
    let movers: Vec<(&str, f64)> = b["movers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["component"].as_str().unwrap(),
                m["change_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(movers, [("search", 510.0), ("mailer", -50.0)]);

    let teams_page = page_html(server, "/teams").await;
    assert_contains(
        &teams_page,
        &[
            "Team A",
            "$1,620",
            "+8%",
            "Team B",
            "$1,610",
            "+40%",
            "/plugins/cost/teams/team-b",
        ],
    );
    let team_page = page_html(server, "/teams/team-b").await;
    assert_contains(
        &team_page,
        &[
            "Team B",
            "search",
            "mailer",
            "shop",
            "$1,610 / month",
            "-14%",
        ],
    );
    let overview = page_html(server, "").await;
    assert_contains(&overview, &["$3,330 / month", "search", "Top movers"]);

    // No costs: no card, and a 404 from the API.
    let idle = card(server, "component", "idle").await;
    assert!(
        idle.as_ref().is_none_or(|v| v["status"] == "empty"),
        "{idle:?}"
    );
    let (status, body) = server.get("/api/plugins/cost/components/idle").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(plugin_error(&body).0, "NotFoundError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_files_roll_up_to_components_systems_and_teams() {
    let dir = tempfile::tempdir().unwrap();
    let billing = dir.path().join("billing");
    write_billing(&billing);
    let catalog = write_catalog(dir.path());
    let server = start(
        dir.path(),
        &catalog,
        CATALOG_ENTITIES,
        files_grant(&billing),
        &[],
    )
    .await;
    check_figures(&server).await;

    // search: stable at $800, then $1,310 (+64%): flagged, and so are the
    // system and the team it lifts; checkout (+8%) and mailer are not.
    let search = card_html(&server, "component", "search").await;
    assert_contains(
        &search,
        &[
            "$1,310 / month",
            "+64%",
            "Cost anomaly",
            "+64% vs May 2026 ($800 → $1,310)",
        ],
    );
    let (status, a) = server.get_json("/api/plugins/cost/anomalies").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["month"], "2026-06");
    let flagged: BTreeSet<(String, String)> = a["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["kind"].as_str().unwrap().to_owned(),
                x["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("component", "search"),
        ("system", "shop"),
        ("team", "team-b"),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n.to_owned()))
    .collect();
    assert_eq!(flagged, expected, "{a:#}");

    // A changed export is read again: checkout gains $79.60 of storage in June.
    let mut a_csv = std::fs::read_to_string(billing.join("2026-a.csv")).unwrap();
    a_csv.push_str("2026-06,prod,storage,checkout,79.60\n");
    std::fs::write(billing.join("2026-a.csv"), a_csv).unwrap();
    let checkout = card_html(&server, "component", "checkout").await;
    assert_contains(&checkout, &["$1,700 / month", "+13%", "storage"]);
    server.stop().await;
}

/// The same rows as the billing API's JSON.
fn api_rows() -> Value {
    let rows: Vec<Value> = lines()
        .into_iter()
        .enumerate()
        .map(|(i, (month, component, service, cost))| {
            // Numbers and decimal strings are both accepted.
            let cost = if i % 2 == 0 {
                json!(cost.parse::<f64>().unwrap())
            } else {
                json!(cost)
            };
            json!({ "month": month, "component": component, "service": service, "cost_usd": cost })
        })
        .collect();
    json!({ "rows": rows })
}

/// A billing API on 127.0.0.1:0 that wants `Bearer s3cret`; counts requests.
async fn billing_api() -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::{http::HeaderMap, http::StatusCode, response::IntoResponse, routing::get};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = api_rows();
    let app = axum::Router::new().route(
        "/v1/costs",
        get(move |headers: HeaderMap| {
            let counter = counter.clone();
            let body = body.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer s3cret") => axum::Json(body).into_response(),
                    _ => (StatusCode::UNAUTHORIZED, "token required").into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_billing_api_is_read_once_and_rolled_up() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path());
    let (addr, hits) = billing_api().await;
    let grant = Capabilities {
        catalog: true,
        http_hosts: vec!["127.0.0.1".into()],
        ..Capabilities::default()
    };
    let server = start(
        dir.path(),
        &catalog,
        CATALOG_ENTITIES,
        grant,
        &[
            ("source", "http".into()),
            ("billing_url", format!("http://{addr}/v1/costs")),
            ("billing_token", "s3cret".into()),
        ],
    )
    .await;
    check_figures(&server).await;
    // Every view and route above was answered from one fetch, cached in kv.
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_host_that_is_not_granted_is_never_called() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path());
    // A real listener that nobody accepts on: a connection would queue in
    // its backlog, where the non-blocking accept below would find it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    // Catalog only: the manifest asks for any host, the operator grants none.
    let grant = Capabilities {
        catalog: true,
        ..Capabilities::default()
    };
    let server = start(
        dir.path(),
        &catalog,
        CATALOG_ENTITIES,
        grant,
        &[
            ("source", "http".into()),
            ("billing_url", format!("http://{addr}/v1/costs")),
        ],
    )
    .await;
    let denied = "billing host 127.0.0.1 is not granted to the cost plugin";

    let checkout = card_html(&server, "component", "checkout").await;
    assert_contains(&checkout, &[denied]);
    assert!(!checkout.contains("/ month"), "{checkout}");
    assert_contains(&card_html(&server, "system", "shop").await, &[denied]);
    assert_contains(&page_html(&server, "/teams").await, &[denied]);
    let (status, body) = server.get("/api/plugins/cost/teams").await;
    assert_eq!(status, 503, "{body}");
    assert!(plugin_error(&body).1.contains(denied), "{body}");

    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the plugin connected to the billing host from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
    server.stop().await;
}

fn demo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Valid entities in the demo catalog (its README says so).
const DEMO_ENTITIES: u64 = 107;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_billing_export_covers_every_demo_component() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &demo_path("demo/catalog/all.yaml"),
        DEMO_ENTITIES,
        files_grant(&demo_path("demo/billing")),
        &[],
    )
    .await;
    let (status, components) = server
        .get_json("/api/catalog/entities?filter=kind=component&fields=metadata.name")
        .await;
    assert_eq!(status, 200, "{components}");
    let names: Vec<String> = components
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 33, "{names:?}");
    for name in &names {
        let card = card_html(&server, "component", name).await;
        assert_contains(&card, &["/ month", "Oct 2026", "By service"]);
    }
    for system in ["booking", "dispatch", "payments", "tracking"] {
        assert_contains(
            &card_html(&server, "system", system).await,
            &["/ month", "By component"],
        );
    }

    let (status, a) = server.get_json("/api/plugins/cost/anomalies").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["month"], "2026-10");
    let flagged: BTreeSet<&str> = a["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "component")
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        flagged,
        BTreeSet::from(["eta-predictor", "tracking-lake-pipeline"]),
        "the anomalies demo/billing/README.md describes"
    );

    let (status, teams) = server.get_json("/api/plugins/cost/teams").await;
    assert_eq!(status, 200, "{teams}");
    let owners: BTreeSet<&str> = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from([
            "billing-team",
            "data-team",
            "design-team",
            "fleet-team",
            "platform-team",
            "shipping-team",
            "tracking-team",
            "user:tomasz.wojcik",
        ])
    );
    // parcel-insurance is rejected by the catalog but still costs money.
    assert!(
        teams["not_in_catalog_usd"].as_f64().unwrap() > 0.0,
        "{teams}"
    );

    let (status, overview) = server.get_json("/api/plugins/cost").await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(
        overview["movers"][0]["component"], "eta-predictor",
        "{overview:#}"
    );
    let (status, pages) = server.get_json("/api/views/pages").await;
    assert_eq!(status, 200, "{pages}");
    assert!(
        pages["pages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["plugin"] == "cost" && p["href"] == "/plugins/cost/teams"),
        "{pages}"
    );
    assert_contains(
        &page_html(&server, "/teams/data-team").await,
        &["eta-predictor", "tracking-lake-pipeline", "Cost anomaly"],
    );
    server.stop().await;
}
