//! The demo CI API server (in-process, on 127.0.0.1:0) on its own, and the
//! ci plugin through the host with real wasm calling it over real HTTP: the
//! entity tab, caching in key-value storage (proved with the server's request
//! counter), and the notices for a missing token, an unreachable API, a
//! rejected token, a host not granted and a stale cache.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use callboard::plugins::manifest::Capabilities;
use callboard_catalog::{LocationConfig, LocationKind};
use callboard_demo_ci::{Options, Running};
use serde_json::Value;

use crate::support::{TestServer, config, install};

const TOKEN: &str = "test-ci-token";

/// The repository the test catalog's `checkout` component points at.
const REPO: &str = "brightwharf/booking-service";

/// `checkout` with the annotation, `notes` without.
const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    github.com/project-slug: brightwharf/booking-service
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: notes }
spec: { type: service, lifecycle: production, owner: team-a }
"#;

/// The demo CI API with `token`, on an ephemeral loopback port.
async fn ci_api(token: Option<&str>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    callboard_demo_ci::serve(
        listener,
        Options {
            token: token.map(str::to_owned),
        },
    )
    .await
    .unwrap()
}

/// GET `path` on the CI API with `authorization`, as `(status, JSON)`.
async fn api_get(api: &Running, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", api.url()));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")),
    )
}

/// Every `github.com/project-slug` in the demo catalog.
fn demo_slugs() -> BTreeSet<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog");
    let mut slugs = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(slug) = line.trim().strip_prefix("github.com/project-slug:") {
                    slugs.insert(slug.trim().to_owned());
                }
            }
        }
    }
    assert!(slugs.len() > 20, "demo catalog slugs: {slugs:?}");
    slugs
}

fn runs(body: &Value) -> &Vec<Value> {
    body["workflow_runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no workflow_runs: {body}"))
}

