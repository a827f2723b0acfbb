//! The commercial insights plugin: refused unsigned, disabled without a valid
//! licence, and counting the usage events of real requests into its summary
//! and its page view.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use callboard::{
    config::{Config, TrustedProxy, TrustedVendor},
    plugins::{
        license::{self, LicenseTerms},
        manifest::{self, Capabilities},
        signing::VendorKey,
    },
};
use callboard_catalog::{LocationConfig, LocationKind};
use jiff::{Timestamp, ToSpan as _};
use serde_json::{Value, json};

use crate::support::{self, TestServer, admin_token, backstage_error, config, plugin_file};

const ORG: &str = "Brightwharf";
const VENDOR: &str = "lanternfish";

/// The packed insights plugin signed with `key` (whatever signature the
/// packed file had is replaced).
fn signed_insights(key: &VendorKey) -> Vec<u8> {
    key.sign_plugin(&std::fs::read(plugin_file("insights")).unwrap())
        .unwrap()
}

/// Insights ticking every second (so its roll-up runs during a test), signed with `key`.
fn fast_ticking_insights(key: &VendorKey) -> Vec<u8> {
    let bytes = std::fs::read(plugin_file("insights")).unwrap();
    let mut m = manifest::read(&bytes).unwrap();
    m.tick_secs = Some(1);
    key.sign_plugin(&manifest::embed(&bytes, &m).unwrap())
        .unwrap()
}

fn licence(key: &VendorKey, expires: Timestamp, features: &[&str]) -> String {
    let now = Timestamp::now();
    license::issue(
        key,
        &LicenseTerms {
            plugin: "insights".into(),
            vendor: key.vendor.clone(),
            customer: ORG.into(),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            issued: now,
            not_before: now - 48.hours(),
            expires,
        },
    )
}

fn in_a_year() -> Timestamp {
    Timestamp::now() + 24.hours() * 365
}

/// A config for `data` that trusts `key` as the vendor, names the licensed
/// organisation and grants insights what it asks for.
fn insights_config(data: &Path, key: &VendorKey) -> Config {
    let mut config = config(data);
    config.organization = ORG.into();
    config.trust.vendors = vec![TrustedVendor {
        id: VENDOR.into(),
        public_key: key.public().public_key,
    }];
    // The tests name users with `x-forwarded-user`, as a fronting proxy would.
    config.proxy.trusted = vec![TrustedProxy::try_from("127.0.0.1".to_owned()).unwrap()];
    config.grants.plugins.insert(
        "insights".into(),
        Capabilities {
            kv: true,
            catalog: true,
            events: vec!["usage".into()],
            ..Capabilities::default()
        },
    );
    config
}

/// Puts the plugin file (and a licence, if given) where the server loads them.
fn install(data: &Path, plugin: &[u8], licence: Option<&str>) {
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::write(data.join("plugins/insights.wasm"), plugin).unwrap();
    if let Some(text) = licence {
        std::fs::create_dir_all(data.join("licenses")).unwrap();
        std::fs::write(data.join("licenses/insights.license"), text).unwrap();
    }
}

async fn put_licence(server: &TestServer, data: &Path, text: String) -> (u16, String) {
    support::put_licence(server, data, "insights", text).await
}

