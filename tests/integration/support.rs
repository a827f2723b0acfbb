//! The harness: real servers on 127.0.0.1:0 over real data directories,
//! loading real plugin files built by `cargo xtask build-plugins`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use callboard::plugins::{
    license::{self, LicenseTerms},
    manifest::{self, Manifest},
    signing::VendorKey,
};
use callboard::{config::Config, server::Running};
use jiff::{Timestamp, ToSpan as _};

/// Folder of packed plugin files; `cargo xtask test` sets it.
pub fn plugins_dir() -> PathBuf {
    let dir = std::env::var_os("CALLBOARD_TEST_PLUGINS").map(PathBuf::from).expect(
        "CALLBOARD_TEST_PLUGINS is not set: run the tests with `cargo xtask test`, which builds the wasm plugins",
    );
    assert!(
        dir.is_dir(),
        "CALLBOARD_TEST_PLUGINS={} is not a folder",
        dir.display()
    );
    dir
}

/// A packed plugin file by id, e.g. `hello`.
pub fn plugin_file(id: &str) -> PathBuf {
    let file = plugins_dir().join(format!("{id}.wasm"));
    assert!(
        file.is_file(),
        "{} is missing: run `cargo xtask build-plugins`",
        file.display()
    );
    file
}

/// `id`'s packed file with its manifest changed.
pub fn repack(id: &str, change: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let bytes = std::fs::read(plugin_file(id)).unwrap();
    let mut m = manifest::read(&bytes).unwrap();
    change(&mut m);
    manifest::embed(&bytes, &m).unwrap()
}

/// hello repackaged as a commercial plugin `premium` of vendor `vendor`.
pub fn premium(version: &str, vendor: &str) -> Vec<u8> {
    repack("hello", |m| {
        m.id = "premium".into();
        m.version = version.parse().unwrap();
        m.vendor = Some(vendor.into());
        m.license = Some("commercial".into());
        m.entitlements = vec![manifest::EntitlementRoute {
            feature: "greetings".into(),
            paths: vec!["/greet".into()],
        }];
    })
}

/// A licence for `plugin` signed by `key`, valid from an hour ago until `expires`.
pub fn licence(
    key: &VendorKey,
    plugin: &str,
    customer: &str,
    expires: Timestamp,
    features: &[&str],
) -> String {
    let now = Timestamp::now();
    license::issue(
        key,
        &LicenseTerms {
            plugin: plugin.into(),
            vendor: key.vendor.clone(),
            customer: customer.into(),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            issued: now,
            not_before: now - 1.hour(),
            expires,
        },
    )
}

/// The admin token a server wrote into its data directory `data`.
pub fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Installs licence `text` for plugin `id` through the admin API:
/// (status, body).
pub async fn put_licence(
    server: &TestServer,
    data: &Path,
    id: &str,
    text: String,
) -> (u16, String) {
    let response = server
        .client
        .put(server.url(&format!("/api/admin/plugins/{id}/license")))
        .bearer_auth(admin_token(data))
        .body(text)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Everything logged by servers in this test process (also echoed to stderr).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,wasmtime=warn,cranelift=warn")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// A server over a data directory that outlives restarts.
pub struct TestServer {
    pub running: Running,
    pub client: reqwest::Client,
}

/// A config for `data_dir`, listening on an ephemeral loopback port.
/// Anonymous callers read (`auth.anonymous = "read"`): the tests of other
/// areas read the catalog and pages without signing in; the sign-in and
/// permission tests set what they test.
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.auth.anonymous = callboard::identity::config::Anonymous::Read;
    config
}

/// Copies plugin files (by id) into the data directory's plugins folder.
pub fn install(data_dir: &Path, ids: &[&str]) {
    let dir = data_dir.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for id in ids {
        std::fs::copy(plugin_file(id), dir.join(format!("{id}.wasm"))).unwrap();
    }
}

impl TestServer {
    /// Starts a server with `config`.
    pub async fn start(config: Config) -> Self {
        init_logging();
        let running = callboard::server::start(config)
            .await
            .expect("server starts");
        Self {
            running,
            client: reqwest::Client::new(),
        }
    }