#[tokio::test]
async fn demo_ci_api_serves_github_shaped_runs_for_every_demo_repository() {
    let api = ci_api(Some(TOKEN)).await;
    let bearer = format!("Bearer {TOKEN}");
    let now = jiff::Timestamp::now();
    let (mut in_progress, mut troubled) = (0, 0);
    let (mut all_succeeded, mut all_completed) = (0, 0);
    for slug in demo_slugs() {
        let (status, body) = api_get(
            &api,
            &format!("/repos/{slug}/actions/runs?per_page=100"),
            Some(&bearer),
        )
        .await;
        assert_eq!(status, 200, "{slug}: {body}");
        let total = body["total_count"].as_u64().unwrap();
        let list = runs(&body);
        assert!(
            (24..=100).contains(&total),
            "{slug}: a few dozen runs, got {total}"
        );
        assert_eq!(list.len() as u64, total, "{slug}: one page holds them all");
        let mut previous: Option<jiff::Timestamp> = None;
        let (mut succeeded, mut completed) = (0, 0);
        for run in list {
            for field in [
                "name",
                "head_branch",
                "head_sha",
                "event",
                "status",
                "html_url",
                "created_at",
                "updated_at",
                "run_started_at",
            ] {
                assert!(run[field].is_string(), "{slug}: {field} in {run}");
            }
            assert!(run["id"].is_u64() && run["run_number"].is_u64(), "{run}");
            assert_eq!(run["head_sha"].as_str().unwrap().len(), 40, "{run}");
            assert!(run["actor"]["login"].is_string(), "{run}");
            assert_eq!(run["repository"]["full_name"], slug.as_str());
            let created: jiff::Timestamp = run["created_at"].as_str().unwrap().parse().unwrap();
            let started: jiff::Timestamp = run["run_started_at"].as_str().unwrap().parse().unwrap();
            let updated: jiff::Timestamp = run["updated_at"].as_str().unwrap().parse().unwrap();
            assert!(
                created <= now && started >= created && updated >= created,
                "{run}"
            );
            assert!(
                now.duration_since(created) < jiff::SignedDuration::from_hours(24 * 30),
                "{slug}: runs are from the last weeks: {run}"
            );
            assert!(
                previous.is_none_or(|p| p >= created),
                "{slug}: newest first"
            );
            previous = Some(created);
            match run["status"].as_str().unwrap() {
                "completed" => {
                    completed += 1;
                    let conclusion = run["conclusion"].as_str().unwrap();
                    succeeded += usize::from(conclusion == "success");
                    let secs = started.duration_until(updated).as_secs();
                    assert!(
                        (10..4 * 3600).contains(&secs),
                        "{slug}: a believable duration ({secs} s): {run}"
                    );
                }
                "in_progress" | "queued" => {
                    in_progress += 1;
                    assert!(run["conclusion"].is_null(), "{run}");
                }
                other => panic!("{slug}: status {other}"),
            }
        }
        let rate = succeeded as f64 / completed as f64;
        assert!(rate > 0.3, "{slug}: success rate {rate}");
        if rate < 0.78 {
            troubled += 1;
        }
        all_succeeded += succeeded;
        all_completed += completed;
    }
    let rate = all_succeeded as f64 / all_completed as f64;
    assert!(rate > 0.8, "mostly green, got {rate}");
    assert!(in_progress >= 1, "some runs are in progress");
    assert!(troubled >= 2, "a couple of repositories fail often");

    // Paging, filters, and both authorization schemes.
    let (_, all) = api_get(
        &api,
        &format!("/repos/{REPO}/actions/runs?per_page=100"),
        Some(&bearer),
    )
    .await;
    let (_, page) = api_get(
        &api,
        &format!("/repos/{REPO}/actions/runs?per_page=5&page=2"),
        Some(&format!("token {TOKEN}")),
    )
    .await;
    assert_eq!(page["total_count"], all["total_count"]);
    assert_eq!(runs(&page)[..], runs(&all)[5..10]);
    let (_, default) = api_get(&api, &format!("/repos/{REPO}/actions/runs"), Some(&bearer)).await;
    assert_eq!(runs(&default).len(), 30, "per_page defaults to 30");
    let (_, main) = api_get(
        &api,
        &format!("/repos/{REPO}/actions/runs?branch=main&status=failure&per_page=100"),
        Some(&bearer),
    )
    .await;
    assert!(
        runs(&main)
            .iter()
            .all(|r| r["head_branch"] == "main" && r["conclusion"] == "failure")
    );
    let expected = runs(&all)
        .iter()
        .filter(|r| r["head_branch"] == "main" && r["conclusion"] == "failure")
        .count();
    assert_eq!(main["total_count"], expected);

    // GitHub's errors.
    let (status, body) = api_get(&api, "/repos/brightwharf/nope/actions/runs", Some(&bearer)).await;
    assert_eq!((status, &body["message"]), (404, &Value::from("Not Found")));
    for wrong in [None, Some("Bearer nope"), Some(TOKEN)] {
        let (status, body) = api_get(&api, &format!("/repos/{REPO}/actions/runs"), wrong).await;
        assert_eq!(
            (status, &body["message"]),
            (401, &Value::from("Bad credentials")),
            "{wrong:?}"
        );
    }

    // Every request above was counted: one per repository, then 8 more.
    assert_eq!(api.requests(), demo_slugs().len() as u64 + 8);
}

