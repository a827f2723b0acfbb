//! Test a Callboard plugin without a running portal.
//!
//! A [`Harness`] runs the plugin's WebAssembly component in-process on the
//! host's own runtime (the same sandbox, deadlines, limits, grant checks
//! and API versions as `callboard serve`), over a catalog, key-value store
//! and search index that live in a temporary folder and vanish with the
//! harness. Calls run as a [`Principal`] of the test's choice, and every
//! outbound HTTP request the plugin makes goes to a stub closure instead
//! of the network, after the host's checks: a host the plugin was not
//! granted is refused exactly as in production.
//!
//! When the plugin misuses the API (it panics, loops past its deadline,
//! answers an invalid response, is asked for a view it does not declare),
//! the call fails with a [`HarnessError`] whose message names the plugin,
//! its version and the call.
//!
//! # A plugin's own tests
//!
//! `Cargo.toml` of the plugin (a `cdylib` built with `callboard-sdk`, with
//! its `plugin.toml` beside it):
//!
//! ```toml
//! [dev-dependencies]
//! callboard-plugin-harness = "0.1"
//! serde_json = "1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! `tests/plugin.rs`, run with a plain `cargo test`:
//!
//! ```no_run
//! use callboard_plugin_harness::{
//!     Harness, HarnessError, Principal, ResponseExt as _, http,
//! };
//! use serde_json::json;
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn shows_the_pods_of_a_component() -> Result<(), HarnessError> {
//!     let h = Harness::builder()
//!         // Builds this crate for wasm32-wasip2 (--release) and embeds plugin.toml.
//!         .build_current_crate()
//!         // Catalog entities, as YAML (or JSON).
//!         .entity(
//!             "apiVersion: backstage.io/v1alpha1
//! kind: Component
//! metadata: {name: shop, annotations: {backstage.io/kubernetes-id: shop}}
//! spec: {type: service, lifecycle: production, owner: team-a}",
//!         )
//!         // [plugins.settings.<id>], as the operator would set them.
//!         .setting("clusters", json!([{"name": "prod", "url": "https://k8s.example:6443"}]))
//!         // A manifest asking for `http_hosts = ["*"]` gets what is granted here;
//!         // everything else it asks for is granted by default.
//!         .grant_http_hosts(["k8s.example:6443"])
//!         // Every outbound request the host lets through lands here.
//!         .http_stub(|request| {
//!             if request.url.contains("/pods") {
//!                 http::json(200, &json!({"kind": "PodList", "items": []}))
//!             } else {
//!                 http::empty(404)
//!             }
//!         })
//!         .principal(Principal::user("user:default/alice", "Alice", ["group:default/team-a"]))
//!         // The plugin's declared permission, on the entities the principal owns.
//!         .allow_owners("kubernetes.restart")
//!         .build()
//!         .await?;
//!
//!     // Routes.
//!     let response = h.get("/clusters").await?;
//!     assert_eq!(response.status, 200);
//!     let clusters: serde_json::Value = response.json().unwrap();
//!     assert_eq!(clusters["items"][0]["name"], "prod");
//!
//!     // Views: the UI model the portal would render.
//!     let card = h.view("entity-card", "component:default/shop").await?.unwrap();
//!     assert_eq!(card.title, "Kubernetes");
//!
//!     // Actions, as the principal; and as someone else.
//!     let values = [("cluster", "prod"), ("namespace", "shop"), ("deployment", "shop")];
//!     h.action("entity-tab", "component:default/shop", "restart", values).await?;
//!     let bob = h.as_principal(Principal::user("user:default/bob", "Bob", ["group:default/team-b"]));
//!     let refused = bob.action("entity-tab", "component:default/shop", "restart", values).await;
//!     assert!(refused.unwrap_err().plugin_message().is_some());
//!
//!     // Scheduled work and what the plugin keeps.
//!     h.tick().await?;
//!     let cached = h.kv_keys("").await?;
//!     assert!(!cached.is_empty());
//!     Ok(())
//! }
//! ```
//!
//! A packed plugin file (`callboard plugin pack`) loads with
//! [`HarnessBuilder::component_file`]; a component without an embedded
//! manifest takes its `plugin.toml` from [`HarnessBuilder::manifest_file`].
//!
//! # What differs from a portal
//!
//! - Permissions: the principal holds only what [`HarnessBuilder::allow`]
//!   (everywhere) and [`HarnessBuilder::allow_owners`] (on entities whose
//!   `spec.owner` is the user or one of their groups) give; nothing else.
//!   Routes guarded by a declared permission's `paths` answer 403 without it.
//! - Every call may read the whole catalog (the plugin's `catalog` grant
//!   still applies).
//! - Search is a plain substring match over the documents plugins put.
//! - Nothing runs in the background: scheduled ticks run when the test
//!   calls [`Harness::tick`], and events are not delivered.

mod build;
mod error;
pub mod http;
mod rights;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use callboard::{
    config::Config,
    plugins::{
        InstallOptions, PluginHost, PluginInfo, ViewRequest,
        capabilities::kv::Quota,
        manifest::{self, SlotKind},
        portal::Document,
    },
};
use callboard_catalog::{Catalog, EntityRef, LocationConfig, LocationKind};

pub use callboard::plugins::{
    ActionRequest, CallError, Outcome, PluginRequest, PluginResponse, Principal, View,
    capabilities::http::credentials::CredentialConfig,
    events::{Event, Stream},
    manifest::{Capabilities, Manifest},
    ui,
};
pub use error::HarnessError;
pub use http::{OutError, OutRequest, OutResponse, Transport};

use crate::{
    http::{FnStub, Recorder},
    rights::{HarnessPortal, Policy, Reach},
};

/// `Result` with a [`HarnessError`].
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Where the component comes from.
enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
    Crate(PathBuf),
    CurrentCrate,
}