    /// Starts a server over `data_dir` with the given plugins installed.
    pub async fn with_plugins(
        data_dir: &Path,
        ids: &[&str],
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        install(data_dir, ids);
        let mut config = config(data_dir);
        tweak(&mut config);
        Self::start(config).await
    }

    /// Absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    /// GET `path`, returning status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POST `body` to `path`, returning status and body text.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .expect("POST");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// GET `path` and parse the body as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.get(path).await;
        (
            status,
            serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")),
        )
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.running.shutdown().await.unwrap();
    }
}

/// Parses a Backstage error body and returns `(name, message)`.
pub fn backstage_error(body: &str) -> (String, String) {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let name = value["error"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.name: {body}"))
        .to_owned();
    let message = value["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message: {body}"))
        .to_owned();
    assert!(
        value["response"]["statusCode"].is_u64(),
        "no response.statusCode: {body}"
    );
    assert!(
        value["request"]["method"].is_string(),
        "no request.method: {body}"
    );
    (name, message)
}

/// Waits (up to 30 s) until the server's catalog holds at least `entities`.
/// Opens the catalog of a data directory's SQLite files, as `callboard
/// serve` would.
pub async fn open_catalog(
    data_dir: &std::path::Path,
    config: &callboard_catalog::CatalogConfig,
) -> callboard_catalog::Catalog {
    let stores =
        callboard_store_sqlite::open(data_dir, &callboard_store_sqlite::SqliteOptions::default())
            .unwrap();
    callboard_catalog::Catalog::open(&stores, config)
        .await
        .unwrap()
}

/// Asks the server (as the administrator of `data`) to read `entity_ref`
/// again now.
pub async fn refresh_entity(server: &TestServer, data: &Path, entity_ref: &str) {
    let response = server
        .client
        .post(server.url("/api/catalog/refresh"))
        .bearer_auth(admin_token(data))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "entityRef": entity_ref }).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "refreshing {entity_ref}: {}",
        response.status()
    );
}

pub async fn wait_for_entities(server: &TestServer, entities: u64) {
    let catalog = server.running.state.catalog.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = catalog
            .count(&callboard_catalog::Selection::default())
            .await
            .unwrap();
        if n >= entities {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the catalog holds {n} entities after 30 s, expected {entities}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Polls `probe` every 50 ms until it returns `Some`, failing with `what`
/// after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after {secs} s still waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs the `callboard` binary (`CALLBOARD_BIN`) with `--data-dir data` and
/// `args`: whether it succeeded, and its stdout and stderr.
pub fn cli(data: &Path, args: &[&str]) -> (bool, String) {
    let bin = std::env::var_os("CALLBOARD_BIN")
        .expect("CALLBOARD_BIN is not set: run the tests with `cargo xtask test`");
    let output = std::process::Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A `callboard serve` process (the real binary, `CALLBOARD_BIN`), its
/// standard error collected line by line; killed when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://ADDR` of the portal.
    pub base: String,
    log: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `host:port` that follows `marker` in a log line (text or JSON).
pub fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = line.split(marker).nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '/')
        .collect();
    (!addr.is_empty()).then_some(addr)
}

impl Served {
    /// Starts `callboard --config CONFIG --data-dir DATA serve --bind
    /// 127.0.0.1:0` in `dir` with `env` added, and waits until it listens.
    pub async fn start(dir: &Path, config: &Path, data: &Path, env: &[(&str, &str)]) -> Served {
        Self::start_named("served", dir, config, data, env).await
    }

    /// [`Served::start`], its log lines echoed prefixed with `[name]`.
    pub async fn start_named(
        name: &str,
        dir: &Path,
        config: &Path,
        data: &Path,
        env: &[(&str, &str)],
    ) -> Served {
        use std::io::BufRead as _;
        std::fs::create_dir_all(data.join("plugins")).unwrap();
        let bin = std::env::var_os("CALLBOARD_BIN")
            .expect("CALLBOARD_BIN is not set: run the tests with `cargo xtask test`");
        let mut child = std::process::Command::new(bin)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("CALLBOARD_DATABASE_URL")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let log = log.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("[{name}] {line}");
                    if let Some(addr) = address_after(&line, "listening on http://")
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = tokio::time::timeout(std::time::Duration::from_secs(120), rx)
            .await
            .unwrap_or_else(|_| panic!("{name} did not start: {:?}", log.lock().unwrap()))
            .unwrap_or_else(|_| panic!("{name} exited: {:?}", log.lock().unwrap()));
        Served {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// Absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Everything logged so far, one line after another.
    pub fn log(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind).
    pub fn kill9(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }
}

/// Makes sure `binary` exists, installing Debian's `packages` when it does
/// not (as root; one install at a time across test processes, waiting for
/// dpkg's lock rather than failing on it).
pub fn ensure_installed(binary: &str, packages: &[&str]) {
    static INSTALLING: Mutex<()> = Mutex::new(());
    if Path::new(binary).exists() {
        return;
    }
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let lock_path = std::env::temp_dir().join("callboard-apt-install.lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    if Path::new(binary).exists() {
        return;
    }
    eprintln!("installing {} with apt-get", packages.join(" "));
    let install = format!(
        "apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive \
         apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends {}",
        packages.join(" ")
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &install])
        .stdin(std::process::Stdio::null())
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()) && Path::new(binary).exists(),
        "{binary} is missing and `apt-get install {}` failed ({status:?}); install the Debian \
         package(s) {} as root",
        packages.join(" "),
        packages.join(" ")
    );
}

