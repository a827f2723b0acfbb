//! Plugins as files: install, update and remove while serving (admin API,
//! CLI, plugins folder), signatures, licences, grants.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callboard::plugins::signing::VendorKey;
use jiff::{Timestamp, ToSpan as _};
use serde_json::Value;

use crate::support::{
    TestServer, admin_token, backstage_error, cli, config, licence, plugin_file, premium,
    put_licence, repack,
};

const ORG: &str = "brightwharf";

/// (case, plugin file, licence, expected status, expected message part)
type Refusal = (&'static str, Vec<u8>, Option<String>, u16, &'static str);

fn hello_version(version: &str) -> Vec<u8> {
    repack("hello", |m| m.version = version.parse().unwrap())
}

fn in_a_year() -> Timestamp {
    Timestamp::now() + 24.hours() * 365
}

async fn admin_install(
    server: &TestServer,
    data: &Path,
    bytes: Vec<u8>,
    license: Option<String>,
    force: bool,
) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new().part(
        "plugin",
        reqwest::multipart::Part::bytes(bytes).file_name("p.wasm"),
    );
    if let Some(license) = license {
        form = form.text("license", license);
    }
    let response = server
        .client
        .post(server.url(&format!("/api/admin/plugins?force={force}")))
        .bearer_auth(admin_token(data))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// GET returning (status, `x-callboard-plugin`).
