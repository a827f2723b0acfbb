//! Operations against the real binary (`CALLBOARD_BIN`): `/metrics` checked
//! by Debian's `promtool` and asserted after real traffic, JSON log lines
//! parsed one by one, request ids on responses, and traces exported over
//! OTLP/HTTP to a receiver on 127.0.0.1.
//!
//! The receiver is a STAND-IN for an OpenTelemetry collector: it speaks the
//! real wire format (OTLP/HTTP, `POST /v1/traces`, protobuf
//! `ExportTraceServiceRequest`, decoded with the `opentelemetry-proto`
//! types) and keeps the spans for the test to look at.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value, trace::v1::Span,
};
use prost::Message as _;
use serde_json::Value;

use crate::support::{Served, address_after, admin_token, ensure_installed, eventually};

const PROMTOOL: &str = "/usr/bin/promtool";

/// Writes `callboard.toml` in `dir` with `extra` appended; misbehave
/// installed, its calls stopped after 300 ms.
fn setup(dir: &Path, extra: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    crate::support::install(&data, &["misbehave"]);
    let config = dir.join("callboard.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.overrides.misbehave]\ntimeout_ms = 300\n\
             [grants.plugins.misbehave]\nkv = true\nevents = [\"usage\", \"catalog\"]\n{extra}"
        ),
    )
    .unwrap();
    (config, data)
}

/// The value of the series `name{labels}` in an exposition, if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Runs `promtool check metrics` over `exposition`; panics with its report
/// when it finds a problem.
fn promtool_check(exposition: &str) {
    use std::io::Write as _;
    ensure_installed(PROMTOOL, &["prometheus"]);
    let mut child = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_traffic_and_logs_are_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    // The metrics token: only its digest is in the config.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"scrape-secret"));
    let (config, data) = setup(
        dir.path(),
        &format!(
            "[telemetry]\nlog_format = \"json\"\n\
             [telemetry.metrics]\nbind = \"127.0.0.1:0\"\ntoken_sha256 = \"{digest}\"\n\
             [plugins.settings.misbehave]\ntoken = \"plugin-setting-secret\"\n"
        ),
    );
    let server = Served::start(dir.path(), &config, &data, &[]).await;
    let client = reqwest::Client::new();
    let admin = admin_token(&data);
    let metrics_addr = eventually(10, "the metrics listener's address", || {
        let lines = server.lines();
        async move {
            lines
                .iter()
                .find_map(|l| address_after(l, "metrics on http://"))
        }
    })
    .await;

    // Who may scrape: nobody without a token on the portal's address; the
    // admin token and the metrics token may; the separate address needs none.
    let scrape = |token: Option<&str>| {
        let mut request = client.get(server.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, 401);
    assert_eq!(scrape(Some("not-the-token")).await.0, 401);
    assert_eq!(scrape(Some(&admin)).await.0, 200);
    let separate = || async {
        let response = client
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    let deadline_errors =
        "callboard_plugin_call_errors_total{plugin=\"misbehave\",error=\"deadline\"}";
    let before = separate().await;
    assert_eq!(sample(&before, deadline_errors), None, "{before}");

    // Traffic: a plugin call that answers, one that runs past its deadline,
    // a catalog read and a page nobody routes.
    let call = |path: &str, id: &str| {
        client
            .get(server.url(path))
            .bearer_auth(&admin)
            .header("x-request-id", id)
            .send()
    };
    let ok = call("/api/plugins/misbehave/ping", "req-ping")
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        ok.headers()["x-request-id"],
        "req-ping",
        "the caller's id comes back"
    );
    let late = call("/api/plugins/misbehave/loop", "req-loop")
        .await
        .unwrap();
    assert_eq!(late.status().as_u16(), 504, "{:?}", late.text().await);
    let listed = call("/api/catalog/entities", "bad id with spaces")
        .await
        .unwrap();
    let fresh = listed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fresh}"
    );
    let missing = client
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert!(missing.headers().contains_key("x-request-id"));

    let (status, after) = scrape(Some("scrape-secret")).await;
    assert_eq!(status, 200);
    promtool_check(&after);
    assert_eq!(sample(&after, deadline_errors), Some(1.0), "{after}");
    for series in [
        "callboard_plugin_calls_total{plugin=\"misbehave\",kind=\"request\"}",
        "callboard_http_requests_total{method=\"GET\",route=\"/api/plugins/{id}/{*rest}\",status=\"200\"}",
        "callboard_http_requests_total{method=\"GET\",route=\"/api/plugins/{id}/{*rest}\",status=\"504\"}",
        "callboard_http_requests_total{method=\"GET\",route=\"/api/catalog/entities\",status=\"200\"}",
        "callboard_http_request_duration_seconds_count{method=\"GET\",route=\"/api/catalog/entities\"}",
        "callboard_plugin_instances_max{plugin=\"misbehave\"}",
        "callboard_plugin_event_queue_depth{plugin=\"misbehave\"}",
        "callboard_plugins_loaded",
        "callboard_db_pool_connections_max",
        "callboard_feed_head",
        "callboard_feed_lag_events{follower=\"catalog\"}",
    ] {
        assert!(
            sample(&after, series)
                .is_some_and(|v| v >= 1.0 || series.contains("depth") || series.contains("lag")),
            "{series} missing or zero in:\n{after}"
        );
    }
    assert!(
        after.contains("route=\"unmatched\""),
        "an unrouted path is counted as unmatched, never by its path"
    );
    assert!(!after.contains("/no/such/page"));
    // The misbehaving tick (every second) shows up as ticks.
    eventually(10, "a tick of misbehave in the metrics", || async {
        let text = separate().await;
        sample(
            &text,
            "callboard_plugin_call_duration_seconds_count{plugin=\"misbehave\",kind=\"tick\"}",
        )
        .filter(|n| *n >= 1.0)
    })
    .await;

    // Every log line is one JSON object; the deadline's warning names the
    // request id and the plugin as id@version.
    let lines = server.lines();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &parsed {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    let stopped = parsed
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("stopped at its deadline"))
        })
        .unwrap_or_else(|| panic!("no deadline warning in {lines:#?}"));
    let spans = stopped["spans"]
        .as_array()
        .expect("the spans it happened in");
    assert!(
        spans.iter().any(|s| s["request_id"] == "req-loop"),
        "{stopped}"
    );
    assert!(
        spans.iter().any(|s| s["plugin"] == "misbehave@0.1.0"),
        "{stopped}"
    );
    assert!(
        spans.iter().any(|s| s["user"] == "admin"),
        "the user ref, no credential: {stopped}"
    );
    let all = lines.join("\n");
    assert!(
        !all.contains(&admin),
        "the admin token never reaches the log"
    );
    assert!(!all.contains("scrape-secret"));
}

