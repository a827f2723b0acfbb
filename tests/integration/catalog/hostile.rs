//! Hostile catalog sources: devices, FIFOs, endless bodies, alias bombs,
//! escapes from the allowed folders, internal addresses, redirects, huge
//! limits, oversized filters and oversized locations. Each must leave the server serving, with
//! a clear error that carries no OS error and no server path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::IntoResponse as _;
use callboard_catalog::{CatalogConfig, LocationConfig, LocationKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::harness::{CatalogServer, FIXTURE, TOKEN, write_files};

const MIB: u64 = 1024 * 1024;

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Resident memory of this process (the server runs in it), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

fn messages(v: &Value) -> String {
    v.to_string()
}

/// No OS error text and no server path beyond what the caller sent.
fn assert_no_leak(text: &str) {
    for leak in ["os error", "No such file", "Permission denied", "/proc/"] {
        assert!(!text.contains(leak), "leaks {leak:?}: {text}");
    }
}

/// A catalog server on a runtime with ONE thread of its own: whatever a
/// request does there, a blocked thread shows as a server that stops
/// answering, while the test's own runtime keeps its deadline.
fn single_threaded_server(config: CatalogConfig, db: std::path::PathBuf) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let catalog = crate::support::open_catalog(&db, &config).await;
            catalog.sync_config_locations().await.unwrap();
            catalog.refresh_all().await.unwrap();
            let router = axum::Router::new().nest(
                "/api/catalog",
                callboard::api::catalog::router(
                    catalog,
                    callboard::api::auth::CatalogAccess::admin_only(TOKEN),
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    format!("http://{addr}/api/catalog")
}

async fn post_within(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("POST {path} {body} got no answer within 20 s"))
    .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn devices_fifos_and_symlinks_are_refused_without_pinning_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    write_files(&root, FIXTURE);
    mkfifo(&root.join("pipe.yaml"));
    std::os::unix::fs::symlink("/dev/zero", root.join("zero.yaml")).unwrap();
    let config = CatalogConfig {
        locations: vec![LocationConfig {
            kind: LocationKind::File,
            target: root.join("*.yaml").display().to_string(),
        }],
        refresh_interval_secs: 0,
        api_location_types: vec![LocationKind::File, LocationKind::Url],
        // /dev is allowed so that the regular-file check, not the folder
        // check, is what refuses /dev/zero.
        file_roots: vec![dir.path().to_owned(), "/dev".into()],
        ..CatalogConfig::default()
    };
    let base = single_threaded_server(config, dir.path().join("data"));
    let before = rss_mib();
    let targets = [
        "/dev/zero".to_owned(),
        "/dev/urandom".to_owned(),
        "/dev/stdin".to_owned(),
        root.join("pipe.yaml").display().to_string(),
        root.join("zero.yaml").display().to_string(),
    ];
    for target in &targets {
        for path in ["/locations?dryRun=true", "/locations"] {
            let (status, v) =
                post_within(&base, path, json!({"type": "file", "target": target})).await;
            let text = messages(&v);
            assert!(
                (status == 400 && v["error"]["name"] == "InputError")
                    || (status == 201 && v["errors"].as_array().is_some_and(|e| !e.is_empty())),
                "{path} {target}: {status} {text}"
            );
            if !target.contains("stdin") {
                assert!(
                    text.contains("not a regular file"),
                    "{path} {target}: {text}"
                );
            }
            assert!(
                v["entities"].as_array().is_none_or(|e| e.len() <= 1),
                "{text}"
            );
            assert_no_leak(&text);
        }
        let (status, v) = post_within(
            &base,
            "/analyze-location",
            json!({"location": {"type": "file", "target": target}}),
        )
        .await;
        assert!(status == 200 || status == 400, "{target}: {status} {v}");
    }
    // still serving, memory flat
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        reqwest::get(format!(
            "{base}/entities/by-name/component/default/checkout-web"
        )),
    )
    .await
    .expect("the server still answers")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        rss_mib() < before + 256,
        "RSS grew from {before} MiB to {} MiB",
        rss_mib()
    );
}