/// Polls `check` until it returns `Ok`, for up to 20 s; panics with the
/// last complaint.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(why) if Instant::now() > deadline => panic!("timed out waiting for {what}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Asserts a call to insights answers 403 saying it is disabled because of `why`.
async fn assert_disabled(server: &TestServer, path: &str, why: &str) {
    let (status, body) = server.get(path).await;
    assert_eq!(status, 403, "GET {path}: {body}");
    let (_, message) = backstage_error(&body);
    assert!(
        message.contains("insights@1.0.0 is disabled") && message.contains(why),
        "GET {path}: {message:?} does not say it is disabled because {why:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_is_refused_unsigned_and_disabled_without_a_valid_licence() {
    let data = tempfile::tempdir().unwrap();
    let key = VendorKey::generate(VENDOR).unwrap();
    install(data.path(), &signed_insights(&key), None);
    let mut config = insights_config(data.path(), &key);
    config.plugins.license_check_secs = 1;
    let server = TestServer::start(config).await;

    // Loaded (signed by the trusted vendor) but disabled: no licence.
    let info = server.running.state.plugins.get("insights").unwrap();
    assert_eq!(info.license.as_deref(), Some("commercial"));
    assert!(
        info.status.contains("no licence installed for insights"),
        "{}",
        info.status
    );
    assert_disabled(
        &server,
        "/api/plugins/insights/summary",
        "no licence installed",
    )
    .await;
    // Its page shows why, and no data.
    let (status, view) = server.get_json("/api/views/pages/insights").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "error", "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("insights@1.0.0 is disabled: no licence installed"),
        "{view}"
    );
    assert_eq!(view["view"], Value::Null, "{view}");

    // An expired licence file: still disabled, now saying it expired.
    std::fs::create_dir_all(data.path().join("licenses")).unwrap();
    std::fs::write(
        data.path().join("licenses/insights.license"),
        licence(&key, Timestamp::now() - 1.hour(), &["export"]),
    )
    .unwrap();
    eventually(
        "the periodic check to read the expired licence",
        async || {
            let (_, body) = server.get("/api/plugins/insights/summary").await;
            if body.contains("licence for insights expired on") {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    assert_disabled(&server, "/api/plugins/insights/summary", "expired on").await;
    let (status, body) = put_licence(
        &server,
        data.path(),
        licence(&key, Timestamp::now() - 1.minute(), &[]),
    )
    .await;
    assert_eq!(status, 403, "an expired licence is refused: {body}");

    // A licence from another vendor key is refused too.
    let impostor = VendorKey::generate(VENDOR).unwrap();
    let (status, body) =
        put_licence(&server, data.path(), licence(&impostor, in_a_year(), &[])).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        backstage_error(&body).1.contains("invalid signature"),
        "{body}"
    );
    assert_disabled(&server, "/api/plugins/insights/summary", "expired on").await;

    // A valid licence enables it at once; its customer is what the plugin sees.
    let (status, body) = put_licence(&server, data.path(), licence(&key, in_a_year(), &[])).await;
    assert_eq!(status, 200, "{body}");
    let (status, summary) = server.get_json("/api/plugins/insights/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["licensed_to"], ORG);
    // The export needs the licence feature `export`, which this one lacks.
    let (status, body) = server.get("/api/plugins/insights/export.csv").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        backstage_error(&body)
            .1
            .contains("needs the licence feature \"export\""),
        "{body}"
    );
    let (status, body) = put_licence(
        &server,
        data.path(),
        licence(&key, in_a_year(), &["export"]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let response = server
        .client
        .get(server.url("/api/plugins/insights/export.csv?days=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    assert_eq!(csv.lines().count(), 8, "a header and 7 days: {csv}");
    assert!(csv.starts_with("day,active_users,"), "{csv}");

    // Unsigned, or signed with a key the operator does not trust: refused.
    let bytes = std::fs::read(plugin_file("insights")).unwrap();
    let unsigned = manifest::embed(&bytes, &manifest::read(&bytes).unwrap()).unwrap();
    let stranger = VendorKey::generate(VENDOR).unwrap();
    for (case, bytes, expected) in [
        ("unsigned", unsigned, "commercial plugins must be signed"),
        (
            "signed with an untrusted key",
            stranger.sign_plugin(&bytes).unwrap(),
            "not vendor \"lanternfish\"'s trusted key",
        ),
    ] {
        let form = reqwest::multipart::Form::new().part(
            "plugin",
            reqwest::multipart::Part::bytes(bytes).file_name("insights.wasm"),
        );
        let response = server
            .client
            .post(server.url("/api/admin/plugins?force=true"))
            .bearer_auth(admin_token(data.path()))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 403, "{case}: {body}");
        assert!(
            backstage_error(&body).1.contains(expected),
            "{case}: {body}"
        );
    }
    assert_eq!(
        server.get("/api/plugins/insights/summary").await.0,
        200,
        "the licensed version keeps serving"
    );
    server.stop().await;
}

const CATALOG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: booking
  title: Booking Service
spec:
  type: service
  lifecycle: production
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: dispatch
spec:
  type: service
  lifecycle: production
  owner: team-a
";

/// GET `path` as `user` (the header a fronting proxy sets); returns the status.
async fn visit(server: &TestServer, user: &str, path: &str) -> u16 {
    let response = server
        .client
        .get(server.url(path))
        .header("x-forwarded-user", user)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(status < 500, "GET {path} as {user}: {status} {body}");
    status
}

/// Checks the figures the requests of `insights_counts_usage_from_real_requests` must produce.
fn check_summary(s: &Value) -> Result<(), String> {
    let expect = |what: &str, got: &Value, want: Value| {
        if *got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got}, want {want} in {s}"))
        }
    };
    expect("dau_today", &s["dau_today"], json!(2))?;
    expect("active_users", &s["active_users"], json!(2))?;
    expect("wau", &s["wau"], json!(2))?;
    expect(
        "top_entities",
        &s["top_entities"],
        json!([
            { "entity": "component:default/booking", "title": "Booking Service", "views": 2 },
            { "entity": "component:default/dispatch", "title": null, "views": 1 },
        ]),
    )?;
    expect(
        "zero_result_searches",
        &s["zero_result_searches"],
        json!([{ "query": "zzzz", "count": 1 }]),
    )?;
    expect("searches", &s["searches"], json!(2))?;
    let hello = s["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["plugin"] == "hello"));
    expect(
        "hello's calls",
        &json!(hello),
        json!({ "plugin": "hello", "calls": 3 }),
    )?;
    let home = s["top_pages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["path"] == "/"));
    expect(
        "views of /",
        &json!(home),
        json!({ "path": "/", "views": 1 }),
    )?;
    let booking = s["top_pages"].as_array().and_then(|p| {
        p.iter()
            .find(|p| p["path"] == "/catalog/default/component/booking")
    });
    expect(
        "views of booking's page",
        &json!(booking),
        json!({ "path": "/catalog/default/component/booking", "views": 2 }),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_counts_usage_from_real_requests() {
    let data = tempfile::tempdir().unwrap();
    let key = VendorKey::generate(VENDOR).unwrap();
    install(
        data.path(),
        &fast_ticking_insights(&key),
        Some(&licence(&key, in_a_year(), &["export"])),
    );
    std::fs::copy(plugin_file("hello"), data.path().join("plugins/hello.wasm")).unwrap();
    let catalog = data.path().join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let mut config = insights_config(data.path(), &key);
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    let server = TestServer::start(config).await;
    eventually("the catalog to hold both components", async || {
        let (status, body) = server
            .get_json("/api/catalog/entities?filter=kind=component")
            .await;
        match body.as_array().map(Vec::len) {
            Some(2) => Ok(()),
            _ => Err(format!("{status} {body}")),
        }
    })
    .await;

    // Nothing counted yet: the page says so.
    let (status, view) = server.get_json("/api/views/pages/insights").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "ok", "{view}");
    assert!(
        view["html"].as_str().unwrap().contains("No usage recorded"),
        "{view}"
    );

    // Two people use the portal.
    assert_eq!(visit(&server, "alice", "/").await, 200);
    assert_eq!(
        visit(&server, "alice", "/catalog/default/component/booking").await,
        200
    );
    assert_eq!(
        visit(&server, "bob", "/catalog/default/component/booking").await,
        200
    );
    assert_eq!(
        visit(&server, "bob", "/catalog/default/component/dispatch").await,
        200
    );
    assert_eq!(
        visit(
            &server,
            "alice",
            "/api/catalog/entities/by-query?fullTextFilterTerm=zzzz"
        )
        .await,
        200
    );
    assert_eq!(
        visit(
            &server,
            "alice",
            "/api/catalog/entities/by-query?fullTextFilterTerm=booking"
        )
        .await,
        200
    );
    for _ in 0..3 {
        assert_eq!(visit(&server, "bob", "/api/plugins/hello/ping").await, 200);
    }

    // Events arrive asynchronously: poll until every figure is there.
    let summary = eventually("the summary to count the requests", async || {
        let (status, summary) = server.get_json("/api/plugins/insights/summary").await;
        if status != 200 {
            return Err(format!("{status} {summary}"));
        }
        check_summary(&summary).map(|()| summary)
    })
    .await;
    assert_eq!(summary["days"], 30);
    assert_eq!(summary["dau"].as_array().unwrap().len(), 30);
    assert_eq!(summary["dau"][29]["users"], 2, "today is the last day");
    assert_eq!(summary["licensed_to"], ORG);
    let seen = summary["events_seen"].as_u64().unwrap();
    assert!(seen >= 11, "at least the requests above: {summary}");
    let delivered = server
        .client
        .get(server.url("/api/admin/plugins/insights"))
        .bearer_auth(admin_token(data.path()))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["events"]["delivered"]
        .as_u64()
        .unwrap();
    assert!(
        delivered >= seen,
        "every event counted was delivered ({delivered} delivered, {seen} counted)"
    );

    // The tick rolls the day's shards up (into `r/<day>`); nothing is then
    // counted twice or lost.
    let today = summary["to"].as_str().unwrap().to_owned();
    let kv = server.running.state.plugins.kv().clone();
    eventually("a tick to roll the counted events up", async || {
        let rollup = kv
            .get("insights", &format!("r/{today}"))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no roll-up yet")?;
        let rollup: Value = serde_json::from_slice(&rollup).map_err(|e| e.to_string())?;
        match rollup["day"]["entities"]["component:default/booking"].as_u64() {
            Some(2) => Ok(()),
            _ => Err(format!("roll-up so far: {rollup}")),
        }
    })
    .await;
    let (status, summary) = server.get_json("/api/plugins/insights/summary").await;
    assert_eq!(status, 200, "{summary}");
    if let Err(why) = check_summary(&summary) {
        panic!("after the roll-up: {why}");
    }

    let (status, week) = server
        .get_json("/api/plugins/insights/summary?days=7")
        .await;
    assert_eq!(status, 200);
    assert_eq!(week["dau"].as_array().unwrap().len(), 7);
    assert_eq!(week["active_users"], 2);
    let (status, body) = server.get("/api/plugins/insights/summary?days=0").await;
    assert_eq!(status, 400, "{body}");

    // The page view shows the same figures, rendered and escaped by the host.
    let (status, pages) = server.get_json("/api/views/pages").await;
    assert_eq!(status, 200, "{pages}");
    assert!(
        pages["pages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["plugin"] == "insights" && p["title"] == "Insights"),
        "{pages}"
    );
    let (status, view) = server.get_json("/api/views/pages/insights").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "ok", "{view}");
    assert_eq!(view["plugin"], "insights");
    assert_eq!(view["title"], "Insights");
    let html = view["html"].as_str().unwrap();
    for text in [
        "Active users",
        "Daily active users",
        "Booking Service",
        "/catalog/default/component/booking",
        "zzzz",
        "hello",
        "Licensed to Brightwharf",
    ] {
        assert!(html.contains(text), "the page shows {text:?}: {html}");
    }
    assert!(!html.contains("No usage recorded"), "{html}");
    let (status, view) = server.get_json("/api/views/pages/insights?days=7").await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view["html"].as_str().unwrap().contains("Last 7 days"),
        "{view}"
    );
    let (_, view) = server.get_json("/api/views/pages/insights?days=ever").await;
    assert_eq!(view["status"], "error", "{view}");
    assert!(
        view["error"].as_str().unwrap().contains("days must be"),
        "{view}"
    );
    server.stop().await;
}