/// The spans the stand-in collector received.
type Received = Arc<Mutex<Vec<Span>>>;

/// A stand-in OTLP/HTTP collector on 127.0.0.1; its base URL and spans.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post({
            let received = received.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let spans = request
                        .resource_spans
                        .into_iter()
                        .flat_map(|r| r.scope_spans)
                        .flat_map(|s| s.spans);
                    received.lock().unwrap().extend(spans);
                    // An empty ExportTraceServiceResponse.
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// A string attribute of `span`.
fn attribute<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn a_request_is_traced_through_its_plugin_call_host_call_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, received) = collector().await;
    let (config, data) = setup(
        dir.path(),
        &format!("[telemetry.traces]\notlp_endpoint = \"{endpoint}\"\n"),
    );
    let server = Served::start(dir.path(), &config, &data, &[]).await;
    let admin = admin_token(&data);
    // A caller that traces already: the portal continues its trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(server.url("/api/plugins/misbehave/kv/some-key"))
        .bearer_auth(&admin)
        .header("x-request-id", "req-traced")
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    // A malformed traceparent is ignored: the request starts a trace of its own.
    let garbled = reqwest::Client::new()
        .get(server.url("/api/plugins/misbehave/ping"))
        .bearer_auth(&admin)
        .header("x-request-id", "req-garbled")
        .header("traceparent", format!("00-{}-zz-01", "f".repeat(200)))
        .send()
        .await
        .unwrap();
    assert!(garbled.status().is_success(), "{garbled:?}");

    let by_name = |spans: &[Span], name: &str, parent: &[u8]| {
        spans
            .iter()
            .find(|s| s.name == name && s.parent_span_id == parent)
            .cloned()
    };
    let (request, plugin, host, db) = eventually(30, "the request's spans", || {
        let spans = received.lock().unwrap().clone();
        async move {
            let request = spans
                .iter()
                .find(|s| attribute(s, "request_id") == Some("req-traced"))?
                .clone();
            let plugin = by_name(&spans, "plugin misbehave@0.1.0 request", &request.span_id)?;
            let host = by_name(&spans, "kv.get", &plugin.span_id)?;
            let db = spans
                .iter()
                .find(|s| s.parent_span_id == host.span_id && s.name.starts_with("sqlite read"))?
                .clone();
            Some((request, plugin, host, db))
        }
    })
    .await;
    assert_eq!(request.name, "GET /api/plugins/{id}/{*rest}");
    assert_eq!(
        hex::encode(&request.trace_id),
        trace_id,
        "the caller's trace goes on"
    );
    assert_eq!(hex::encode(&request.parent_span_id), caller_span);
    assert_eq!(
        attribute(&request, "http.route"),
        Some("/api/plugins/{id}/{*rest}")
    );
    assert_eq!(attribute(&request, "user"), Some("admin"));
    for child in [&plugin, &host, &db] {
        assert_eq!(
            child.trace_id, request.trace_id,
            "{} is in the same trace",
            child.name
        );
        assert!(child.start_time_unix_nano >= request.start_time_unix_nano);
        assert!(child.end_time_unix_nano <= request.end_time_unix_nano);
    }
    assert_eq!(attribute(&plugin, "plugin"), Some("misbehave@0.1.0"));
    assert_eq!(attribute(&db, "db.system"), Some("sqlite"));
    let root = eventually(30, "the garbled request's span", || {
        let spans = received.lock().unwrap().clone();
        async move {
            spans
                .into_iter()
                .find(|s| attribute(s, "request_id") == Some("req-garbled"))
        }
    })
    .await;
    assert!(root.parent_span_id.is_empty(), "{root:?}");
    assert_ne!(root.trace_id, request.trace_id);
    let all = server.lines().join("\n");
    assert!(!all.contains(&admin));
    let exported = format!("{:?}", received.lock().unwrap());
    assert!(!exported.contains(&admin), "no credential is exported");
}