#[tokio::test]
async fn a_file_over_the_cap_is_refused_after_cap_plus_one_bytes() {
    let s = CatalogServer::start_config(FIXTURE, &["catalog/*.yaml"], |c, _| {
        c.max_file_bytes = MIB;
    })
    .await;
    let big = format!("# {}\n", "x".repeat(MIB as usize));
    write_files(&s.path("big"), &[("big.yaml", &big)]);
    let target = s.path("big/big.yaml").display().to_string();
    let (status, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "file", "target": target}),
        )
        .await;
    assert_eq!(status, 201);
    let text = messages(&v["errors"]);
    assert!(text.contains(&format!("larger than {MIB} bytes")), "{text}");
    assert_no_leak(&text);
}

/// A raw HTTP server answering every request with an endless chunked body;
/// returns its address and the bytes it managed to send.
async fn endless_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/yaml\r\ntransfer-encoding: chunked\r\n\r\n";
                if tcp.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![b'a'; 64 * 1024];
                let frame = [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk,
                    b"\r\n".to_vec(),
                ]
                .concat();
                while tcp.write_all(&frame).await.is_ok() {
                    counter.fetch_add(64 * 1024, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, sent)
}

#[tokio::test]
async fn an_endless_url_body_is_cut_at_the_cap() {
    let (addr, sent) = endless_server().await;
    let s = CatalogServer::start_config(&[], &[], |c, _| {
        c.max_file_bytes = MIB;
    })
    .await;
    let before = rss_mib();
    let url = format!("http://{addr}/catalog-info.yaml");
    let (status, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let text = messages(&v["errors"]);
    assert!(text.contains(&format!("larger than {MIB} bytes")), "{text}");
    // The reader stopped: the sender is held back by socket buffers only.
    let stopped = sent.load(Ordering::Relaxed) as u64;
    assert!(stopped < 64 * MIB, "{stopped} bytes sent");
    assert!(rss_mib() < before + 256, "RSS {before} -> {}", rss_mib());
}

/// A loopback server counting its requests; `/redirect` sends to `to`.
async fn counting_server(to: Option<String>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        let to = to.clone();
        async move {
            h.fetch_add(1, Ordering::Relaxed);
            match to {
                Some(to) => axum::response::Redirect::temporary(&to).into_response(),
                None => "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: secret-service}\nspec: {type: service, lifecycle: production, owner: ops}\n".into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

#[tokio::test]
async fn loopback_urls_are_refused_unless_allowed() {
    let (addr, hits) = counting_server(None).await;
    // 127.0.0.1 is an allowed host, but its address is not allowed.
    let s = CatalogServer::start_config(&[], &[], |c, _| {
        c.url_allowed_hosts = vec!["127.0.0.1".into(), "localhost".into()];
        c.url_allowed_ips = Vec::new();
    })
    .await;
    for url in [
        format!("http://{addr}/catalog-info.yaml"),
        format!("http://localhost:{}/catalog-info.yaml", addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/".to_owned(),
    ] {
        let (status, v) = s
            .post(
                "/locations?dryRun=true",
                json!({"type": "url", "target": url}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let text = messages(&v["errors"]);
        assert!(
            text.contains("not allowed (catalog.url_allowed_ips)")
                || text.contains("not allowed (catalog.url_allowed_hosts)"),
            "{url}: {text}"
        );
        assert_no_leak(&text);
    }
    assert_eq!(
        hits.load(Ordering::Relaxed),
        0,
        "no request reached loopback"
    );

    // A host missing from the allow-list is refused before any lookup.
    let (_, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "url", "target": "http://example.invalid/x.yaml"}),
        )
        .await;
    assert!(
        messages(&v["errors"]).contains("not allowed (catalog.url_allowed_hosts)"),
        "{v}"
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_that_is_not_allowed_is_refused() {
    let (secret, secret_hits) = counting_server(None).await;
    // 127.0.0.1 is allowed (host and address); "localhost" is not.
    let (to_name, _) = counting_server(Some(format!(
        "http://localhost:{}/catalog-info.yaml",
        secret.port()
    )))
    .await;
    let s = CatalogServer::start(&[]).await;
    let (status, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "url", "target": format!("http://{to_name}/redirect")}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let text = messages(&v["errors"]);
    assert!(
        text.contains("redirect refused") && text.contains("catalog.url_allowed_hosts"),
        "{text}"
    );

    // Any host, but only 127.0.0.1's address: a redirect to 127.0.0.2 is refused.
    let (to_other_ip, _) = counting_server(Some(format!(
        "http://127.0.0.2:{}/catalog-info.yaml",
        secret.port()
    )))
    .await;
    let s = CatalogServer::start_config(&[], &[], |c, _| {
        c.url_allowed_hosts = vec!["*".into()];
    })
    .await;
    let (_, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "url", "target": format!("http://{to_other_ip}/redirect")}),
        )
        .await;
    let text = messages(&v["errors"]);
    assert!(
        text.contains("redirect refused") && text.contains("catalog.url_allowed_ips"),
        "{text}"
    );
    assert_eq!(secret_hits.load(Ordering::Relaxed), 0);

    // The allowed server itself is read.
    let (status, v) = s
        .post(
            "/locations?dryRun=true",
            json!({"type": "url", "target": format!("http://{secret}/catalog-info.yaml")}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(messages(&v["entities"]).contains("secret-service"), "{v}");
}

#[tokio::test]
async fn file_locations_from_the_api_are_refused_by_default() {
    let s = CatalogServer::start_config(FIXTURE, &["catalog/*.yaml"], |c, _| {
        c.api_location_types = CatalogConfig::default().api_location_types;
    })
    .await;
    // configured file locations keep working
    let (status, _) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_eq!(status, 200);
    let target = s.path("catalog/org.yaml").display().to_string();
    for path in ["/locations", "/locations?dryRun=true"] {
        let (status, v) = s
            .post(path, json!({"type": "file", "target": target}))
            .await;
        assert_eq!(status, 400, "{v}");
        assert!(messages(&v).contains("catalog.api_location_types"), "{v}");
    }
    let (status, _) = s
        .post(
            "/analyze-location",
            json!({"location": {"type": "file", "target": "/**/*.yaml"}}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn file_targets_stay_inside_the_allowed_folders() {
    let s = CatalogServer::start_config(FIXTURE, &["catalog/*.yaml"], |c, _| {
        // Only the configured location's own folder: ../extra is outside.
        c.file_roots = Vec::new();
    })
    .await;
    // An entity file outside, reached through a symlink and a Location entity.
    write_files(
        &s.path("secret"),
        &[(
            "secret.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: secret-service}\nspec: {type: service, lifecycle: production, owner: ops}\n",
        )],
    );
    std::os::unix::fs::symlink(s.path("secret/secret.yaml"), s.path("catalog/link.yaml")).unwrap();
    write_files(
        &s.path("catalog"),
        &[(
            "escape.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: escape}\nspec:\n  targets: [../secret/secret.yaml, /etc/passwd, ./nope.yaml]\n",
        )],
    );
    s.refresh().await;
    for name in ["secret-service", "payments"] {
        let (status, _) = s
            .get(&format!("/entities?filter=metadata.name={name}"))
            .await;
        assert_eq!(status, 200);
    }
    let (_, found) = s.get("/entities?filter=metadata.name=secret-service").await;
    assert_eq!(found, json!([]), "nothing outside the folder is read");
    let (_, found) = s.get("/entities?filter=metadata.name=payments").await;
    assert_eq!(
        found,
        json!([]),
        "../extra is outside the configured folder"
    );
    let (_, escape) = s.get("/entities/by-name/location/default/escape").await;
    let status = messages(&escape["status"]);
    assert!(status.contains("outside the folders"), "{status}");
    assert!(status.contains("nope.yaml: not found"), "{status}");
    assert_no_leak(&status);

    // Through the API (file allowed here): a target outside is a 400 that
    // names only what the caller sent.
    let (status, v) = s
        .post(
            "/locations",
            json!({"type": "file", "target": "/etc/passwd"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        messages(&v).contains("\\\"/etc/passwd\\\" is outside"),
        "{v}"
    );
    let (status, v) = s
        .post(
            "/locations",
            json!({"type": "file", "target": "catalog/org.yaml"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(messages(&v).contains("absolute"), "{v}");
    assert_no_leak(&messages(&v));
}

#[tokio::test]
async fn an_alias_bomb_is_refused_and_the_rest_loads() {
    let s = CatalogServer::start(FIXTURE).await;
    let mut bomb = String::from(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\n  annotations:\n    seed: &a \"",
    );
    bomb.push_str(&"x".repeat(512 * 1024));
    bomb.push_str("\"\n    many: [");
    for _ in 0..49 {
        bomb.push_str("*a, ");
    }
    bomb.push_str("*a]\nspec: {type: service, lifecycle: production, owner: team-a}\n");
    write_files(&s.path("catalog"), &[("bomb.yaml", &bomb)]);
    let reports = s.catalog.refresh_all().await.unwrap();
    let problems = format!("{:?}", reports[0].problems);
    assert!(
        problems.contains("bomb.yaml") && problems.contains("Invalid YAML"),
        "{problems}"
    );
    let (status, _) = s.get("/entities/by-name/component/default/bomb").await;
    assert_eq!(status, 404);
    let (status, _) = s
        .get("/entities/by-name/component/default/checkout-web")
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn huge_limits_are_clamped() {
    let s = CatalogServer::start(FIXTURE).await;
    let (status, v) = s.get("/entities/by-query?limit=18446744073709551615").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["items"].as_array().unwrap().len() > 5);
    let (status, v) = s
        .post(
            "/entities/by-query",
            json!({"limit": 18446744073709551615u64}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s
        .get("/entities?limit=18446744073709551615&offset=18446744073709551615")
        .await;
    assert_eq!((status, v), (200, json!([])));
    let (status, v) = s.get("/entities?limit=18446744073709551615").await;
    assert_eq!(status, 200);
    assert!(v.as_array().unwrap().len() > 5);
}

#[tokio::test]
async fn filters_past_their_bounds_are_refused_before_the_store() {
    let s = CatalogServer::start(FIXTURE).await;
    let many: Vec<String> = (0..300)
        .map(|i| format!("metadata.annotations.k{i}=v"))
        .collect();
    let (status, v) = s.get(&format!("/entities?filter={}", many.join(","))).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("300 field conditions, more than the 256 allowed"),
        "{v}"
    );
    let (status, v) = s
        .get(&format!("/entities/by-query?filter={}", many.join(",")))
        .await;
    assert_eq!(status, 400, "{v}");
    let mut deep = json!({"kind": "component"});
    for _ in 0..40 {
        deep = json!({"$not": deep});
    }
    let (status, v) = s.post("/entities/by-query", json!({"query": deep})).await;
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("levels of nesting"), "{v}");
    let values: Vec<String> = (0..2000).map(|i| format!("c{i}")).collect();
    let (status, v) = s
        .post(
            "/entities/by-query",
            json!({"query": {"metadata.name": {"$in": values}}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("2000 values"), "{v}");
    // A filter and a query each within the bounds, joined past them.
    let half: Vec<String> = (0..200)
        .map(|i| format!("metadata.annotations.f{i}=v"))
        .collect();
    let query: serde_json::Map<String, serde_json::Value> = (0..200)
        .map(|i| (format!("metadata.annotations.q{i}"), json!("v")))
        .collect();
    let by_refs = |filter: &[String]| format!("/entities/by-refs?filter={}", filter.join(","));
    let body = json!({"entityRefs": ["component:default/a"], "query": query});
    let (status, v) = s.post(&by_refs(&half), body.clone()).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v.to_string()
            .contains("filter and query: 400 field conditions, more than the 256 allowed"),
        "{v}"
    );
    let (status, v) = s.post(&by_refs(&half[..50]), body).await;
    assert_eq!(
        status, 200,
        "250 conditions together are within the bound: {v}"
    );
    // The server keeps answering within the bounds.
    let (status, _) = s.get("/entities?filter=kind=component").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_location_over_a_cap_keeps_its_entities_and_the_others_refresh() {
    let component = |name: &str, description: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}, description: {description}}}\nspec: {{type: service, lifecycle: production, owner: team-a}}\n---\n"
        )
    };
    let a = component("a-one", "first") + &component("a-two", "first");
    let b = component("b-one", "first") + &component("b-two", "first");
    let s = CatalogServer::start_config(
        &[("a/all.yaml", &a), ("b/all.yaml", &b)],
        &["catalog/a/*.yaml", "catalog/b/*.yaml"],
        |c, _| {
            // two entities plus the generated Location entity
            c.max_entities_per_location = 3;
            c.max_location_depth = 1;
        },
    )
    .await;
    // b grows past the cap; a changes.
    let b = b + &component("b-three", "new") + &component("b-four", "new");
    write_files(
        &s.path("catalog"),
        &[
            (
                "a/all.yaml",
                &(component("a-one", "second") + &component("a-two", "second")),
            ),
            ("b/all.yaml", &b),
        ],
    );
    let reports = s.catalog.refresh_all().await.unwrap();
    assert_eq!(reports.len(), 2);
    let (_, one) = s.get("/entities/by-name/component/default/a-one").await;
    assert_eq!(one["metadata"]["description"], "second", "a refreshed");
    let (status, two) = s.get("/entities/by-name/component/default/b-two").await;
    assert_eq!(status, 200, "b keeps what it had");
    assert_eq!(
        two["metadata"]["annotations"].get("backstage.io/orphan"),
        None
    );
    let (status, _) = s.get("/entities/by-name/component/default/b-three").await;
    assert_eq!(status, 404);
    let b_report = format!("{:?}", reports[1].problems);
    assert!(
        b_report.contains("catalog/b/*.yaml")
            && b_report.contains("catalog.max_entities_per_location"),
        "{b_report}"
    );

    // Through the API, a location over a cap is refused and not registered.
    write_files(
        &s.path("c"),
        &[
            (
                "root.yaml",
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: c-root}\nspec: {targets: [./next.yaml]}\n",
            ),
            (
                "next.yaml",
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: c-next}\nspec: {targets: [./leaf.yaml]}\n",
            ),
            ("leaf.yaml", &component("leaf", "deep")),
        ],
    );
    let (_, locations) = s.get("/locations").await;
    let target = s.path("c/root.yaml").display().to_string();
    let (status, v) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(messages(&v).contains("catalog.max_location_depth"), "{v}");
    assert!(messages(&v).contains(&target), "names the location: {v}");
    let (_, after) = s.get("/locations").await;
    assert_eq!(after, locations);
}

#[tokio::test]
async fn the_global_entity_cap_refuses_a_new_location() {
    let s = CatalogServer::start_config(FIXTURE, &["catalog/*.yaml"], |c, _| {
        c.max_entities = 16;
    })
    .await;
    let (_, count) = s.get("/entities/by-query?limit=0").await;
    assert!(count["totalItems"].as_u64().unwrap() <= 16, "{count}");
    let many: String = (0..10)
        .map(|i| format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: g{i}}}\nspec: {{type: team, children: []}}\n---\n"))
        .collect();
    write_files(&s.path("more"), &[("groups.yaml", &many)]);
    let target = s.path("more/groups.yaml").display().to_string();
    let (status, v) = s
        .post("/locations", json!({"type": "file", "target": target}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(messages(&v).contains("catalog.max_entities)"), "{v}");
    let (status, _) = s.get("/entities/by-name/group/default/g0").await;
    assert_eq!(status, 404);
}