/// A plugin setting's value: settings are strings; a JSON value other
/// than a string is written as JSON.
#[derive(Debug, Clone)]
pub struct SettingValue(String);

impl From<&str> for SettingValue {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for SettingValue {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<serde_json::Value> for SettingValue {
    fn from(v: serde_json::Value) -> Self {
        Self::from(&v)
    }
}

impl From<&serde_json::Value> for SettingValue {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::String(s) => Self(s.clone()),
            other => Self(other.to_string()),
        }
    }
}

macro_rules! setting_from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for SettingValue {
            fn from(v: $t) -> Self {
                Self(v.to_string())
            }
        }
    )*};
}
setting_from_display!(bool, i32, i64, u32, u64, f64);

/// A catalog entity: YAML or JSON text (several YAML documents separated
/// by `---` are several entities), or a JSON value.
#[derive(Debug, Clone)]
pub struct EntityText(String);

impl From<&str> for EntityText {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for EntityText {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<serde_json::Value> for EntityText {
    fn from(v: serde_json::Value) -> Self {
        Self(v.to_string())
    }
}

impl From<&serde_json::Value> for EntityText {
    fn from(v: &serde_json::Value) -> Self {
        Self(v.to_string())
    }
}

/// Reading a [`PluginResponse`]'s body.
pub trait ResponseExt {
    /// The body as text (lossy UTF-8).
    fn text(&self) -> String;
    /// The body as JSON.
    fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T>;
    /// The first header named `name` (any case).
    fn header(&self, name: &str) -> Option<&str>;
}

impl ResponseExt for PluginResponse {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type ConfigTweak = Box<dyn FnOnce(&mut Config) + Send>;

/// Sets up a [`Harness`]: [`Harness::builder`].
pub struct HarnessBuilder {
    source: Option<Source>,
    manifest: Option<PathBuf>,
    profile: String,
    target_dir: Option<PathBuf>,
    entities: Vec<String>,
    settings: BTreeMap<String, String>,
    stub: Option<Arc<dyn Transport>>,
    principal: Principal,
    grants: Option<Capabilities>,
    hosts: Vec<String>,
    dirs: BTreeMap<String, String>,
    credentials: BTreeMap<String, CredentialConfig>,
    rules: Vec<(String, Reach)>,
    license: Option<String>,
    tweaks: Vec<ConfigTweak>,
}

impl std::fmt::Debug for HarnessBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarnessBuilder")
            .field("principal", &self.principal)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HarnessBuilder {
    /// Loads a component file: a packed plugin (`callboard plugin pack`,
    /// manifest embedded), or a bare component with
    /// [`HarnessBuilder::manifest_file`].
    pub fn component_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Some(Source::File(path.into()));
        self
    }

