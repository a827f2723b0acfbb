//! Plugins stay inside their runtime limits (issue 11, runtime findings, and
//! the plugin parts of issue 10), proved with the `hostile-runtime` fixture:
//! deadlines that hold while a plugin waits in a host call, fair shares of
//! the instance pool, descriptor caps, bounded transfers and logs, granted
//! directories held by handle, refused files not retried, ticks that back
//! off, event fields and queues bounded in bytes.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use callboard::{
    config::{Config, LimitOverrides},
    plugins::{manifest::Capabilities, write_atomically},
};
use serde_json::Value;

use crate::support::{TestServer, backstage_error, captured_logs, eventually};

const ID: &str = "hostile-runtime";
const LABEL: &str = "hostile-runtime@0.1.0";

/// A server with `hostile-runtime` (granted kv, config and usage events)
/// and `hello`, and `tweak` applied.
async fn start(data: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::with_plugins(data, &[ID, "hello"], |config| {
        config.grants.plugins.insert(
            ID.into(),
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

fn timeout_ms(config: &mut Config, ms: u64) {
    config.plugins.overrides.insert(
        ID.into(),
        LimitOverrides {
            timeout_ms: Some(ms),
            ..LimitOverrides::default()
        },
    );
}

fn setting(config: &mut Config, key: &str, value: &str) {
    config
        .plugins
        .settings
        .entry(ID.into())
        .or_default()
        .insert(key.into(), value.into());
}

fn grant_files(config: &mut Config, host: &Path) {
    let caps = config.grants.plugins.entry(ID.into()).or_default();
    caps.files
        .insert("/data".into(), host.display().to_string());
}

async fn counters(server: &TestServer) -> Value {
    let (status, body) = server
        .get_json(&format!("/api/plugins/{ID}/counters"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_plugin_sleeping_in_a_host_call_is_stopped_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| timeout_ms(c, 1000)).await;
    let started = Instant::now();
    let (status, body) = server
        .get(&format!("/api/plugins/{ID}/sleep?ms=15000"))
        .await;
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains(LABEL), "{body}");
    // The deadline is 1 s; before the fix the call answered after 15 s.
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(server.get(&format!("/api/plugins/{ID}/ping")).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn abandoned_view_renders_are_cancelled_and_free_their_slots() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.plugins.max_concurrent_instances = 8;
        c.plugins.view_deadline_ms = 100;
    })
    .await;
    for _ in 0..20 {
        let (status, body) = server
            .get_json(&format!("/api/views/pages/{ID}/sleep"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // Each render was abandoned after 100 ms; cancelled, it holds nothing.
    // Before the fix they slept on for 15 s and every plugin answered 503.
    eventually(3, "the plugin's slots to be free again", || async {
        let ok = server.get(&format!("/api/plugins/{ID}/ping")).await.0 == 200
            && server.get("/api/plugins/hello/ping").await.0 == 200;
        ok.then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn one_slow_plugin_leaves_room_for_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(
        start(dir.path(), |c| {
            c.plugins.max_concurrent_instances = 16;
            c.plugins.max_instances_per_plugin = 4;
            c.plugins.queue_per_plugin = 4;
            c.plugins.queue_wait_ms = 200;
        })
        .await,
    );
    let refused = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for _ in 0..40 {
        let (server, refused) = (server.clone(), refused.clone());
        slow.push(tokio::spawn(async move {
            let (status, body) = server
                .get(&format!("/api/plugins/{ID}/sleep?ms=3000"))
                .await;
            if status == 503 {
                let (_, message) = backstage_error(&body);
                assert!(message.contains(LABEL), "{message}");
                refused.fetch_add(1, Ordering::Relaxed);
            }
            status
        }));
    }
    // Excess calls are refused quickly (not after the plugin's deadline)...
    eventually(3, "calls over the plugin's share to be refused", || async {
        (refused.load(Ordering::Relaxed) >= 30).then_some(())
    })
    .await;
    // ...while its slots are held, the other plugins keep answering.
    let (status, body) = server.get("/api/plugins/hello/ping").await;
    assert_eq!(status, 200, "{body}");
    let mut served = 0;
    for task in slow {
        if task.await.unwrap() == 200 {
            served += 1;
        }
    }
    assert!(served >= 4, "only {served} of the slow calls were served");
}

#[tokio::test]
async fn a_sleeping_tick_does_not_stop_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        timeout_ms(c, 1000);
        setting(c, "tick", "sleep-first");
    })
    .await;
    // The first tick sleeps 15 s; before the fix no tick ran until it woke.
    eventually(12, "a tick after the sleeping one", || async {
        (counters(&server).await["ticks"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_failing_tick_backs_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| setting(c, "tick", "trap")).await;
    let plugins = server.running.state.plugins.clone();
    let ticks = eventually(20, "three failed ticks in a row", || async {
        let ticks = plugins.get(ID)?.ticks?;
        (ticks.failures_in_a_row >= 3).then_some(ticks)
    })
    .await;
    // 1 s, 2 s, 4 s ...: the pause doubles with each failure.
    assert!(ticks.backoff_secs >= 4, "{ticks:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_sleeping_on_events_does_not_stall_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| timeout_ms(c, 1000)).await;
    let plugins = server.running.state.plugins.clone();
    let _ = server.get("/api/sleepy-events").await;
    // The batch that slept is stopped at the deadline (before the fix it
    // held delivery for 15 s), and the next batch arrives.
    eventually(10, "the sleeping batch to fail", || async {
        let events = plugins.get(ID)?.events?;
        (events.failed_batches >= 1).then_some(())
    })
    .await;
    eventually(10, "events after the sleeping batch", || async {
        let _ = server.get("/api/after-the-sleep").await;
        (counters(&server).await["events"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn event_fields_are_cut_to_a_fixed_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let long_path = format!("/api/{}", "p".repeat(6000));
    let long_user = "u".repeat(6000);
    let _ = server
        .client
        .get(server.url(&long_path))
        .header("x-forwarded-user", &long_user)
        .send()
        .await
        .unwrap();
    let body = eventually(10, "the long event to arrive", || async {
        let body = counters(&server).await;
        (body["longest_field"].as_i64() > Some(0)).then_some(body)
    })
    .await;
    assert!(
        body["longest_field"].as_i64() <= Some(1024),
        "an event field of {} bytes reached the plugin",
        body["longest_field"]
    );
    server.stop().await;
}

#[tokio::test]
async fn descriptors_one_call_holds_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("a.txt"), "a").unwrap();
    let server = start(&dir.path().join("data"), |c| {
        grant_files(c, &shared);
        c.plugins.max_open_files = 32;
    })
    .await;
    // Past its cap of handles the call is stopped (and its descriptors
    // closed); before the fix it held 100,000 descriptors, or every one the
    // process had left.
    let (status, body) = server
        .get(&format!("/api/plugins/{ID}/files?n=100000"))
        .await;
    assert_eq!(status, 500, "{body}");
    let (_, message) = backstage_error(&body);
    assert!(message.contains(LABEL), "{message}");
    // The next call gets its own handles; the server still accepts.
    let (_, body) = server
        .get_json(&format!("/api/plugins/{ID}/files?n=3"))
        .await;
    assert_eq!(body["opened"], 3, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn granted_directories_are_held_by_handle_and_keep_out_of_callboards_folders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // A grant of the data directory itself is refused.
    let server = start(&data, |c| grant_files(c, &dir.path().join("data"))).await;
    let info = server.running.state.plugins.get(ID).unwrap();
    assert!(
        info.effective.files.is_empty(),
        "{:?}",
        info.effective.files
    );
    let (_, body) = server
        .get_json(&format!("/api/plugins/{ID}/files?file=admin-token&n=1"))
        .await;
    assert_eq!(body["opened"], 0, "{body}");
    server.stop().await;

    // A root swapped for a symlink to the data directory after install
    // still serves the directory that was granted.
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("a.txt"), "a").unwrap();
    let server = start(&data, |c| grant_files(c, &shared)).await;
    assert_eq!(
        server
            .running
            .state
            .plugins
            .get(ID)
            .unwrap()
            .effective
            .files
            .len(),
        1
    );
    std::fs::rename(&shared, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&data, &shared).unwrap();
    assert!(data.join("admin-token").is_file());
    let (_, body) = server
        .get_json(&format!("/api/plugins/{ID}/files?file=admin-token&n=1"))
        .await;
    assert_eq!(
        body["opened"], 0,
        "the swapped root exposed the data dir: {body}"
    );
    let (_, body) = server
        .get_json(&format!("/api/plugins/{ID}/files?file=a.txt&n=1"))
        .await;
    assert_eq!(body["opened"], 1, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn responses_are_bounded_as_they_are_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    // 12 MiB of headers: past the transfer budget, refused while lifting.
    let (status, body) = server
        .get(&format!("/api/plugins/{ID}/headers?n=3000&size=4096"))
        .await;
    assert_eq!(status, 502, "{body}");
    let (_, message) = backstage_error(&body);
    assert!(message.contains(LABEL), "{message}");
    // Many small headers: over the count cap.
    let (status, body) = server
        .get(&format!("/api/plugins/{ID}/headers?n=1000&size=8"))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(server.get(&format!("/api/plugins/{ID}/ping")).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn plugin_logs_are_budgeted_and_cannot_forge_host_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let (status, _) = server
        .get(&format!("/api/plugins/{ID}/log?lines=5000"))
        .await;
    assert_eq!(status, 200);
    let logs = captured_logs();
    assert!(
        !logs
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z  INFO callboard::server: FORGED")),
        "a plugin forged a host log line"
    );
    assert!(!logs.contains('\u{1b}'), "a plugin wrote a terminal escape");
    let logged = logs.lines().filter(|l| l.contains("FORGED")).count();
    assert!(logged <= 1000, "{logged} plugin log records in one call");
    assert!(
        logs.contains("log records over the budget"),
        "the dropped records are not reported"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refused_plugin_file_is_not_retried_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.plugins.watch_debounce_ms = 10).await;
    let plugins = server.running.state.plugins.clone();
    let folder = dir.path().join("plugins");
    let junk = folder.join("refused-junk.wasm");
    write_atomically(&junk, b"not a plugin").unwrap();
    let refusals = |name: &'static str| {
        let plugins = plugins.clone();
        move || {
            plugins
                .failures()
                .iter()
                .filter(|f| f.file.ends_with(name))
                .count()
        }
    };
    let junk_refusals = refusals("refused-junk.wasm");
    eventually(10, "the junk file to be refused", || async {
        (junk_refusals() == 1).then_some(())
    })
    .await;
    // Touched again and again without changing: not retried.
    for i in 0..20 {
        let file = std::fs::File::options().append(true).open(&junk).unwrap();
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(i + 1))
            .unwrap();
    }
    // A changed file is retried: seeing its refusal means the watcher has
    // handled the touches before it.
    write_atomically(&folder.join("refused-marker.wasm"), b"junk too").unwrap();
    let marker = refusals("refused-marker.wasm");
    eventually(10, "the marker file to be refused", || async {
        (marker() == 1).then_some(())
    })
    .await;
    write_atomically(&junk, b"changed junk").unwrap();
    eventually(10, "the changed junk file to be refused again", || async {
        (junk_refusals() == 2).then_some(())
    })
    .await;

    // The list of refusals is bounded.
    for i in 0..130 {
        let junk = format!("junk {i}");
        write_atomically(&folder.join(format!("flood-{i}.wasm")), junk.as_bytes()).unwrap();
    }
    eventually(30, "every flood file to be refused", || async {
        let logs = captured_logs();
        (0..130)
            .all(|i| logs.contains(&format!("flood-{i}.wasm")))
            .then_some(())
    })
    .await;
    assert!(
        plugins.failures().len() <= 100,
        "{}",
        plugins.failures().len()
    );
    server.stop().await;
}
