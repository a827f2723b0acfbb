//! Backstage's own client library, `@backstage/catalog-client` from npm,
//! against the catalog API. Node and npm are required: without them this test
//! fails and says why, rather than passing without checking anything.

use std::path::PathBuf;
use std::process::Command;

use super::harness::{CatalogServer, FIXTURE, write_files};

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat")
}

/// Installs the package locked in tests/compat into the cache once.
fn install_client() -> PathBuf {
    callboard_test_npm::Packages {
        dir: &compat_dir(),
        cache: "npm",
        cache_env: "CALLBOARD_NPM_CACHE",
        probe: "@backstage/catalog-client",
        needed_by: "the Backstage client compatibility test cannot run",
    }
    .install()
}

#[tokio::test]
async fn backstage_catalog_client_works_unchanged() {
    let node_modules = tokio::task::spawn_blocking(install_client).await.unwrap();
    let s = CatalogServer::start(FIXTURE).await;
    write_files(
        &s.path("new"),
        &[(
            "a.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\nspec: {type: service, lifecycle: beta, owner: team-a}\n",
        )],
    );
    let target = s.path("new/a.yaml").display().to_string();
    let script = compat_dir().join("catalog-client.cjs");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&base)
            .arg(&target)
            .env("NODE_PATH", &node_modules)
            .env("CALLBOARD_TOKEN", super::harness::TOKEN)
            .output()
    })
    .await
    .unwrap()
    .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the Backstage client disagreed with the catalog:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("11/11 client checks passed"), "{stdout}");
}

/// The same client checks against a whole server where reads need a
/// credential too (`auth.anonymous = "none"`, the default) and the client
/// holds a stored API token (`token:compat`, an administrator by the
/// policy's first roles): every call carries it, and calls without one get
/// 401.
#[tokio::test]
async fn backstage_catalog_client_works_with_an_api_token() {
    use callboard_catalog::{LocationConfig, LocationKind};
    use callboard_store::access::TokenRow;
    let node_modules = tokio::task::spawn_blocking(install_client).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_files(&dir.path().join("catalog"), FIXTURE);
    write_files(
        &dir.path().join("new"),
        &[(
            "a.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\nspec: {type: service, lifecycle: beta, owner: team-a}\n",
        )],
    );
    let mut config = crate::support::config(&dir.path().join("data"));
    config.auth.anonymous = callboard::identity::config::Anonymous::None;
    config.auth.admins = vec!["token:compat".into()];
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: dir.path().join("catalog/*.yaml").display().to_string(),
    }];
    config.catalog.api_location_types = vec![LocationKind::File, LocationKind::Url];
    config.catalog.file_roots = vec![dir.path().to_owned()];
    let server = crate::support::TestServer::start(config).await;
    let secret = "cbt_compat-client-token";
    server
        .running
        .state
        .stores
        .tokens
        .create_token(&TokenRow {
            id: "compat".into(),
            name: "compat".into(),
            digest: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes())),
            permissions: Vec::new(),
            created_by: "admin".into(),
            created_ms: 0,
            expires_ms: None,
            last_used_ms: None,
            revoked_ms: None,
        })
        .await
        .unwrap();
    let base = format!("{}/api/catalog", server.running.url());
    let http = reqwest::Client::new();
    crate::support::eventually(30, "the catalog to load", || async {
        let items: serde_json::Value = http
            .get(format!("{base}/entities"))
            .bearer_auth(secret)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (items.as_array()?.len() == 13).then_some(())
    })
    .await;
    let target = dir.path().join("new/a.yaml").display().to_string();
    let script = compat_dir().join("catalog-client.cjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&base)
            .arg(&target)
            .env("NODE_PATH", &node_modules)
            .env("CALLBOARD_TOKEN", secret)
            .env("CALLBOARD_READ_TOKEN", secret)
            .output()
    })
    .await
    .unwrap()
    .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the Backstage client with an API token disagreed with the catalog:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("12/12 client checks passed"), "{stdout}");
    server.running.shutdown().await.unwrap();
}