    /// Loads component bytes (packed, or with [`HarnessBuilder::manifest_file`]).
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.source = Some(Source::Bytes(bytes.into()));
        self
    }

    /// Builds the plugin crate in `dir` (`cargo build --lib --release
    /// --target wasm32-wasip2`, adding the target with rustup if it is
    /// missing) and packs it with `dir/plugin.toml`.
    pub fn build_crate(mut self, dir: impl Into<PathBuf>) -> Self {
        self.source = Some(Source::Crate(dir.into()));
        self
    }

    /// [`HarnessBuilder::build_crate`] of the crate whose tests are running
    /// (`CARGO_MANIFEST_DIR`, which `cargo test` sets).
    pub fn build_current_crate(mut self) -> Self {
        self.source = Some(Source::CurrentCrate);
        self
    }

    /// The cargo profile [`HarnessBuilder::build_crate`] builds with
    /// (default `release`).
    pub fn cargo_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = profile.into();
        self
    }

    /// The target folder [`HarnessBuilder::build_crate`] builds in
    /// (`--target-dir`; default: cargo's, usually the crate's `target/`).
    pub fn cargo_target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// The `plugin.toml` to embed, instead of the component's own (or the
    /// crate's `plugin.toml`).
    pub fn manifest_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest = Some(path.into());
        self
    }

    /// Adds catalog entities (YAML or JSON). They are read as the portal
    /// reads a catalog file: an invalid one fails [`HarnessBuilder::build`].
    pub fn entity(mut self, entity: impl Into<EntityText>) -> Self {
        self.entities.push(entity.into().0);
        self
    }

    /// Sets one of the plugin's settings (`[plugins.settings.<id>]`).
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<SettingValue>) -> Self {
        self.settings.insert(key.into(), value.into().0);
        self
    }

    /// Answers every outbound request the host lets through (after the
    /// grant check, with the operator's credentials added) with `stub`.
    /// Without a stub every request fails as unreachable: the harness never
    /// reaches the network.
    pub fn http_stub<F>(self, stub: F) -> Self
    where
        F: Fn(&OutRequest) -> OutResponse + Send + Sync + 'static,
    {
        self.http_transport(FnStub(stub))
    }

    /// Like [`HarnessBuilder::http_stub`], with an async [`Transport`] that
    /// may also fail a request (e.g. [`OutError::Timeout`]).
    pub fn http_transport(mut self, transport: impl Transport + 'static) -> Self {
        self.stub = Some(Arc::new(transport));
        self
    }

    /// Who calls run for (default: anonymous). [`Harness::as_principal`]
    /// changes it for some calls.
    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// What the operator grants the plugin, instead of the default:
    /// everything its manifest asks for (but directories, and hosts behind
    /// `"*"`: see [`HarnessBuilder::grant_http_hosts`] and
    /// [`HarnessBuilder::grant_dir`]). The plugin gets what it asks for
    /// and is granted, as in production.
    pub fn grants(mut self, grants: Capabilities) -> Self {
        self.grants = Some(grants);
        self
    }

    /// Grants these hosts besides (`api.example.com`, `k8s.example:6443`,
    /// `10.0.0.5`): what a manifest asking for `http_hosts = ["*"]` gets.
    pub fn grant_http_hosts<H: Into<String>>(mut self, hosts: impl IntoIterator<Item = H>) -> Self {
        self.hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Mounts host folder `host` read-only at `guest` (a path the manifest's
    /// `capabilities.files` asks for).
    pub fn grant_dir(mut self, guest: impl Into<String>, host: impl AsRef<Path>) -> Self {
        self.dirs
            .insert(guest.into(), host.as_ref().display().to_string());
        self
    }

    /// The operator's credentials for `host` (`host` or `host:port`): added
    /// to requests to that host only; the plugin never sees them (the stub
    /// does).
    pub fn credentials(mut self, host: impl Into<String>, credentials: CredentialConfig) -> Self {
        self.credentials.insert(host.into(), credentials);
        self
    }

    /// Every principal holds `permission` (one the plugin declares, or `*`
    /// for all), on every entity.
    pub fn allow(mut self, permission: impl Into<String>) -> Self {
        self.rules.push((permission.into(), Reach::Everywhere));
        self
    }

    /// A principal holds `permission` on the entities it owns (their
    /// `spec.owner` is the user or one of their groups), as a policy's
    /// `IS_ENTITY_OWNER` condition says.
    pub fn allow_owners(mut self, permission: impl Into<String>) -> Self {
        self.rules.push((permission.into(), Reach::Owners));
        self
    }

    /// A licence file's text, for a commercial plugin.
    pub fn license(mut self, text: impl Into<String>) -> Self {
        self.license = Some(text.into());
        self
    }

    /// Changes the host's configuration before the plugin is installed
    /// (limits, `[trust]`, ...); the data folder is the harness's own.
    pub fn configure(mut self, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// The component's bytes and the manifest to embed (when not the
    /// component's own). Blocking: may run cargo.
    fn component(
        source: Option<Source>,
        manifest: Option<&Path>,
        (profile, target_dir): (&str, Option<&Path>),
    ) -> Result<(Vec<u8>, Option<Manifest>)> {
        let given = manifest.map(build::read_manifest).transpose()?;
        let source = source.ok_or_else(|| {
            HarnessError::Setup(
                "no component: call .component_file(path), .build_crate(dir) or .build_current_crate()"
                    .into(),
            )
        })?;
        let dir = match source {
            Source::File(path) => {
                let bytes = std::fs::read(&path).map_err(|e| {
                    HarnessError::Setup(format!("cannot read {}: {e}", path.display()))
                })?;
                return Ok((bytes, given));
            }
            Source::Bytes(bytes) => return Ok((bytes, given)),
            Source::Crate(dir) => dir,
            Source::CurrentCrate => std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    HarnessError::Setup(
                        "CARGO_MANIFEST_DIR is not set: run under `cargo test`, or use .build_crate(dir)"
                            .into(),
                    )
                })?,
        };
        let manifest = match given {
            Some(m) => m,
            None => build::read_manifest(&dir.join("plugin.toml"))?,
        };
        let wasm = build::build(&dir, profile, target_dir)?;
        let bytes = std::fs::read(&wasm)
            .map_err(|e| HarnessError::Setup(format!("cannot read {}: {e}", wasm.display())))?;
        Ok((bytes, Some(manifest)))
    }

    /// Builds (or loads) the component, sets up the host, the catalog and
    /// the stub, and installs the plugin as an operator would.
    pub async fn build(mut self) -> Result<Harness> {
        let (source, manifest_file) = (self.source.take(), self.manifest.take());
        let (profile, target_dir) = (self.profile.clone(), self.target_dir.take());
        let (bytes, manifest) = off_runtime("build", move || {
            Self::component(
                source,
                manifest_file.as_deref(),
                (&profile, target_dir.as_deref()),
            )
        })
        .await??;
        let (bytes, manifest) = match manifest {
            Some(m) => (build::pack(&bytes, &m)?, m),
            None => match manifest::read(&bytes) {
                Ok(m) => (bytes, m),
                Err(e) => {
                    return Err(HarnessError::Setup(format!(
                        "the component has no usable embedded manifest ({e}); give its plugin.toml with .manifest_file(path)"
                    )));
                }
            },
        };
        let id = manifest.id.clone();
        let label = format!("{id}@{}", manifest.version);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            HarnessError::Setup(format!("{label}: {what}: {e:#}"))
        };

        let dir = tempfile::Builder::new()
            .prefix("callboard-harness-")
            .tempdir()
            .map_err(|e| setup("cannot create a temporary folder", &e))?;
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.plugins.dir = None;
        config.plugins.watch = false;
        config.plugins.max_concurrent_instances = 16;
        config.catalog.refresh_interval_secs = 0;
        if !self.entities.is_empty() {
            let file = dir.path().join("catalog.yaml");
            std::fs::write(&file, self.entities.join("\n---\n"))
                .map_err(|e| setup("cannot write the catalog", &e))?;
            config.catalog.locations = vec![LocationConfig {
                kind: LocationKind::File,
                target: file.display().to_string(),
            }];
        }
        let mut grants = self.grants.take().unwrap_or_else(|| Capabilities {
            files: BTreeMap::new(),
            ..manifest.capabilities.clone()
        });
        grants.http_hosts.extend(std::mem::take(&mut self.hosts));
        grants.files.extend(std::mem::take(&mut self.dirs));
        config.grants.plugins.insert(id.clone(), grants);
        config
            .plugins
            .settings
            .insert(id.clone(), std::mem::take(&mut self.settings));
        config
            .plugins
            .credentials
            .insert(id.clone(), std::mem::take(&mut self.credentials));
        for tweak in std::mem::take(&mut self.tweaks) {
            tweak(&mut config);
        }
        config.data_dir = dir.path().join("data");

        let (stores, catalog) = callboard::server::AppState::open_storage(&config)
            .await
            .map_err(|e| setup("cannot open the harness's storage", &e))?;
        share_compile_cache(&config.data_dir);
        if !self.entities.is_empty() {
            catalog
                .sync_config_locations()
                .await
                .map_err(|e| setup("cannot register the catalog", &e))?;
            let reports = catalog
                .refresh_all()
                .await
                .map_err(|e| setup("cannot read the catalog", &e))?;
            let problems: Vec<String> = reports
                .iter()
                .flat_map(|r| r.problems.iter().map(ToString::to_string))
                .collect();
            if !problems.is_empty() {
                return Err(HarnessError::Setup(format!(
                    "the catalog refused entities: {}",
                    problems.join("; ")
                )));
            }
        }

        let host = PluginHost::new(&config.runtime(), &stores)
            .map_err(|e| setup("cannot start the plugin runtime", &e))?;
        host.attach_catalog(catalog.clone());
        let policy = Arc::new(Policy {
            rules: std::mem::take(&mut self.rules),
            catalog: catalog.clone(),
            index: Mutex::default(),
        });
        host.attach_portal(Arc::new(HarnessPortal(policy.clone())));
        let recorder = Arc::new(Recorder {
            stub: self.stub.take(),
            seen: Mutex::default(),
        });
        host.set_http_transport(recorder.clone());

        // Installed off the async runtime: the host then starts nothing in
        // the background (no scheduled ticks, no event delivery), so a test
        // decides when a tick runs.
        let options = InstallOptions {
            force: false,
            license: self.license.take(),
        };
        let installer = host.clone();
        let info = off_runtime("install", move || installer.install(&bytes, &options))
            .await?
            .map_err(|source| HarnessError::Install {
                plugin: label.clone(),
                source: Box::new(source),
            })?;
        let quota = {
            let limits = config.plugins.limits_for(&id);
            Quota {
                bytes: limits.kv_quota_bytes,
                max_value_bytes: limits.kv_max_value_bytes,
            }
        };
        Ok(Harness {
            shared: Arc::new(Shared {
                host,
                catalog,
                policy,
                recorder,
                manifest,
                info,
                label,
                quota,
                _dir: dir,
            }),
            principal: self.principal,
        })
    }
}

