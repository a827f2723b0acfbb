//! The HTTP server guarding itself: header-read and idle timeouts, the
//! connection cap, shutdown with a drain deadline (SIGTERM included), the
//! `Host` check, the plugin memory budget, the data directory's mode. Who
//! may write (tokens, sessions, CSRF) is in `server/access.rs`.

mod access;

use std::{path::Path, time::Duration};

use callboard::config::Config;
use callboard_catalog::{LocationConfig, LocationKind};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    time::timeout,
};

use crate::support::{TestServer, eventually};

/// A server over `dir/data` whose catalog reads `dir/catalog.yaml` (one
/// component), with `tweak` applied.
async fn start(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let catalog = dir.join("catalog.yaml");
    std::fs::write(
        &catalog,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: one}\n\
         spec: {type: service, lifecycle: production, owner: team-a}\n",
    )
    .unwrap();
    let mut config = crate::support::config(&dir.join("data"));
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    tweak(&mut config);
    TestServer::start(config).await
}

/// Opens a raw connection to the server.
async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.running.addr).await.unwrap()
}

/// Reads until the peer closes or `within` passes; `None` on the deadline.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    match timeout(within, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// Reads until a whole response head has arrived, or `within` passes.
async fn read_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.server.header_read_timeout_secs = 1).await;
    // Half a request head, then nothing: a slowloris client.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let closed = read_to_close(&mut slow, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the connection is still open after 20 s");
    // An idle keep-alive connection is closed the same way.
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut idle, Duration::from_secs(10)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        read_to_close(&mut idle, Duration::from_secs(20))
            .await
            .is_some(),
        "an idle keep-alive connection stays open after 20 s"
    );
    // And the server still serves.
    assert_eq!(server.get("/api/health").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout_secs = 60;
    })
    .await;
    // Two connections that answer one request each and stay open: both
    // are being served, so they hold the two slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&server).await;
        c.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut c, Duration::from_secs(10)).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(c);
    }
    let mut third = connect(&server).await;
    third
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Not served while both slots are taken (a slow machine only makes
    // this more certain).
    assert!(
        read_head(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection was served beyond max_connections = 2"
    );
    drop(held.pop());
    let head = read_head(&mut third, Duration::from_secs(10))
        .await
        .expect("served once a slot is free");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    server.stop().await;
}

/// A catalog read whose JSON body arrives in two parts.
const QUERY: &str = r#"{"query":{"kind":"component"}}"#;

/// Sends a catalog query's head asking to continue, waits for the server's
/// `100 Continue` (sent once the handler reads the body: the request is in
/// flight) and sends the first part of the body.
async fn start_query(server: &TestServer) -> TcpStream {
    let mut c = connect(server).await;
    let head = format!(
        "POST /api/catalog/entities/by-query HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        QUERY.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut c, Duration::from_secs(10))
        .await
        .expect("an interim response");
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    c.write_all(&QUERY.as_bytes()[..10]).await.unwrap();
    c
}

#[tokio::test]
async fn shutdown_lets_requests_finish_and_stops_waiting_at_the_drain_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.server.shutdown_drain_secs = 30).await;
    crate::support::wait_for_entities(&server, 1).await;
    // A request in flight when shutdown starts still gets its answer.
    let mut in_flight = start_query(&server).await;
    let addr = server.running.addr;
    let stopping = tokio::spawn(server.stop());
    // The listener closes once shutdown has begun.
    eventually(10, "the listener to close", || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    in_flight.write_all(&QUERY.as_bytes()[10..]).await.unwrap();
    let response = read_to_close(&mut in_flight, Duration::from_secs(20))
        .await
        .expect("the request in flight is answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    timeout(Duration::from_secs(20), stopping)
        .await
        .expect("shutdown ends once the request is answered")
        .unwrap();

    // A client that never finishes its request does not hold shutdown up
    // past the drain deadline.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.server.shutdown_drain_secs = 1).await;
    let _stuck = start_query(&server).await;
    timeout(Duration::from_secs(20), server.stop())
        .await
        .expect("shutdown waited past its 1 s drain deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_usage_events_reach_plugins_before_shutdown_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let subscribe = |c: &mut Config| {
        c.grants.plugins.insert(
            "misbehave".into(),
            callboard::plugins::manifest::Capabilities {
                kv: true,
                events: vec!["usage".into()],
                ..Default::default()
            },
        );
    };
    crate::support::install(&data, &["misbehave"]);
    let server = start(dir.path(), |c| {
        subscribe(c);
        // Delivery waits this long for a batch to fill: the event is still
        // queued when shutdown begins.
        c.plugins.event_linger_ms = 4000;
        c.server.shutdown_drain_secs = 30;
    })
    .await;
    assert_eq!(
        server.get("/api/catalog/entity-facets?facet=kind").await.0,
        200
    );
    server.stop().await;

    // The plugin counted it (in its key-value store) before the stop ended.
    let server = start(dir.path(), |c| c.plugins.event_linger_ms = 4000).await;
    let (status, counters) = server
        .get_json("/api/plugins/misbehave/counters?kinds=api-call")
        .await;
    assert_eq!(status, 200, "{counters}");
    assert!(
        counters["by_kind"]["api-call"].as_i64() >= Some(1),
        "the usage event queued at shutdown was lost: {counters}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    use std::io::{BufRead as _, Read as _};
    let bin = std::env::var_os("CALLBOARD_BIN")
        .expect("CALLBOARD_BIN is not set: run the tests with `cargo xtask test`");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Ends the server if an assertion fails before it exits.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if self.0.try_wait().ok().flatten().is_none() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(child);
    // Reads the log until the server says where it listens.
    let (addr, mut stderr, mut log) = tokio::task::spawn_blocking(move || {
        let mut stderr = std::io::BufReader::new(stderr);
        let mut log = String::new();
        loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "{log}");
            log.push_str(&line);
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return (rest.trim().to_owned(), stderr, log);
            }
        }
    })
    .await
    .unwrap();
    let health = reqwest::get(format!("http://{addr}/api/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = eventually(30, "the server to exit", || {
        let exited = child.0.try_wait().unwrap();
        async move { exited }
    })
    .await;
    stderr.read_to_string(&mut log).unwrap();
    assert!(status.success(), "exit {status:?}: {log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn requests_for_other_host_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.server.allowed_hosts = vec!["portal.example.com".into()];
    })
    .await;
    let port = server.running.addr.port();
    let status = |host: String| {
        let url = server.url("/api/health");
        let client = server.client.clone();
        async move {
            client
                .get(url)
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // DNS rebinding: a page on evil.example whose name now points at
    // 127.0.0.1 sends its own name.
    assert_eq!(status(format!("evil.example:{port}")).await, 421);
    assert_eq!(status("evil.example".into()).await, 421);
    let response = server
        .client
        .get(server.url("/admin"))
        .header("host", format!("rebind.evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 421);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("server.allowed_hosts"),
        "the refusal says how to allow a name"
    );
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "portal.example.com".to_owned(),
    ] {
        assert_eq!(status(ok.clone()).await, 200, "{ok}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_plugin_instance_budget_fits_the_memory_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    // 32 instances of 64 MiB do not fit in 256 MiB: 4 do.
    let server = start(dir.path(), |c| {
        c.plugins.max_concurrent_instances = 32;
        c.plugins.limits.memory_mib = 64;
        c.plugins.memory_budget_mib = Some(256);
    })
    .await;
    assert_eq!(
        server.running.state.config.plugins.max_concurrent_instances,
        4
    );
    assert!(
        crate::support::captured_logs().contains("serving with 4 instances"),
        "the clamp is logged"
    );
    server.stop().await;

    // Not even one instance fits: refused, naming the keys.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::config(&dir.path().join("data"));
    config.plugins.limits.memory_mib = 64;
    config.plugins.memory_budget_mib = Some(32);
    let error = match callboard::server::start(config).await {
        Ok(_) => panic!("a server whose one instance exceeds the budget started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("plugins.memory_budget_mib") && error.contains("memory_mib"),
        "{error}"
    );

    // The defaults fit a 4 GiB machine: half of it for 32 instances of 64 MiB.
    let defaults = Config::default();
    assert!(
        u64::from(defaults.plugins.max_concurrent_instances) * defaults.plugins.limits.memory_mib
            <= 2048
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data directory mode {mode:o}");
    server.stop().await;
}