async fn served_by(server: &TestServer, path: &str) -> (u16, String) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    let by = response
        .headers()
        .get("x-callboard-plugin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), by)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_installs_updates_refuses_downgrades_and_removes() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(data.path())).await;
    assert_eq!(server.get("/api/plugins/hello/ping").await.0, 404);

    let (status, body) =
        admin_install(&server, data.path(), hello_version("1.0.0"), None, false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await,
        (200, "hello@1.0.0".into())
    );
    assert!(
        data.path().join("plugins/hello.wasm").is_file(),
        "the install is kept as a file"
    );
    assert_eq!(server.post("/api/plugins/hello/visits", "").await.0, 200);

    let (status, body) =
        admin_install(&server, data.path(), hello_version("2.0.0"), None, false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await,
        (200, "hello@2.0.0".into())
    );

    let (status, body) =
        admin_install(&server, data.path(), hello_version("1.5.0"), None, false).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        backstage_error(&body).1.contains("downgrades need --force"),
        "{body}"
    );
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@2.0.0"
    );
    let (status, _) = admin_install(&server, data.path(), hello_version("1.5.0"), None, true).await;
    assert_eq!(status, 201);
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@1.5.0"
    );

    // Remove keeps key-value data unless purged.
    let delete = |purge: bool| {
        server
            .client
            .delete(server.url(&format!("/api/admin/plugins/hello?purge={purge}")))
            .bearer_auth(admin_token(data.path()))
            .send()
    };
    assert_eq!(delete(false).await.unwrap().status().as_u16(), 204);
    assert_eq!(server.get("/api/plugins/hello/ping").await.0, 404);
    assert!(!data.path().join("plugins/hello.wasm").exists());
    assert_eq!(
        admin_install(&server, data.path(), hello_version("1.5.0"), None, false)
            .await
            .0,
        201
    );
    assert_eq!(
        server.get_json("/api/plugins/hello/visits").await.1["visits"],
        1
    );
    assert_eq!(delete(true).await.unwrap().status().as_u16(), 204);
    assert_eq!(
        admin_install(&server, data.path(), hello_version("1.5.0"), None, false)
            .await
            .0,
        201
    );
    assert_eq!(
        server.get_json("/api/plugins/hello/visits").await.1["visits"],
        0
    );
    assert_eq!(delete(false).await.unwrap().status().as_u16(), 204);
    assert_eq!(delete(false).await.unwrap().status().as_u16(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_requests_without_a_valid_token() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(data.path())).await;
    let url = server.url("/api/admin/plugins");
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (name, _) = backstage_error(&response.text().await.unwrap());
    assert_eq!(name, "AuthenticationError");
    assert_eq!(
        server
            .client
            .get(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let almost = format!("{}x", &admin_token(data.path())[..63]);
    assert_eq!(
        server
            .client
            .get(&url)
            .bearer_auth(almost)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let delete = server
        .client
        .delete(server.url("/api/admin/plugins/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 401);
    assert_eq!(
        server
            .client
            .get(&url)
            .bearer_auth(admin_token(data.path()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_installs_lists_and_removes_online_and_offline() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(data.path())).await;
    let url = server.running.url();
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("hello-2.wasm");
    std::fs::write(&v2, hello_version("2.0.0")).unwrap();

    let hello = plugin_file("hello");
    let (ok, out) = cli(
        data.path(),
        &[
            "plugin",
            "install",
            hello.to_str().unwrap(),
            "--server",
            &url,
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@1.0.0"
    );
    let (ok, out) = cli(
        data.path(),
        &["plugin", "install", v2.to_str().unwrap(), "--server", &url],
    );
    assert!(ok, "{out}");
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@2.0.0"
    );
    let (ok, out) = cli(
        data.path(),
        &[
            "plugin",
            "install",
            hello.to_str().unwrap(),
            "--server",
            &url,
        ],
    );
    assert!(!ok && out.contains("downgrades need --force"), "{out}");

    let (ok, out) = cli(data.path(), &["plugin", "list", "--json", "--server", &url]);
    assert!(ok, "{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let hello_row = &list["plugins"][0];
    assert_eq!(hello_row["id"], "hello");
    assert_eq!(hello_row["requested"]["kv"], true);
    assert_eq!(hello_row["granted"]["kv"], true);
    let (ok, table) = cli(data.path(), &["plugin", "list", "--server", &url]);
    assert!(
        ok && table.contains("hello") && table.contains("2.0.0"),
        "{table}"
    );

    let (ok, out) = cli(
        data.path(),
        &["plugin", "remove", "hello", "--server", &url],
    );
    assert!(ok, "{out}");
    assert_eq!(server.get("/api/plugins/hello/ping").await.0, 404);

    // Offline: straight into the folder, which the running server watches.
    let (ok, out) = cli(
        data.path(),
        &["plugin", "install", hello.to_str().unwrap(), "--offline"],
    );
    assert!(ok, "{out}");
    eventually("the watcher loads the offline install", async || {
        served_by(&server, "/api/plugins/hello/ping").await.0 == 200
    })
    .await;
    let (ok, out) = cli(data.path(), &["plugin", "list", "--offline", "--json"]);
    assert!(ok && out.contains("\"hello\""), "{out}");
    let (ok, out) = cli(data.path(), &["plugin", "remove", "hello", "--offline"]);
    assert!(ok, "{out}");
    eventually("the watcher unloads the removed file", async || {
        server.get("/api/plugins/hello/ping").await.0 == 404
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_dropped_into_the_folder_are_loaded_updated_and_unloaded() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(data.path())).await;
    let dir = data.path().join("plugins");
    // The atomic-rename contract: write a `.part`, rename into place.
    let drop_in = |bytes: Vec<u8>| {
        std::fs::write(dir.join("hello.wasm.part"), bytes).unwrap();
        std::fs::rename(dir.join("hello.wasm.part"), dir.join("hello.wasm")).unwrap();
    };
    drop_in(hello_version("1.0.0"));
    eventually("v1 answers", async || {
        served_by(&server, "/api/plugins/hello/ping").await == (200, "hello@1.0.0".into())
    })
    .await;
    drop_in(hello_version("1.1.0"));
    eventually("v1.1 answers", async || {
        served_by(&server, "/api/plugins/hello/ping").await.1 == "hello@1.1.0"
    })
    .await;
    // A bad update keeps the serving version and says why.
    drop_in(b"\0asm garbage".to_vec());
    eventually("the bad file is refused", async || {
        server
            .running
            .state
            .plugins
            .get("hello")
            .and_then(|p| p.last_error)
            .is_some()
    })
    .await;
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@1.1.0"
    );
    // A plain copy (not atomic) is fine too.
    std::fs::write(dir.join("hello.wasm"), hello_version("1.2.0")).unwrap();
    eventually("v1.2 answers", async || {
        served_by(&server, "/api/plugins/hello/ping").await.1 == "hello@1.2.0"
    })
    .await;
    std::fs::remove_file(dir.join("hello.wasm")).unwrap();
    eventually("removal unloads", async || {
        server.get("/api/plugins/hello/ping").await.0 == 404
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_under_load_loses_no_request() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["hello"], |_| {}).await;
    assert_eq!(
        served_by(&server, "/api/plugins/hello/ping").await.1,
        "hello@1.0.0"
    );

    let swapped_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, url, stop, done) = (
            server.client.clone(),
            server.url("/api/plugins/hello/ping"),
            stop.clone(),
            done.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                let status = response.status().as_u16();
                let by = response
                    .headers()
                    .get("x-callboard-plugin")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = response.text().await.unwrap();
                seen.push((sent, status, by, body));
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            seen
        }));
    }
    let load = |n: usize| {
        let done = done.clone();
        eventually("the clients make progress", async move || {
            done.load(std::sync::atomic::Ordering::Relaxed) >= n
        })
    };
    load(100).await;
    let (status, body) =
        admin_install(&server, data.path(), hello_version("2.0.0"), None, false).await;
    assert_eq!(status, 201, "{body}");
    *swapped_at.lock().unwrap() = Some(Instant::now());
    load(done.load(std::sync::atomic::Ordering::Relaxed) + 200).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let swapped = swapped_at.lock().unwrap().unwrap();
    let (mut before, mut after) = (0, 0);
    for client in clients {
        for (sent, status, by, body) in client.await.unwrap() {
            assert_eq!(
                (status, body.as_str()),
                (200, "pong"),
                "a request failed during the update"
            );
            if sent > swapped {
                assert_eq!(
                    by.as_deref(),
                    Some("hello@2.0.0"),
                    "a request after the swap reached v1"
                );
                after += 1;
            } else {
                before += 1;
            }
        }
    }
    assert!(
        before > 50 && after > 50,
        "too little load: {before} before, {after} after the swap"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_clear_and_keeps_the_running_version_serving() {
    let data = tempfile::tempdir().unwrap();
    let acme = VendorKey::generate("acme").unwrap();
    let umbrella = VendorKey::generate("umbrella").unwrap();
    let mut config = config(data.path());
    config.organization = ORG.into();
    config.trust.vendors = vec![callboard::config::TrustedVendor {
        id: "acme".into(),
        public_key: acme.public().public_key,
    }];
    // umbrella is trusted through a key file in the trust folder.
    std::fs::create_dir_all(data.path().join("trusted-vendors")).unwrap();
    std::fs::write(
        data.path().join("trusted-vendors/umbrella.pub"),
        toml::to_string(&umbrella.public()).unwrap(),
    )
    .unwrap();
    let server = TestServer::start(config).await;

    let good_licence = licence(&acme, "premium", ORG, in_a_year(), &["greetings"]);
    let v1 = acme.sign_plugin(&premium("1.0.0", "acme")).unwrap();
    let (status, body) =
        admin_install(&server, data.path(), v1, Some(good_licence.clone()), false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        served_by(&server, "/api/plugins/premium/ping").await,
        (200, "premium@1.0.0".into())
    );

    let v2 = || premium("2.0.0", "acme");
    let mut flipped = acme.sign_plugin(&v2()).unwrap();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let stranger = VendorKey::generate("stranger").unwrap();
    let cases: Vec<Refusal> = vec![
        (
            "corrupt file",
            b"\0asm\x0d\0\x01\0garbage".to_vec(),
            None,
            400,
            "not a WebAssembly component",
        ),
        (
            "unsigned commercial plugin",
            v2(),
            None,
            403,
            "commercial plugins must be signed",
        ),
        (
            "unknown vendor",
            stranger.sign_plugin(&premium("2.0.0", "stranger")).unwrap(),
            None,
            403,
            "signed by vendor \"stranger\", which is not in the trust store",
        ),
        (
            "unknown vendor, new id",
            stranger
                .sign_plugin(&repack("hello", |m| {
                    m.id = "premium-two".into();
                    m.vendor = Some("stranger".into());
                    m.license = Some("commercial".into());
                }))
                .unwrap(),
            None,
            403,
            "not in the trust store",
        ),
        (
            "vendor mismatch",
            umbrella.sign_plugin(&v2()).unwrap(),
            None,
            403,
            "signed by vendor \"umbrella\" but its manifest names vendor \"acme\"",
        ),
        (
            "one flipped byte",
            flipped,
            None,
            403,
            "changed after signing",
        ),
        (
            "expired licence",
            acme.sign_plugin(&v2()).unwrap(),
            Some(licence(
                &acme,
                "premium",
                ORG,
                Timestamp::now() - 1.hour(),
                &[],
            )),
            403,
            "licence for premium expired on",
        ),
        (
            "licence for another customer",
            acme.sign_plugin(&v2()).unwrap(),
            Some(licence(&acme, "premium", "initech", in_a_year(), &[])),
            403,
            "issued to \"initech\"",
        ),
        (
            "another plugin's licence",
            acme.sign_plugin(&v2()).unwrap(),
            Some(licence(&acme, "other-plugin", ORG, in_a_year(), &[])),
            403,
            "is for plugin \"other-plugin\"",
        ),
        (
            "unsupported plugin API version",
            std::fs::read(plugin_file("future-api")).unwrap(),
            None,
            400,
            "plugin API 99.0.0, which this host does not support",
        ),
        (
            "duplicate id from another vendor",
            umbrella.sign_plugin(&premium("3.0.0", "umbrella")).unwrap(),
            None,
            409,
            "already provided by vendor \"acme\"",
        ),
    ];
    for (case, bytes, licence, expected_status, expected) in cases {
        let (status, body) = admin_install(&server, data.path(), bytes, licence, false).await;
        assert_eq!(status, expected_status, "{case}: {body}");
        let message = backstage_error(&body).1;
        assert!(
            message.contains(expected),
            "{case}: {message:?} does not say {expected:?}"
        );
        assert_eq!(
            served_by(&server, "/api/plugins/premium/ping").await,
            (200, "premium@1.0.0".into()),
            "after {case}"
        );
    }
    // The same refusals through the folder: logged, listed, v1 still serving.
    let last = server
        .running
        .state
        .plugins
        .get("premium")
        .unwrap()
        .last_error
        .unwrap();
    assert!(last.contains("already provided by vendor"), "{last}");
    // A valid signed v2 goes through.
    let (status, body) = admin_install(
        &server,
        data.path(),
        acme.sign_plugin(&v2()).unwrap(),
        None,
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        served_by(&server, "/api/plugins/premium/ping").await.1,
        "premium@2.0.0"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_licence_disables_and_a_new_one_reenables_without_restart() {
    let data = tempfile::tempdir().unwrap();
    let acme = VendorKey::generate("acme").unwrap();
    let mut config = config(data.path());
    config.organization = ORG.into();
    config.plugins.license_check_secs = 1;
    config.trust.vendors = vec![callboard::config::TrustedVendor {
        id: "acme".into(),
        public_key: acme.public().public_key,
    }];
    let server = TestServer::start(config).await;

    let (status, body) = admin_install(
        &server,
        data.path(),
        acme.sign_plugin(&premium("1.0.0", "acme")).unwrap(),
        Some(licence(&acme, "premium", ORG, in_a_year(), &[])),
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.get("/api/plugins/premium/ping").await.0, 200);
    // Entitlements gate routes: the licence has no "greetings" feature.
    let (status, body) = server.get("/api/plugins/premium/greet/ada").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        backstage_error(&body)
            .1
            .contains("needs the licence feature \"greetings\""),
        "{body}"
    );

    // A licence that runs out in a few seconds (installing one takes no
    // compilation, unlike the plugin, so it starts out valid on a slow machine too).
    let short = licence(&acme, "premium", ORG, Timestamp::now() + 5.seconds(), &[]);
    let (status, body) = put_licence(&server, data.path(), "premium", short).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.get("/api/plugins/premium/ping").await.0, 200);

    eventually("the licence expires", async || {
        server.get("/api/plugins/premium/ping").await.0 == 403
    })
    .await;
    let (_, body) = server.get("/api/plugins/premium/ping").await;
    assert!(
        backstage_error(&body)
            .1
            .contains("licence for premium expired on"),
        "{body}"
    );
    let status = server.running.state.plugins.get("premium").unwrap().status;
    assert!(
        status.starts_with("disabled: licence for premium expired on"),
        "{status}"
    );

    let renewed = licence(&acme, "premium", ORG, in_a_year(), &["greetings"]);
    let (status, body) = put_licence(&server, data.path(), "premium", renewed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.get("/api/plugins/premium/ping").await.0, 200);
    assert_eq!(
        server.get("/api/plugins/premium/greet/ada").await,
        (200, "Hello, ada!".into())
    );
    // The periodic check reads the renewed file and keeps it enabled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.get("/api/plugins/premium/ping").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_need_both_a_request_and_a_grant() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::with_plugins(data.path(), &["hello"], |config| {
        config.grants.default.kv = false;
        config.grants.plugins.insert(
            "misbehave".into(),
            callboard::plugins::manifest::Capabilities {
                kv: true,
                ..Default::default()
            },
        );
    })
    .await;
    let (status, body) = server.post("/api/plugins/hello/visits", "").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not granted"),
        "the typed denial reaches the plugin: {body}"
    );
    let info = server.running.state.plugins.get("hello").unwrap();
    assert!(info.requested.kv && !info.granted.kv && !info.effective.kv);
    server.stop().await;
}
