//! The plugin runtime through real HTTP: real wasm components built from
//! example-plugins/ and tests/fixtures/, a real SQLite key-value file.

use std::time::{Duration, Instant};

use callboard::config::LimitOverrides;
use serde_json::Value;

use crate::support::{TestServer, backstage_error, captured_logs, plugin_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_answers_its_routes_and_its_counter_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["hello"], |_| {}).await;

    assert_eq!(
        server.get("/api/plugins/hello/ping").await,
        (200, "pong".into())
    );
    assert_eq!(
        server
            .get("/api/plugins/hello/greet/Ada%20Lovelace?greeting=Hi")
            .await,
        (200, "Hi, Ada Lovelace!".into())
    );
    let (status, index) = server.get_json("/api/plugins/hello").await;
    assert_eq!(status, 200);
    assert_eq!(index["plugin"], "hello");
    assert_eq!(
        server
            .post("/api/plugins/hello/echo", "x".repeat(1024))
            .await,
        (200, "x".repeat(1024))
    );

    // Unknown routes are the plugin's 404; unknown plugins are the host's.
    assert_eq!(server.get("/api/plugins/hello/nope").await.0, 404);
    let (status, body) = server.get("/api/plugins/nobody/ping").await;
    assert_eq!(status, 404);
    let (name, message) = backstage_error(&body);
    assert_eq!(name, "NotFoundError");
    assert!(message.contains("nobody"), "{message}");

    for expected in 1..=3 {
        let (status, body) = server.post("/api/plugins/hello/visits", "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["visits"],
            expected
        );
    }
    assert_eq!(
        server.get_json("/api/plugins/hello/visits").await.1["visits"],
        3
    );
    let first = server.running.state.plugins.list();
    assert!(
        !first[0].compiled_from_cache,
        "a fresh data dir must compile"
    );
    server.stop().await;

    let server = TestServer::with_plugins(data.path(), &[], |_| {}).await;
    assert_eq!(
        server.get_json("/api/plugins/hello/visits").await.1["visits"],
        3
    );
    assert_eq!(
        server.post("/api/plugins/hello/visits", "").await.1,
        r#"{"visits":4}"#
    );
    let second = server.running.state.plugins.list();
    assert!(
        second[0].compiled_from_cache,
        "a restart must load compiled code from the cache"
    );
    assert_eq!(first[0].sha256, second[0].sha256);
    server.stop().await;
}