/// Points `<data>/cache` at one folder shared by every harness of this
/// user, so a plugin compiled once is not compiled again by each test
/// (wasmtime's cache is keyed by the component and the engine's settings,
/// and safe to share). Best effort: without it, each harness compiles.
fn share_compile_cache(data_dir: &Path) {
    #[cfg(unix)]
    {
        let shared = std::env::temp_dir().join("callboard-plugin-harness-cache");
        let link = data_dir.join("cache");
        if std::fs::create_dir_all(&shared).is_ok() && !link.exists() {
            let _ = std::os::unix::fs::symlink(&shared, &link);
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
}

/// Runs blocking `work` (a cargo build, compiling the plugin) on its own
/// thread, outside the async runtime, whatever runtime the test uses.
async fn off_runtime<R: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("callboard-harness-{what}"))
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| HarnessError::Setup(format!("cannot start the {what}: {e}")))?;
    rx.await
        .map_err(|_| HarnessError::Setup(format!("the {what} stopped (it panicked)")))
}

/// Everything one harness holds; dropped with its last clone.
struct Shared {
    host: PluginHost,
    catalog: Catalog,
    policy: Arc<Policy>,
    recorder: Arc<Recorder>,
    manifest: Manifest,
    info: PluginInfo,
    /// `id@version`.
    label: String,
    quota: Quota,
    /// Dropped last: the data folder.
    _dir: tempfile::TempDir,
}

