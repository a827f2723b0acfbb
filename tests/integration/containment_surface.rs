//! Issue 11, the HTTP surface between plugins and the portal: a plugin's
//! answers are sandboxed and their headers filtered and capped, statuses
//! are final ones, the path is normalised once (so entitlements hold on
//! any spelling) and views are gated like routes, request headers reach
//! plugins through an allow-list with the user vouched for by the host,
//! views are bounded before and after rendering, and links that a browser
//! would send to another host are removed. The hostile fixture is
//! `tests/fixtures/hostile-surface`.

use std::path::Path;

use callboard::{
    config::{Config, TrustedProxy, TrustedVendor},
    plugins::{
        license::{self, LicenseTerms},
        manifest::{self, Capabilities, EntitlementRoute, Manifest},
        signing::VendorKey,
    },
};
use jiff::{Timestamp, ToSpan as _};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{TestServer, backstage_error, config, eventually, plugin_file};

const PLUGIN: &str = "hostile-surface";
const LABEL: &str = "hostile-surface@0.1.0";

async fn hostile(data: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with_plugins(data, &[PLUGIN], |config| {
        config.grants.plugins.insert(
            PLUGIN.into(),
            Capabilities {
                kv: true,
                events: vec!["usage".into()],
                ..Capabilities::default()
            },
        );
        tweak(config);
    })
    .await
}

