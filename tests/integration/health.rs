//! Liveness and readiness: `/api/health/live` answers at once,
//! `/api/health/ready` is 503 naming the catalog until its start-up load
//! has finished and 200 after, and Backstage's `/api/health` keeps working.

use std::sync::Arc;

use callboard_catalog::{LocationConfig, LocationKind};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::support::{TestServer, eventually, wait_for_entities};

const ONE: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: held}\n\
                   spec: {type: service, lifecycle: production, owner: team-a}\n";

/// A catalog file on 127.0.0.1 that answers only once released; `asked`
/// gets a permit when a request for it has arrived.
async fn held_catalog_file() -> (String, Arc<Notify>, Arc<Semaphore>) {
    let release = Arc::new(Notify::new());
    let asked = Arc::new(Semaphore::new(0));
    let app = axum::Router::new().route(
        "/catalog.yaml",
        axum::routing::get({
            let (release, asked) = (release.clone(), asked.clone());
            move || {
                let (release, asked) = (release.clone(), asked.clone());
                async move {
                    let released = release.notified();
                    asked.add_permits(1);
                    released.await;
                    ONE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/catalog.yaml", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, release, asked)
}

#[tokio::test]
async fn readiness_waits_for_the_first_catalog_load() {
    let dir = tempfile::tempdir().unwrap();
    let (url, release, asked) = held_catalog_file().await;
    let mut config = crate::support::config(&dir.path().join("data"));
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::Url,
        target: url,
    }];
    config.catalog.url_allowed_hosts = vec!["127.0.0.1".into()];
    config.catalog.url_allowed_ips = vec!["127.0.0.1/32".into()];
    // The held answer must not be given up on while the test looks.
    config.catalog.url_timeout_secs = 600;
    let server = TestServer::start(config).await;

    // The catalog is reading its location and has no answer yet.
    let _asked = asked.acquire().await.unwrap();
    let (status, live) = server.get_json("/api/health/live").await;
    assert_eq!((status, live["status"].as_str()), (200, Some("ok")));
    let (status, health) = server.get_json("/api/health").await;
    assert_eq!(status, 200, "{health}");
    let (status, ready) = server.get_json("/api/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not ready", "{ready}");
    assert_eq!(ready["checks"]["catalog"]["ready"], false, "{ready}");
    let reasons: Vec<&str> = ready["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        reasons,
        ["catalog: the start-up load has not finished"],
        "{ready}"
    );
    for check in ["database", "migrations", "plugins"] {
        assert_eq!(ready["checks"][check]["ready"], true, "{check}: {ready}");
    }

    release.notify_one();
    let ready = eventually(60, "readiness after the first load", || async {
        let (status, body) = server.get_json("/api/health/ready").await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["not_ready"], serde_json::json!([]), "{ready}");
    assert_eq!(ready["checks"]["catalog"]["ready"], true, "{ready}");
    assert_eq!(ready["checks"]["database"]["detail"], "sqlite", "{ready}");
    wait_for_entities(&server, 1).await;
    server.stop().await;
}

#[tokio::test]
async fn probes_say_nothing_about_the_catalog_and_take_no_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::config(&dir.path().join("data"));
    // Signed-out callers read nothing: the probes still answer them.
    config.auth.anonymous = callboard::identity::config::Anonymous::None;
    let server = TestServer::start(config).await;
    for path in ["/api/health", "/api/health/live", "/api/health/ready"] {
        let status = eventually(60, path, || async {
            let (status, _) = server.get(path).await;
            (status == 200).then_some(status)
        })
        .await;
        assert_eq!(status, 200, "{path}");
        // Only GET; a body or a query changes nothing and reveals nothing.
        let (status, _) = server.post(path, "x".repeat(1 << 16)).await;
        assert_eq!(status, 405, "{path}");
        let (status, body) = server
            .get(&format!(
                "{path}?filter=kind=component&x={}",
                "y".repeat(1024)
            ))
            .await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains("component"), "{path}: {body}");
    }
    server.stop().await;
}
