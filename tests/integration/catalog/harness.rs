//! A catalog server over a temporary folder of descriptor files.

use std::path::{Path, PathBuf};

use callboard_catalog::{Catalog, CatalogConfig, LocationConfig, LocationKind};
use serde_json::Value;

/// The token the harness's catalog accepts for writes.
pub const TOKEN: &str = "catalog-harness-token";

pub struct CatalogServer {
    pub base: String,
    pub catalog: Catalog,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// Writes `files` (relative path, text) under a fresh folder.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

impl CatalogServer {
    /// Serves a catalog whose configured location is `catalog/**/*.yaml`
    /// under a temporary folder holding `files`, after reading it once.
    pub async fn start(files: &[(&str, &str)]) -> Self {
        Self::start_with(files, &["catalog/*.yaml"]).await
    }

    pub async fn start_with(files: &[(&str, &str)], globs: &[&str]) -> Self {
        Self::start_config(files, globs, |_, _| {}).await
    }

    /// [`CatalogServer::start_with`], with the configuration adjusted by
    /// `tweak`. The defaults here open what the tests need: file locations
    /// through the API within the temporary folder, and url targets on
    /// 127.0.0.1 (both refused by the product's defaults).
    pub async fn start_config(
        files: &[(&str, &str)],
        globs: &[&str],
        tweak: impl FnOnce(&mut CatalogConfig, &Path),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_files(&dir.path().join("catalog"), files);
        let mut config = CatalogConfig {
            locations: globs
                .iter()
                .map(|g| LocationConfig {
                    kind: LocationKind::File,
                    target: dir.path().join(g).display().to_string(),
                })
                .collect(),
            refresh_interval_secs: 0,
            api_location_types: vec![LocationKind::File, LocationKind::Url],
            file_roots: vec![dir.path().to_owned()],
            url_allowed_hosts: vec!["127.0.0.1".into()],
            url_allowed_ips: vec!["127.0.0.1/32".into()],
            ..CatalogConfig::default()
        };
        tweak(&mut config, dir.path());
        let catalog = crate::support::open_catalog(&dir.path().join("data"), &config).await;
        catalog.sync_config_locations().await.unwrap();
        catalog.refresh_all().await.unwrap();
        let router = axum::Router::new().nest(
            "/api/catalog",
            callboard::api::catalog::router(
                catalog.clone(),
                callboard::api::auth::CatalogAccess::admin_only(TOKEN),
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Without TCP_NODELAY a streamed body's last segment waits for a delayed ACK (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base: format!("http://{addr}/api/catalog"),
            catalog,
            dir,
            // Catalog writes need a token: the harness's client sends it.
            http: reqwest::Client::builder()
                .default_headers(
                    [(
                        reqwest::header::AUTHORIZATION,
                        format!("Bearer {TOKEN}").parse().unwrap(),
                    )]
                    .into_iter()
                    .collect(),
                )
                .build()
                .unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn delete(&self, path: &str) -> u16 {
        self.http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Reads every location again.
    pub async fn refresh(&self) {
        self.catalog.refresh_all().await.unwrap();
    }
}

/// Sorted `metadata.name`s of a list of entities.
pub fn names(items: &Value) -> Vec<String> {
    let mut names: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A small but complete catalog: every kind, relations in both directions,
/// a Location entity with a relative target, multi-document files.
pub const FIXTURE: &[(&str, &str)] = &[
    (
        "org.yaml",
        r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: engineering
spec:
  type: department
  children: [team-a]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
  title: Team A
spec:
  type: team
  parent: engineering
  children: []
  members: [alice]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  memberOf: [team-a]
  profile:
    displayName: Alice Anders
    email: alice@example.com
"#,
    ),
    (
        "shop.yaml",
        r#"apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: commerce
spec:
  owner: engineering
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
  description: Everything that sells parcels
spec:
  owner: team-a
  domain: commerce
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-web
  title: Checkout Web
  description: The checkout pages customers see
  tags: [typescript, web]
  annotations:
    github.com/project-slug: example/checkout-web
  links:
    - url: https://checkout.example.com
      title: Production
spec:
  type: website
  lifecycle: production
  owner: team-a
  system: shop
  consumesApis: [checkout-api]
  dependsOn: [resource:orders-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-service
  description: Prices baskets and takes payment
  tags: [java]
spec:
  type: service
  lifecycle: production
  owner: team-a
  system: shop
  providesApis: [checkout-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: label-printer
  tags: [java, legacy]
spec:
  type: service
  lifecycle: experimental
  owner: user:alice
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: checkout-api
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  system: shop
  definition: |
    openapi: 3.0.0
    info: {title: Checkout, version: 1.0.0}
    paths: {}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: orders-db
spec:
  type: database
  owner: team-a
  system: shop
"#,
    ),
    (
        "more.yaml",
        r#"apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: more
spec:
  targets:
    - ../extra/payments.yaml
"#,
    ),
    (
        "../extra/payments.yaml",
        r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  namespace: finance
spec:
  type: service
  lifecycle: production
  owner: default/team-a
"#,
    ),
];