/// A server with the ci plugin over [`CATALOG`], granted `http_hosts`, with
/// `settings` for it.
async fn portal(dir: &Path, http_hosts: &[&str], settings: &[(&str, &str)]) -> TestServer {
    install(dir, &["ci"]);
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let mut config = config(dir);
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    config.grants.plugins.insert(
        "ci".into(),
        Capabilities {
            kv: true,
            http_hosts: http_hosts.iter().map(|h| (*h).to_owned()).collect(),
            ..Capabilities::default()
        },
    );
    config.plugins.settings.insert(
        "ci".into(),
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    let server = TestServer::start(config).await;
    crate::support::wait_for_entities(&server, 2).await;
    server
}

/// The ci plugin's entry in a component's views, if listed.
async fn ci_view(server: &TestServer, name: &str) -> Option<Value> {
    let path = format!("/api/views/entity/component/default/{name}");
    let (status, body) = server.get_json(&path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body["views"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: no views: {body}"))
        .iter()
        .find(|v| v["plugin"] == "ci")
        .cloned()
}

/// The HTML of checkout's CI tab, which must render.
async fn tab_html(server: &TestServer) -> String {
    let view = ci_view(server, "checkout")
        .await
        .expect("a CI tab for checkout");
    assert_eq!(view["slot"], "entity-tab", "{view:#}");
    assert_eq!(view["title"], "CI", "{view:#}");
    assert_eq!(view["status"], "ok", "{view:#}");
    view["html"].as_str().unwrap().to_owned()
}

fn assert_contains(html: &str, needles: &[&str]) {
    for needle in needles {
        assert!(html.contains(needle), "expected {needle:?} in:\n{html}");
    }
}

#[tokio::test]
async fn ci_tab_shows_recent_runs_and_success_rate_then_serves_them_from_cache() {
    let api = ci_api(Some(TOKEN)).await;
    // What the tab must show, read from the API first.
    let (_, expected) = api_get(
        &api,
        &format!("/repos/{REPO}/actions/runs?per_page=20"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    let expected = runs(&expected).clone();
    let conclusive: Vec<&Value> = expected
        .iter()
        .filter(|r| {
            r["status"] == "completed"
                && ["success", "failure", "timed_out", "startup_failure"]
                    .contains(&r["conclusion"].as_str().unwrap_or(""))
        })
        .collect();
    let succeeded = conclusive
        .iter()
        .filter(|r| r["conclusion"] == "success")
        .count();
    let rate = format!(
        "{:.0}% ({succeeded} of {})",
        succeeded as f64 * 100.0 / conclusive.len() as f64,
        conclusive.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    let server = portal(
        dir.path(),
        &["127.0.0.1"],
        &[("base_url", url.as_str()), ("token", TOKEN)],
    )
    .await;
    let before = api.requests();
    let html = tab_html(&server).await;
    assert_eq!(api.requests(), before + 1, "one fetch for the first view");
    let newest = &expected[0];
    assert_contains(
        &html,
        &[
            "Success rate",
            &rate,
            "Last run",
            "Median duration",
            "Recent runs",
            REPO,
            &newest["head_sha"].as_str().unwrap()[..7],
            newest["html_url"].as_str().unwrap(),
            newest["head_branch"].as_str().unwrap(),
        ],
    );
    for run in &expected {
        assert_contains(&html, &[&format!("#{}", run["run_number"])]);
    }

    // Within the TTL: the tab and the JSON route are served from the cache.
    let again = tab_html(&server).await;
    assert_contains(&again, &[&rate]);
    let (status, summary) = server
        .get_json(&format!("/api/plugins/ci/runs/{REPO}"))
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["source"], "cache", "{summary}");
    assert_eq!(summary["succeeded"], succeeded);
    assert_eq!(summary["conclusive"], conclusive.len());
    assert_eq!(summary["runs"].as_array().unwrap().len(), expected.len());
    assert_eq!(summary["last_run"]["id"], newest["id"]);
    assert_eq!(api.requests(), before + 1, "no fetch within the TTL");

    // A component without the annotation has no CI tab to show.
    if let Some(view) = ci_view(&server, "notes").await {
        assert_eq!(view["status"], "empty", "{view:#}");
    }
    let (status, health) = server.get_json("/api/plugins/ci/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["token"], "configured", "{health}");
    assert_eq!(health["base_url"], url.as_str(), "{health}");
    server.stop().await;
}

#[tokio::test]
async fn ci_without_a_token_shows_a_notice_and_never_calls_the_api() {
    let api = ci_api(Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    let server = portal(dir.path(), &["127.0.0.1"], &[("base_url", url.as_str())]).await;
    let html = tab_html(&server).await;
    assert_contains(&html, &["CI token missing: set plugins.settings.ci.token"]);
    let (status, body) = server
        .get_json(&format!("/api/plugins/ci/runs/{REPO}"))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"],
        "CI token missing: set plugins.settings.ci.token"
    );
    assert_eq!(api.requests(), 0, "no call without a token");
    server.stop().await;
}

#[tokio::test]
async fn ci_names_an_unreachable_api_and_its_base_url() {
    // A port that refuses connections: bound, so that nothing else gets
    // it while the test runs (a port freed here could be handed to the
    // portal itself, which a plugin may never reach), but never listening.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", refusing.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let server = portal(
        dir.path(),
        &["127.0.0.1"],
        &[("base_url", url.as_str()), ("token", TOKEN)],
    )
    .await;
    let html = tab_html(&server).await;
    assert_contains(&html, &["CI API unreachable at", &url]);
    let (status, body) = server
        .get_json(&format!("/api/plugins/ci/runs/{REPO}"))
        .await;
    assert_eq!(status, 502, "{body}");
    server.stop().await;
    drop(refusing);
}

#[tokio::test]
async fn ci_names_a_rejected_token_and_an_unknown_repository() {
    let api = ci_api(Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    let server = portal(
        dir.path(),
        &["127.0.0.1"],
        &[("base_url", url.as_str()), ("token", "not-the-token")],
    )
    .await;
    let html = tab_html(&server).await;
    assert_contains(&html, &["rejected the token (HTTP 401)", &url]);
    assert_eq!(api.requests(), 1);
    let (status, body) = server
        .get_json("/api/plugins/ci/runs/brightwharf/no-such-repo")
        .await;
    assert_eq!(status, 502, "wrong token first: {body}");
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let server = portal(
        dir.path(),
        &["127.0.0.1"],
        &[("base_url", url.as_str()), ("token", TOKEN)],
    )
    .await;
    let (status, body) = server
        .get_json("/api/plugins/ci/runs/brightwharf/no-such-repo")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("brightwharf/no-such-repo not found"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn ci_host_not_granted_is_named_and_never_called() {
    let api = ci_api(Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    let server = portal(
        dir.path(),
        &[],
        &[("base_url", url.as_str()), ("token", TOKEN)],
    )
    .await;
    let html = tab_html(&server).await;
    assert_contains(
        &html,
        &["CI API host 127.0.0.1 is not granted", "http_hosts"],
    );
    assert_eq!(api.requests(), 0, "a host not granted is never called");
    server.stop().await;
}

#[tokio::test]
async fn ci_shows_cached_runs_with_a_notice_when_a_fetch_fails() {
    let api = ci_api(Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    // No TTL: every view fetches.
    let settings = |token| {
        [
            ("base_url", url.as_str()),
            ("token", token),
            ("cache_ttl_secs", "0"),
        ]
    };
    let server = portal(dir.path(), &["127.0.0.1"], &settings(TOKEN)).await;
    let fresh = tab_html(&server).await;
    assert_contains(&fresh, &["Success rate", "Recent runs"]);
    assert!(!fresh.contains("Showing runs cached"), "{fresh}");
    assert_eq!(api.requests(), 1);
    server.stop().await;

    // Restarted over the same data with a token the API rejects: the runs
    // cached in key-value storage are shown, with why they are not fresh.
    let server = portal(dir.path(), &["127.0.0.1"], &settings("revoked-token")).await;
    let stale = tab_html(&server).await;
    assert_eq!(api.requests(), 2, "the expired cache entry is refetched");
    assert_contains(
        &stale,
        &[
            "Showing runs cached",
            "rejected the token (HTTP 401)",
            &url,
            "Success rate",
            "Recent runs",
        ],
    );
    let (status, summary) = server
        .get_json(&format!("/api/plugins/ci/runs/{REPO}"))
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["source"], "stale", "{summary}");
    assert!(
        summary["warning"].as_str().unwrap().contains("HTTP 401"),
        "{summary}"
    );
    server.stop().await;
}