/// One plugin, installed on an in-process host over a temporary catalog,
/// key-value store and index, called as a principal. Cheap to clone;
/// everything is removed when the last clone is dropped.
#[derive(Clone)]
pub struct Harness {
    shared: Arc<Shared>,
    principal: Principal,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("plugin", &self.shared.label)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Starts setting one up.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder {
            source: None,
            manifest: None,
            profile: "release".into(),
            target_dir: None,
            entities: Vec::new(),
            settings: BTreeMap::new(),
            stub: None,
            principal: Principal::Anonymous,
            grants: None,
            hosts: Vec::new(),
            dirs: BTreeMap::new(),
            credentials: BTreeMap::new(),
            rules: Vec::new(),
            license: None,
            tweaks: Vec::new(),
        }
    }

    /// The same plugin, store and catalog, with calls made as `principal`.
    pub fn as_principal(&self, principal: Principal) -> Self {
        Self {
            shared: self.shared.clone(),
            principal,
        }
    }

    /// Who calls run for.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The plugin's manifest, as installed.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// `id@version`.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// What the host reported at install: its API version, the capabilities
    /// requested, granted and effective, its limits.
    pub fn info(&self) -> &PluginInfo {
        &self.shared.info
    }

    /// The host, for what the harness does not wrap.
    pub fn host(&self) -> &PluginHost {
        &self.shared.host
    }

    /// The harness's catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    fn id(&self) -> &str {
        &self.shared.manifest.id
    }

    fn call_failed(&self, call: &str, source: CallError) -> HarnessError {
        HarnessError::Call {
            plugin: self.shared.label.clone(),
            call: call.to_owned(),
            source,
        }
    }

    fn misuse(&self, call: &str, reason: impl Into<String>) -> HarnessError {
        HarnessError::Misuse {
            plugin: self.shared.label.clone(),
            call: call.to_owned(),
            reason: reason.into(),
        }
    }

    fn caller(&self) -> callboard::plugins::Caller {
        self.shared.policy.caller(self.principal.clone())
    }

    // ----- requests -----

    /// `GET path` (with an optional `?query`).
    pub async fn get(&self, path: &str) -> Result<PluginResponse> {
        self.request("GET", path, Vec::new(), Vec::<(String, String)>::new())
            .await
    }

    /// `POST path` with `body` as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<PluginResponse> {
        let body = serde_json::to_vec(body)
            .map_err(|e| HarnessError::Setup(format!("cannot serialize the body: {e}")))?;
        self.request("POST", path, body, [("content-type", "application/json")])
            .await
    }

    /// A request to the plugin's routes: `path` below its mount point
    /// (`/api/plugins/<id>`), with an optional `?query`.
    pub async fn request<K: Into<String>, V: Into<String>>(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<PluginResponse> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        self.send(PluginRequest {
            caller: callboard::plugins::Caller::default(),
            method: method.to_ascii_uppercase(),
            path,
            query: query.to_owned(),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.into().to_ascii_lowercase(), v.into()))
                .collect(),
            body: body.into(),
        })
        .await
    }

    /// Sends `request` as the harness's principal (its `caller` is
    /// replaced). A route guarded by a declared permission the principal
    /// does not hold answers 403 without reaching the plugin, as in the
    /// portal.
    pub async fn send(&self, mut request: PluginRequest) -> Result<PluginResponse> {
        let call = if request.query.is_empty() {
            format!("{} {}", request.method, request.path)
        } else {
            format!("{} {}?{}", request.method, request.path, request.query)
        };
        for permission in self
            .shared
            .host
            .permissions_guarding(self.id(), &request.path)
        {
            let rights = self.caller().rights;
            if !rights.allows(&permission, None).await.unwrap_or(false) {
                let message = format!("{:?} does not hold {permission}", self.principal);
                return Ok(PluginResponse {
                    status: 403,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: serde_json::to_vec(&serde_json::json!({
                        "error": {"name": "NotAllowedError", "message": message}
                    }))
                    .unwrap_or_default(),
                    served_by: Arc::from(self.shared.label.as_str()),
                });
            }
        }
        request.caller = self.caller();
        self.shared
            .host
            .handle(self.id(), request)
            .await
            .map_err(|e| self.call_failed(&call, e))
    }

    // ----- views and actions -----

    /// The view for `slot` (`entity-card`, `entity-tab` or `page`) of
    /// `target`: an entity ref for entity slots (the entity must be in the
    /// harness catalog), the path below the plugin's page root for pages.
    /// `Ok(None)`: the plugin shows nothing there (or the slot's `kinds` do
    /// not include the entity's, so the portal would not ask).
    pub async fn view(&self, slot: &str, target: &str) -> Result<Option<View>> {
        let call = format!("view {slot} of {target}");
        let Some(request) = self.view_request(&call, slot, target).await? else {
            return Ok(None);
        };
        match self.shared.host.render_view(self.id(), request).await {
            Ok(Ok(view)) => Ok(view),
            Ok(Err(message)) => Err(HarnessError::Plugin {
                plugin: self.shared.label.clone(),
                call,
                message,
            }),
            Err(e) => Err(self.call_failed(&call, e)),
        }
    }

    /// The plugin's page at `path` ([`Harness::view`] of slot `page`).
    pub async fn page(&self, path: &str) -> Result<Option<View>> {
        self.view("page", path).await
    }

    /// Presses a button or submits a form named `action` in the view of
    /// `slot` and `target` (as [`Harness::view`]), with `values`, as the
    /// principal. The plugin's own refusal is [`HarnessError::Plugin`]
    /// (the portal shows it as a `bad` notice).
    pub async fn action<K: Into<String>, V: Into<String>>(
        &self,
        slot: &str,
        target: &str,
        action: &str,
        values: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Outcome> {
        let call = format!("action {action} in {slot} of {target}");
        let view = self
            .view_request(&call, slot, target)
            .await?
            .ok_or_else(|| {
                self.misuse(
                    &call,
                    format!(
                        "its {slot} view does not apply to {target}, so it has no buttons there"
                    ),
                )
            })?;
        let request = ActionRequest {
            name: action.to_owned(),
            values: values
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            view,
        };
        match self.shared.host.run_action(self.id(), request).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(HarnessError::Plugin {
                plugin: self.shared.label.clone(),
                call,
                message,
            }),
            Err(e) => Err(self.call_failed(&call, e)),
        }
    }

    /// The request the portal would make for `slot` of `target`; `None`
    /// when the slot does not apply to the entity's kind.
    async fn view_request(
        &self,
        call: &str,
        slot: &str,
        target: &str,
    ) -> Result<Option<ViewRequest>> {
        let kind = [SlotKind::EntityCard, SlotKind::EntityTab, SlotKind::Page]
            .into_iter()
            .find(|k| k.as_str() == slot)
            .ok_or_else(|| {
                self.misuse(
                    call,
                    format!("{slot:?} is not a slot; expected entity-card, entity-tab or page"),
                )
            })?;
        let declared: Vec<_> = self
            .shared
            .manifest
            .views
            .iter()
            .filter(|v| v.slot == kind)
            .collect();
        if declared.is_empty() {
            return Err(self.misuse(
                call,
                format!("its plugin.toml declares no {slot} view ([[views]] slot = \"{slot}\")"),
            ));
        }
        let (entity, path) = if kind == SlotKind::Page {
            let path = if target.starts_with('/') {
                target.to_owned()
            } else {
                format!("/{target}")
            };
            (None, path)
        } else {
            let parsed = EntityRef::parse_with_defaults(target, Some("component"), "default")
                .map_err(|e| self.misuse(call, e.to_string()))?;
            let entity = self
                .shared
                .catalog
                .get_by_ref(&parsed)
                .await
                .map_err(|e| self.misuse(call, format!("reading the catalog: {e}")))?
                .ok_or_else(|| {
                    self.misuse(
                        call,
                        format!(
                            "the harness catalog holds no entity {parsed}; add it with .entity(...)"
                        ),
                    )
                })?;
            let entity_kind = entity["kind"].as_str().unwrap_or_default();
            if !declared.iter().any(|v| v.applies_to(entity_kind)) {
                return Ok(None);
            }
            (Some(entity.to_string()), String::new())
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (path, String::new()),
        };
        if let Err(e) = self.shared.host.admits(self.id(), &path) {
            return Err(self.call_failed(call, e));
        }
        Ok(Some(ViewRequest {
            caller: self.caller(),
            slot: kind,
            entity,
            path,
            query,
        }))
    }

    // ----- background work -----

    /// Runs the plugin's scheduled task (`on_tick`) once, as its own service
    /// principal (`plugin:<id>`), under the same deadline and limits as
    /// a scheduled tick.
    pub async fn tick(&self) -> Result<()> {
        self.shared
            .host
            .tick_now(self.id())
            .await
            .map_err(|e| self.call_failed("tick", e))
    }

    /// Delivers `events` of `stream` to the plugin's subscriber (`on_events`)
    /// as one batch, as its own service principal, the way the portal's
    /// event bus does. The plugin must ask for `stream` in its manifest and
    /// be granted it (the harness grants what a manifest asks for unless
    /// [`HarnessBuilder::grants`] says otherwise); if not, this is a
    /// [`HarnessError::Setup`], as the portal would never deliver them.
    pub async fn deliver(&self, stream: Stream, events: Vec<Event>) -> Result<()> {
        if !self
            .shared
            .info
            .effective
            .events
            .iter()
            .any(|s| s == stream.as_str())
        {
            return Err(HarnessError::Setup(format!(
                "{} does not receive {} events: its manifest must request the stream and the \
                 harness grant it",
                self.shared.label,
                stream.as_str()
            )));
        }
        self.shared
            .host
            .deliver_now(self.id(), events)
            .await
            .map_err(|e| self.call_failed("events", e))
    }

    // ----- what the plugin keeps and sends -----

    fn kv_error(&self, what: &str, e: impl std::fmt::Display) -> HarnessError {
        HarnessError::Setup(format!("{}: key-value {what}: {e}", self.shared.label))
    }

    /// The plugin's key-value value under `key`.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.shared
            .host
            .kv()
            .get(self.id(), key)
            .await
            .map_err(|e| self.kv_error(&format!("get {key:?}"), e))
    }

    /// [`Harness::kv_get`] of a JSON value (what the SDK's `kv::set_json` stores).
    pub async fn kv_get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>> {
        match self.kv_get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.kv_error(&format!("get {key:?} as JSON"), e)),
        }
    }

    /// The 8-byte counter under `key` (what the SDK's `kv::increment` keeps).
    pub async fn kv_get_i64(&self, key: &str) -> Result<Option<i64>> {
        match self.kv_get(key).await? {
            None => Ok(None),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(|b| Some(i64::from_le_bytes(b)))
                .map_err(|_| self.kv_error(&format!("get {key:?}"), "not an 8-byte integer")),
        }
    }

    /// Stores `value` under `key` for the plugin (within its quota), e.g.
    /// to start a test from some state.
    pub async fn kv_set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<()> {
        self.shared
            .host
            .kv()
            .set(self.id(), key, value.as_ref(), self.shared.quota)
            .await
            .map_err(|e| self.kv_error(&format!("set {key:?}"), e))
    }

    /// [`Harness::kv_set`] of a JSON value.
    pub async fn kv_set_json(&self, key: &str, value: &impl serde::Serialize) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| self.kv_error(&format!("set {key:?}"), e))?;
        self.kv_set(key, bytes).await
    }

    /// The plugin's keys starting with `prefix`, ascending (at most 10,000).
    pub async fn kv_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.shared
            .host
            .kv()
            .list_keys(self.id(), prefix, 10_000)
            .await
            .map_err(|e| self.kv_error(&format!("list {prefix:?}"), e))
    }

    /// Every outbound request that passed the host's checks and reached the
    /// stub, in order (a refused one never does).
    pub fn http_requests(&self) -> Vec<OutRequest> {
        self.shared
            .recorder
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The documents the plugin put in the search index, by id.
    pub fn documents(&self) -> Vec<Document> {
        let index = self
            .shared
            .policy
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        index
            .iter()
            .filter(|((plugin, _), _)| plugin == self.id())
            .map(|(_, d)| d.clone())
            .collect()
    }
}