/// `GET target` written on the wire as is (reqwest would resolve dot
/// segments first); returns the status and the raw rest of the response.
async fn raw_get(server: &TestServer, target: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(server.running.addr)
        .await
        .unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {target}: no status line in {answer:?}"));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_responses_are_sandboxed_and_keep_only_allowed_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |_| {}).await;

    let response = server
        .client
        .get(server.url("/api/plugins/hostile-surface/html"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some("sandbox; default-src 'none'"),
        "{headers:?}"
    );
    assert_eq!(headers.get_all("content-security-policy").iter().count(), 1);
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(
        header("cross-origin-resource-policy").as_deref(),
        Some("same-origin")
    );
    assert_eq!(header("x-callboard-plugin").as_deref(), Some(LABEL));
    for refused in [
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "clear-site-data",
        "refresh",
        "x-frame-options",
        "location",
    ] {
        assert_eq!(header(refused), None, "{refused} passed: {headers:?}");
    }
    // What a plugin legitimately describes its answer with still passes.
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("etag").as_deref(), Some("\"v1\""));

    // Errors answered for plugins are sandboxed too.
    let response = server
        .client
        .get(server.url("/api/plugins/no-such-plugin/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.headers()["content-security-policy"],
        "sandbox; default-src 'none'"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_and_informational_statuses_become_502_naming_the_plugin() {
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |_| {}).await;

    for path in [
        "/api/plugins/hostile-surface/headers?n=10000",
        "/api/plugins/hostile-surface/big-header?bytes=4194304",
        "/api/plugins/hostile-surface/status/101",
        "/api/plugins/hostile-surface/status/100",
        "/api/plugins/hostile-surface/status/199",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 502, "GET {path}: {body}");
        let (name, message) = backstage_error(&body);
        assert_eq!(name, "PluginResponseError", "GET {path}: {body}");
        assert!(message.contains(LABEL), "GET {path}: {message}");
    }
    let (_, body) = server
        .get("/api/plugins/hostile-surface/headers?n=10000")
        .await;
    // The runtime's own lifting cap (100 headers) or the surface's (64)
    // refuses it, whichever sees it first; both name the limit.
    assert!(
        body.contains("over the limit of 64") || body.contains("over the limit of 100"),
        "{body}"
    );
    let (_, body) = server.get("/api/plugins/hostile-surface/status/101").await;
    assert!(body.contains("status 101"), "{body}");

    // Within the caps, and final statuses, pass.
    let (status, _) = server
        .get("/api/plugins/hostile-surface/headers?n=20")
        .await;
    assert_eq!(status, 200);
    for code in [200, 204, 418, 599] {
        let (status, _) = server
            .get(&format!("/api/plugins/hostile-surface/status/{code}"))
            .await;
        assert_eq!(status, code);
    }
    assert_eq!(server.get("/api/health").await.0, 200);
    server.stop().await;
}

async fn echoed_headers(server: &TestServer, user: &str) -> Value {
    // The real admin token: a valid credential must not reach the plugin
    // either (a token that is not valid is refused before any plugin).
    let admin = std::fs::read_to_string(server.running.state.config.admin_token_file()).unwrap();
    let response = server
        .client
        .get(server.url("/api/plugins/hostile-surface/echo-headers"))
        .header("cookie", "callboard_session=secret; callboard_visitor=abc")
        .header("authorization", format!("Bearer {}", admin.trim()))
        .header("x-forwarded-user", user)
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-callboard-user", "root")
        .header("accept", "application/json")
        .header("x-request-id", "req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let mut out = serde_json::Map::new();
    for pair in body["headers"].as_array().unwrap() {
        out.insert(pair[0].as_str().unwrap().to_owned(), pair[1].clone());
    }
    Value::Object(out)
}

/// The user usage events named for the plugin's `/echo-headers` calls,
/// once `n` of them have arrived.
async fn users_seen(server: &TestServer, n: usize) -> Vec<Value> {
    eventually(20, "usage events for /echo-headers", || async {
        let (_, seen) = server.get_json("/api/plugins/hostile-surface/seen").await;
        let users: Vec<Value> = seen
            .as_array()?
            .iter()
            .filter(|e| e["path"] == "/echo-headers")
            .map(|e| e["user"].clone())
            .collect();
        (users.len() >= n).then_some(users)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_are_allow_listed_and_only_trusted_proxies_name_the_user() {
    // Nobody is trusted by default: x-forwarded-user from the client is ignored.
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |_| {}).await;
    let seen = echoed_headers(&server, "admin").await;
    assert_eq!(seen["accept"], "application/json", "{seen}");
    assert_eq!(seen["x-request-id"], "req-1", "{seen}");
    for hidden in [
        "cookie",
        "authorization",
        "x-forwarded-user",
        "x-forwarded-for",
        "x-callboard-user",
        "host",
    ] {
        assert!(
            seen.get(hidden).is_none(),
            "{hidden} reached the plugin: {seen}"
        );
    }
    let users = users_seen(&server, 1).await;
    assert!(
        users.iter().all(|u| u != "admin"),
        "an untrusted x-forwarded-user was believed: {users:?}"
    );
    server.stop().await;

    // From a trusted proxy the user is believed, and the host tells the plugin.
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |config| {
        config.proxy.trusted = vec![TrustedProxy::try_from("127.0.0.0/8".to_owned()).unwrap()];
    })
    .await;
    let seen = echoed_headers(&server, "alice").await;
    assert_eq!(seen["x-callboard-user"], "alice", "{seen}");
    assert!(seen.get("cookie").is_none() && seen.get("authorization").is_none());
    // Even a trusted proxy's header is capped in length.
    let seen = echoed_headers(&server, &"a".repeat(300)).await;
    assert!(seen.get("x-callboard-user").is_none(), "{seen}");
    let users = users_seen(&server, 2).await;
    assert_eq!(users[0], "alice", "{users:?}");
    assert!(users[1] != Value::String("a".repeat(300)), "{users:?}");
    server.stop().await;
}

const ORG: &str = "Brightwharf";
const VENDOR: &str = "lanternfish";

/// Insights with its manifest changed by `tweak`, signed and licensed
/// without the `export` feature.
async fn insights_without_export(data: &Path, tweak: impl FnOnce(&mut Manifest)) -> TestServer {
    let key = VendorKey::generate(VENDOR).unwrap();
    let bytes = std::fs::read(plugin_file("insights")).unwrap();
    let mut m = manifest::read(&bytes).unwrap();
    tweak(&mut m);
    let signed = key
        .sign_plugin(&manifest::embed(&bytes, &m).unwrap())
        .unwrap();
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::write(data.join("plugins/insights.wasm"), signed).unwrap();
    let now = Timestamp::now();
    let licence = license::issue(
        &key,
        &LicenseTerms {
            plugin: "insights".into(),
            vendor: VENDOR.into(),
            customer: ORG.into(),
            features: vec!["other".into()],
            issued: now,
            not_before: now - 48.hours(),
            expires: now + 24.hours() * 365,
        },
    );
    std::fs::create_dir_all(data.join("licenses")).unwrap();
    std::fs::write(data.join("licenses/insights.license"), licence).unwrap();
    let mut config = config(data);
    config.organization = ORG.into();
    config.trust.vendors = vec![TrustedVendor {
        id: VENDOR.into(),
        public_key: key.public().public_key,
    }];
    config.grants.plugins.insert(
        "insights".into(),
        Capabilities {
            kv: true,
            catalog: true,
            events: vec!["usage".into()],
            ..Capabilities::default()
        },
    );
    TestServer::start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlements_hold_on_every_spelling_of_the_path_and_gate_views() {
    let data = tempfile::tempdir().unwrap();
    let server = insights_without_export(data.path(), |_| {}).await;
    let (status, body) = server.get("/api/plugins/insights/summary").await;
    assert_eq!(status, 200, "licensed: {body}");

    // Spellings a router could read as /export.csv are refused as ambiguous...
    for path in [
        "/api/plugins/insights//export.csv",
        "/api/plugins/insights/%2Fexport.csv",
        "/api/plugins/insights/%2fexport.csv",
        "/api/plugins/insights/%5Cexport.csv",
        "/api/plugins/insights/x/..%2Fexport.csv",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 400, "GET {path}: {body}");
        assert_eq!(backstage_error(&body).0, "InputError", "{body}");
    }
    for target in [
        "/api/plugins/insights/./export.csv",
        "/api/plugins/insights/x/../export.csv",
        "/api/plugins/insights/%2e/export.csv",
        "/api/views/pages/insights//export.csv",
        "/plugins/insights/./export.csv",
    ] {
        let (status, answer) = raw_get(&server, target).await;
        assert_eq!(status, 400, "GET {target}: {answer}");
    }
    // ... and the ones that mean /export.csv need the feature.
    for path in [
        "/api/plugins/insights/export.csv",
        "/api/plugins/insights/export%2Ecsv",
        "/api/plugins/insights/export.csv/",
        "/api/plugins/insights/export.csv?days=7",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 403, "GET {path}: {body}");
        assert!(
            backstage_error(&body)
                .1
                .contains("needs the licence feature \"export\""),
            "{body}"
        );
    }

    // Views are gated like routes: the page at the gated path shows the
    // licence notice instead of asking the plugin.
    let (status, view) = server
        .get_json("/api/views/pages/insights/export.csv")
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "error", "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("needs the licence feature \"export\""),
        "{view}"
    );
    assert!(
        view["html"].as_str().unwrap().contains("needs a licence"),
        "{view}"
    );
    let (_, page) = server.get("/plugins/insights/export.csv").await;
    assert!(page.contains("needs a licence"), "{page}");
    // The ungated page still renders.
    let (_, view) = server.get_json("/api/views/pages/insights").await;
    assert_eq!(view["status"], "ok", "{view}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_on_the_whole_plugin_gates_its_views_too() {
    let data = tempfile::tempdir().unwrap();
    let server = insights_without_export(data.path(), |m| {
        m.entitlements = vec![EntitlementRoute {
            feature: "premium".into(),
            paths: vec!["/".into()],
        }];
    })
    .await;
    let (status, body) = server.get("/api/plugins/insights/summary").await;
    assert_eq!(status, 403, "{body}");
    let (_, view) = server.get_json("/api/views/pages/insights").await;
    assert_eq!(view["status"], "error", "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("needs the licence feature \"premium\""),
        "{view}"
    );
    assert!(
        view["html"].as_str().unwrap().contains("needs a licence"),
        "{view}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_views_are_cut_averaged_or_refused_and_never_echoed() {
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |_| {}).await;
    let limits = server.running.state.config.plugins.views;

    // 50,000 rows: the first max_rows are shown, with a note.
    let (status, body) = server
        .get("/api/views/pages/hostile-surface/huge-table?n=50000")
        .await;
    assert_eq!(status, 200);
    assert!(
        body.len() < 2 * limits.max_html_bytes,
        "{} bytes",
        body.len()
    );
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["status"], "ok", "{view}");
    assert!(view.get("view").is_none(), "the raw view is echoed");
    let html = view["html"].as_str().unwrap();
    assert_eq!(html.matches("<tr>").count(), limits.max_rows + 1);
    assert!(
        html.contains(&format!(
            "Showing the first {} of 50000 rows",
            limits.max_rows
        )),
        "{html}"
    );

    // 100,000 points: averaged down to max_points.
    let (_, view) = server
        .get_json("/api/views/pages/hostile-surface/huge-chart")
        .await;
    assert_eq!(view["status"], "ok", "{view}");
    let html = view["html"].as_str().unwrap();
    assert_eq!(
        html.matches("<circle").count(),
        limits.max_points,
        "{}",
        html.len()
    );

    // 16 MiB of text, and text that renders four times larger: refused
    // with an error naming the plugin, in a small answer.
    for (path, cap) in [("huge-text", "bytes of text"), ("amplify", "bytes of HTML")] {
        let (status, body) = server
            .get(&format!("/api/views/pages/hostile-surface/{path}"))
            .await;
        assert_eq!(status, 200);
        assert!(body.len() < 4096, "{path}: {} bytes", body.len());
        let view: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["status"], "error", "{view}");
        let error = view["error"].as_str().unwrap();
        assert!(error.contains(LABEL), "{error}");
        // 16 MiB may already be stopped while it is lifted out of the guest
        // (the runtime's transfer budget), before the view caps see it.
        assert!(
            error.contains(cap) || error.contains("bytes to the host at once"),
            "{error}"
        );
    }
    let (_, page) = server.get("/plugins/hostile-surface/huge-text").await;
    assert!(page.len() < 64 << 10, "{} bytes", page.len());
    assert!(page.contains("could not be shown"), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_that_browsers_send_to_another_host_are_removed_from_views() {
    let data = tempfile::tempdir().unwrap();
    let server = hostile(data.path(), |_| {}).await;
    for path in [
        "/api/views/pages/hostile-surface/links",
        "/plugins/hostile-surface/links",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{body}");
        let html = if path.starts_with("/api/") {
            serde_json::from_str::<Value>(&body).unwrap()["html"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            body
        };
        let hrefs: Vec<&str> = html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        // What a browser makes of each href: tabs and newlines dropped,
        // `\` read as `/`. None may name another host.
        for href in &hrefs {
            let seen: String = href
                .chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .map(|c| if c == '\\' { '/' } else { c })
                .collect();
            let seen = seen.trim_start();
            assert!(
                !seen.starts_with("//") && !seen.contains("://evil") && !seen.contains("&#"),
                "{path}: {href:?} leaves the site: {hrefs:?}"
            );
        }
        assert!(
            hrefs.contains(&"/catalog?kind=component"),
            "{path}: {hrefs:?}"
        );
        assert!(html.contains("unsafe-link"), "{path}: {html}");
    }
    server.stop().await;
}