fn overrides(f: impl FnOnce(&mut LimitOverrides)) -> impl FnOnce(&mut callboard::config::Config) {
    move |config| {
        let mut o = LimitOverrides::default();
        f(&mut o);
        config.plugins.overrides.insert("misbehave".into(), o);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_stopped_at_its_deadline_while_others_keep_answering() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(
        data.path(),
        &["hello", "misbehave"],
        overrides(|o| o.timeout_ms = Some(1_000)),
    )
    .await;

    let started = Instant::now();
    let looping = {
        let client = server.client.clone();
        let url = server.url("/api/plugins/misbehave/loop");
        tokio::spawn(async move {
            let response = client.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                response.text().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    // While the loop burns, the other plugin answers promptly, again and again.
    let mut answered = 0;
    while !looping.is_finished() {
        let asked = Instant::now();
        assert_eq!(
            server.get("/api/plugins/hello/ping").await,
            (200, "pong".into())
        );
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "hello took {:?} beside the loop",
            asked.elapsed()
        );
        answered += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body, elapsed) = looping.await.unwrap();
    assert_eq!(status, 504, "{body}");
    let (name, message) = backstage_error(&body);
    assert_eq!(name, "PluginTimeoutError");
    assert!(message.contains("misbehave@0.1.0"), "{message}");
    assert!(
        elapsed >= Duration::from_millis(1_000),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2_500),
        "stopped late: {elapsed:?}"
    );
    assert!(
        answered >= 10,
        "hello answered only {answered} times during the loop"
    );

    assert_eq!(
        server.get("/api/plugins/misbehave/ping").await,
        (200, "pong".into())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_stopped_at_its_limit_and_a_trap_names_the_plugin() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(
        data.path(),
        &["hello", "misbehave"],
        overrides(|o| o.memory_mib = Some(32)),
    )
    .await;

    let (status, body) = server.get("/api/plugins/misbehave/alloc").await;
    assert_eq!(status, 500, "{body}");
    let (name, message) = backstage_error(&body);
    assert_eq!(name, "PluginMemoryLimitError");
    assert!(
        message.contains("misbehave@0.1.0") && message.contains("32 MiB"),
        "{message}"
    );
    assert_eq!(server.get("/api/plugins/misbehave/ping").await.0, 200);

    for route in ["panic", "abort"] {
        let (status, body) = server.get(&format!("/api/plugins/misbehave/{route}")).await;
        assert_eq!(status, 500, "{route}: {body}");
        let (name, message) = backstage_error(&body);
        assert_eq!(name, "PluginError", "{route}");
        assert!(message.contains("misbehave@0.1.0"), "{route}: {message}");
        assert_eq!(
            server.get("/api/plugins/misbehave/ping").await.0,
            200,
            "after {route}"
        );
        assert_eq!(
            server.get("/api/plugins/hello/ping").await.0,
            200,
            "after {route}"
        );
    }
    // The panic message reached the host log, tagged with the plugin.
    let logs = captured_logs();
    assert!(
        logs.contains("misbehave panicked on purpose"),
        "panic message not logged"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_gives_no_files_no_environment_and_no_sockets() {
    // SAFETY of the claim: the host process has these, so seeing none in the
    // plugin proves the sandbox, not an empty host.
    assert!(std::path::Path::new("/etc/passwd").exists() || std::env::var_os("PATH").is_some());
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["misbehave"], |_| {}).await;

    let (status, fs) = server.get_json("/api/plugins/misbehave/fs").await;
    assert_eq!(status, 200);
    for probe in ["read_passwd", "read_dir_root", "read_dir_cwd", "create_tmp"] {
        assert!(fs[probe]["error"].is_string(), "{probe} succeeded: {fs}");
    }
    assert!(!std::path::Path::new("/tmp/callboard-escape").exists());

    let (_, env) = server.get_json("/api/plugins/misbehave/env").await;
    assert_eq!(env["vars"], serde_json::json!([]), "{env}");
    assert!(env["home"].is_null() && env["path"].is_null(), "{env}");

    // A real listener on loopback: the plugin must not reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_, sockets) = server
        .get_json(&format!("/api/plugins/misbehave/socket?port={port}"))
        .await;
    for probe in ["tcp_connect", "udp_bind", "dns"] {
        assert!(
            sockets[probe]["error"].is_string(),
            "{probe} succeeded: {sockets}"
        );
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "the plugin connected to the host's listener"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_is_private_per_plugin_and_held_to_its_quota() {
    let data = tempfile::tempdir().unwrap();
    // A second plugin with the very same code under another id.
    let twin = data.path().join("plugins").join("misbehave-twin.wasm");
    std::fs::create_dir_all(twin.parent().unwrap()).unwrap();
    let bytes = std::fs::read(plugin_file("misbehave")).unwrap();
    let mut manifest = callboard::plugins::manifest::read(&bytes).unwrap();
    manifest.id = "misbehave-twin".into();
    // Declared permissions are named after the plugin.
    for p in &mut manifest.permissions {
        p.name = p.name.replacen("misbehave.", "misbehave-twin.", 1);
    }
    std::fs::write(
        &twin,
        callboard::plugins::manifest::embed(&bytes, &manifest).unwrap(),
    )
    .unwrap();

    let server = TestServer::with_plugins(
        data.path(),
        &["hello", "misbehave"],
        overrides(|o| {
            o.kv_quota_bytes = Some(64 << 10);
            o.kv_max_value_bytes = Some(32 << 10);
        }),
    )
    .await;

    // Isolation: same key names, separate namespaces.
    assert_eq!(server.post("/api/plugins/hello/visits", "").await.0, 200);
    assert_eq!(
        server.get_json("/api/plugins/misbehave/kv/visits").await.1["value"],
        Value::Null
    );
    let put = server
        .client
        .put(server.url("/api/plugins/misbehave/kv/secret"))
        .body("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 204);
    assert_eq!(
        server.get_json("/api/plugins/misbehave/kv/secret").await.1["value"],
        "s3cret"
    );
    assert_eq!(
        server
            .get_json("/api/plugins/misbehave-twin/kv/secret")
            .await
            .1["value"],
        Value::Null
    );

    // Typed errors, not traps.
    let big = server
        .client
        .put(server.url("/api/plugins/misbehave/kv/big"))
        .body(vec![0u8; 40 << 10])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 507);
    let big: Value = big.json().await.unwrap();
    assert_eq!(big["kind"], "value-too-large");
    assert_eq!(big["max"], 32 << 10);

    let (status, fill) = server
        .post("/api/plugins/misbehave/kv-fill?size=16384", "")
        .await;
    assert_eq!(status, 200, "{fill}");
    let fill: Value = serde_json::from_str(&fill).unwrap();
    assert_eq!(fill["error"]["kind"], "quota-exceeded", "{fill}");
    assert_eq!(fill["error"]["limit"], 64 << 10);
    assert_eq!(
        fill["written"], 3,
        "three 16 KiB values fit in 64 KiB beside the others: {fill}"
    );
    // The twin's quota is its own.
    let (_, twin_fill) = server
        .post("/api/plugins/misbehave-twin/kv-fill?size=1000000", "")
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&twin_fill).unwrap()["written"],
        10,
        "{twin_fill}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugin_files_are_refused_by_name_and_the_rest_still_load() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("corrupt.wasm"),
        b"\0asm\x0d\0\x01\0 this is not a component",
    )
    .unwrap();
    // The smallest valid core module: a module, not a component.
    std::fs::write(dir.join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("empty.wasm"), b"").unwrap();
    // The same plugin id from a second file.
    std::fs::copy(plugin_file("hello"), dir.join("zz-hello-again.wasm")).unwrap();

    let server = TestServer::with_plugins(data.path(), &["hello"], |_| {}).await;
    assert_eq!(
        server.get("/api/plugins/hello/ping").await,
        (200, "pong".into())
    );

    let failures = server.running.state.plugins.failures();
    let reason = |file: &str| {
        failures
            .iter()
            .find(|f| f.file.ends_with(file))
            .unwrap_or_else(|| panic!("{file} was not refused: {failures:?}"))
            .error
            .clone()
    };
    assert!(reason("core-module.wasm").contains("core WebAssembly module, not a component"));
    assert!(reason("corrupt.wasm").contains("not a WebAssembly component"));
    assert!(reason("empty.wasm").contains("not a WebAssembly component"));
    assert!(reason("zz-hello-again.wasm").contains("already provided by"));
    let logs = captured_logs();
    for file in ["corrupt.wasm", "core-module.wasm", "zz-hello-again.wasm"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("ERROR") && l.contains(file) && l.contains("refusing plugin")),
            "no error log line names {file}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_bodies_are_capped() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["hello"], |config| {
        config.plugins.limits.max_request_body = 4096;
        config.plugins.limits.max_response_body = 2048;
    })
    .await;
    assert_eq!(
        server
            .post("/api/plugins/hello/echo", vec![b'a'; 2048])
            .await
            .0,
        200
    );
    let (status, body) = server
        .post("/api/plugins/hello/echo", vec![b'a'; 3000])
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(backstage_error(&body).0, "PluginResponseError");
    let (status, body) = server
        .post("/api/plugins/hello/echo", vec![b'a'; 5000])
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(backstage_error(&body).0, "PayloadTooLargeError");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_api_0_1_still_loads_and_answers() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["api-v0-1", "hello"], |_| {}).await;
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
            ("api-v0-1".to_owned(), "0.1.0".to_owned()),
            ("hello".to_owned(), "0.5.0".to_owned())
        ]
    );
    assert_eq!(
        server.get("/api/plugins/api-v0-1/").await,
        (200, "api 0.1 says hi".into())
    );
    assert_eq!(
        server.get("/api/plugins/api-v0-1/count").await,
        (200, "api 0.1 count 1".into())
    );
    assert_eq!(
        server.get("/api/plugins/api-v0-1/count").await,
        (200, "api 0.1 count 2".into())
    );
    // An open-source plugin has no licence to report.
    assert_eq!(
        server.get("/api/plugins/hello/license").await,
        (200, "null".into())
    );
    server.stop().await;
}