/// A session for `user`, as the sign-in flow makes one: the cookie
/// (`name=value`) and its CSRF token.
pub async fn session(server: &TestServer, user: &str) -> (String, String) {
    let s = server.running.state.sessions.create(user).await.unwrap();
    (format!("{}={}", callboard::identity::COOKIE, s.id), s.csrf)
}

/// GET `path` as the holder of `cookie`, as a browser would but without
/// following redirects: (status, body).
pub async fn page(server: &TestServer, path: &str, cookie: &str) -> (u16, String) {
    let response = crate::people::no_redirects()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Publishes `policy` through the store and waits until the server uses it.
pub async fn publish(server: &TestServer, policy: &callboard::permissions::Policy) {
    let stores = &server.running.state.stores;
    let draft = stores
        .policies
        .save_draft(&serde_json::to_string(policy).unwrap(), "test", 1)
        .await
        .unwrap();
    assert!(stores.policies.publish(draft, "test", 2).await.unwrap());
    let access = server.running.state.access.clone();
    eventually(15, "the server to use the published policy", || {
        let access = access.clone();
        async move { (access.version() == draft).then_some(()) }
    })
    .await;
}

/// The default policy plus `permission` for the owners of an entity.
pub fn owners_may(permission: &str) -> callboard::permissions::Policy {
    use callboard::permissions::{Criteria, Effect, Policy, Role, Rule};
    let mut policy = Policy::default_policy(&[]);
    policy.roles.push(Role {
        name: "role:default/owners-may".into(),
        description: format!("owners hold {permission} on their own entities"),
        members: vec!["*".into()],
        rules: vec![Rule {
            permission: permission.into(),
            action: None,
            effect: Effect::Allow,
            conditions: Some(Criteria::Rule {
                rule: "IS_ENTITY_OWNER".into(),
                resource_type: "catalog-entity".into(),
                params: serde_json::json!({"claims": ["$ownerRefs"]}),
            }),
        }],
    });
    policy
}

/// Posts the form `fields` of plugin `plugin`'s action `action` to the
/// portal as a browser would (same origin, the session's cookie): (status, page).
pub async fn press(
    server: &TestServer,
    plugin: &str,
    action: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let response = crate::people::no_redirects()
        .post(server.url(&format!("/plugins/{plugin}/-/actions/{action}")))
        .header("cookie", cookie)
        .header("origin", server.running.url())
        .form(fields)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
