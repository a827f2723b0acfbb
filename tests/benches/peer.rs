//! Callboard beside Backstage's own catalog backend, on this machine, in one
//! run: the same synthetic catalog files (`shared/catalog_gen.rs`, 10,000
//! entities by default), the same HTTP queries, `wrk -t2 -c8` against each
//! server in turn.
//!
//! Backstage is `@backstage/backend-defaults` with only
//! `@backstage/plugin-catalog-backend` (the new backend system) on in-memory
//! SQLite (`better-sqlite3`), installed from the npm registry at the exact
//! versions `tests/peer/package.json` pins (into
//! `~/.cache/callboard/peer/<hash of package.json and its lock>`, reused
//! when present). Callboard is the release `callboard serve` binary
//! (`CALLBOARD_BIN`, or built here with `cargo build --release`) with its
//! SQLite files in a temporary data dir.
//!
//! For each server: the time from process start until every entity is
//! queryable (its `by-query` `totalItems` reaches the generated total plus
//! the configured Location entity), req/s and p50 of each query under wrk,
//! peak RSS (`VmHWM`) after the queries, and the p50 of 10
//! `POST /api/catalog/refresh` of one component.
//!
//! `cargo xtask bench peer` (= `cargo bench -p callboard-tests --bench peer`),
//! `-- SIZE` for another catalog size, `-- postgres` (or `-- sqlite postgres`)
//! to run Callboard on a private PostgreSQL cluster as the tests do (its
//! server's memory is not in Callboard's RSS). `CALLBOARD_PEER_SECS` sets wrk's
//! duration per query (default 10), `CALLBOARD_PEER_TIMEOUT_SECS` how long
//! Backstage may take to ingest (default 3600). Needs `node` (20 or later),
//! `npm` and `wrk` on the PATH. Prints a Markdown table on stdout; progress on
//! stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "shared/rng.rs"]
mod rng;

#[path = "shared/catalog_gen.rs"]
mod catalog_gen;
use catalog_gen::{counts, generate};

/// The package files of the Backstage side, in the repository.
fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peer")
}

/// Runs `program args` and returns its trimmed stdout, or None if it
/// cannot run or fails.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// FNV-1a, 64 bits: names the install folder after the package files.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Installs the pinned Backstage packages (once per version of the package
/// files) and copies the entry script and its config beside them. Returns
/// the folder to run `node index.js` in.
fn install_backstage() -> PathBuf {
    let src = peer_dir();
    let mut manifest = std::fs::read(src.join("package.json")).unwrap();
    let lock = std::fs::read(src.join("package-lock.json")).ok();
    if let Some(lock) = &lock {
        manifest.extend_from_slice(lock);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = home
        .join(".cache/callboard/peer")
        .join(format!("{:016x}", fnv1a(&manifest)));
    let done = dir.join(".installed");
    if done.is_file() {
        eprintln!(
            "peer: Backstage packages already installed in {}",
            dir.display()
        );
    } else {
        eprintln!(
            "peer: installing Backstage's catalog backend from the npm registry into {} (a few minutes; better-sqlite3 compiles)",
            dir.display()
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(src.join("package.json"), dir.join("package.json")).unwrap();
        if lock.is_some() {
            std::fs::copy(src.join("package-lock.json"), dir.join("package-lock.json")).unwrap();
        }
        // better-sqlite3 builds from source when no prebuilt binary can be
        // fetched; the headers of the running Node are enough for that.
        let node = output_of("node", &["-p", "process.execPath"]).unwrap();
        let prefix = Path::new(&node).parent().and_then(Path::parent).unwrap();
        let mut npm = Command::new("npm");
        npm.arg(if lock.is_some() { "ci" } else { "install" })
            .args(["--no-audit", "--no-fund", "--loglevel=warn"])
            .arg(format!("--nodedir={}", prefix.display()))
            .env("NEXT_TELEMETRY_DISABLED", "1")
            .current_dir(&dir)
            .stdout(Stdio::from(std::io::stderr()))
            .stderr(Stdio::inherit());
        eprintln!("peer: {npm:?}");
        let started = Instant::now();
        let status = npm.status().expect("cannot run npm");
        assert!(
            status.success(),
            "npm failed ({status}) in {}",
            dir.display()
        );
        eprintln!(
            "peer: npm finished in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        std::fs::write(&done, "").unwrap();
    }
    for file in ["index.js", "app-config.yaml"] {
        std::fs::copy(src.join(file), dir.join(file)).unwrap();
    }
    dir
}

/// The release `callboard` binary: `CALLBOARD_BIN`, else built now into the
/// target folder this bench runs from.
fn callboard_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CALLBOARD_BIN") {
        return bin.into();
    }
    // This bench is <target>/release/deps/peer-<hash>.
    let exe = std::env::current_exe().unwrap();
    let release = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let target = release.parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("peer: cargo build --release -p callboard --bin callboard");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "callboard",
            "--bin",
            "callboard",
        ])
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building callboard failed ({status})");
    release.join("callboard")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped (also on panic).
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
    base: String,
    started: Instant,
    /// Callboard's data dir (its admin token is there).
    data: Option<PathBuf>,
}

impl Server {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf, port: u16) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let started = Instant::now();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} ({command:?})"));
        Self {
            name,
            child,
            log,
            base: format!("http://127.0.0.1:{port}/api/catalog"),
            started,
            data: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the end of its log if the process has exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "{} exited ({status}); log {}:\n{tail}",
                self.name,
                self.log.display()
            );
        }
    }

    /// A `/proc/<pid>/status` field in kB, as MB: `VmHWM` (peak resident
    /// set), `RssAnon` and `RssFile` (now).
    fn status_mb(&self, field: &str) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `totalItems` of `by-query?limit=1`, or None while the server does not
/// answer yet.
async fn entity_count(client: &reqwest::Client, base: &str) -> Option<u64> {
    let response = client
        .get(format!("{base}/entities/by-query?limit=1"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["totalItems"].as_u64()
}

/// How long from the process start until every entity is queryable.
struct Ingestion {
    until_listening: Duration,
    until_queryable: Duration,
}

/// Polls the entity count (every 50 ms for the first 10 s, every 500 ms
/// after: the same rule for both servers) until it reaches `want`.
async fn wait_ingested(
    server: &mut Server,
    client: &reqwest::Client,
    want: u64,
    timeout: Duration,
) -> Ingestion {
    let mut listening = None;
    let mut last_report = Instant::now();
    loop {
        server.check_alive();
        let count = entity_count(client, &server.base).await;
        let elapsed = server.started.elapsed();
        if count.is_some() && listening.is_none() {
            listening = Some(elapsed);
            eprintln!(
                "peer: {} answers after {:.1} s",
                server.name,
                elapsed.as_secs_f64()
            );
        }
        let count = count.unwrap_or(0);
        if count >= want {
            assert_eq!(
                count, want,
                "{} holds more entities than generated",
                server.name
            );
            return Ingestion {
                until_listening: listening.unwrap_or(elapsed),
                until_queryable: elapsed,
            };
        }
        assert!(
            elapsed < timeout,
            "{}: only {count} of {want} entities after {:.0} s",
            server.name,
            elapsed.as_secs_f64()
        );
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "peer: {} ingesting: {count} of {want} after {:.0} s ({:.0} /s)",
                server.name,
                elapsed.as_secs_f64(),
                count as f64 / elapsed.as_secs_f64()
            );
        }
        let pause = if elapsed < Duration::from_secs(10) {
            50
        } else {
            500
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// What wrk measured for one query on one server.
#[derive(Clone, Default)]
struct Load {
    rps: f64,
    p50: Duration,
    requests: u64,
    non_2xx: u64,
    errors: u64,
    /// The answer checked before timing was not a 200 with results.
    empty_answer: Option<String>,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    Some(Duration::from_secs_f64(value * scale))
}

fn parse_wrk(out: &str) -> Load {
    let mut load = Load::default();
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            load.p50 = parse_duration(v).unwrap_or_default();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            load.errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            load.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    load
}

fn wrk(url: &str, script: Option<&Path>, secs: u64) -> Load {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        "-c8",
        &format!("-d{secs}s"),
        "--latency",
        "--timeout",
        "60s",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().expect("cannot run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk {url} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text)
}

/// One query of the comparison.
struct Query {
    what: &'static str,
    path: String,
    /// A wrk script that varies the path (by-name lookups).
    script: Option<String>,
    /// Whether the answer holds results.
    has_results: fn(&Value) -> bool,
}

fn non_empty_items(v: &Value) -> bool {
    v["items"].as_array().is_some_and(|a| !a.is_empty())
}

fn queries(users: usize) -> Vec<Query> {
    vec![
        Query {
            what: "by-name lookup `/entities/by-name/user/default/user-<i>` (cycling over the users)",
            path: "/entities/by-name/user/default/user-0".into(),
            script: Some(format!(
                "-- Cycles over the generated users, each thread from its own start.\n\
                 local users = {users}\n\
                 local threads = 0\n\
                 function setup(thread)\n  thread:set(\"start\", threads * 7919)\n  threads = threads + 1\nend\n\
                 local i = nil\n\
                 request = function()\n  i = ((i or start) + 1) % users\n  \
                 return wrk.format(\"GET\", \"/api/catalog/entities/by-name/user/default/user-\" .. i)\nend\n"
            )),
            has_results: |v| v["metadata"]["name"].is_string(),
        },
        Query {
            what: "filtered `/entities?filter=kind=component,spec.lifecycle=production&limit=100`",
            path: "/entities?filter=kind=component,spec.lifecycle=production&limit=100".into(),
            script: None,
            has_results: |v| v.as_array().is_some_and(|a| !a.is_empty()),
        },
        Query {
            what: "facets `/entity-facets?facet=spec.type&facet=metadata.tags`",
            path: "/entity-facets?facet=spec.type&facet=metadata.tags".into(),
            script: None,
            has_results: |v| {
                ["spec.type", "metadata.tags"]
                    .iter()
                    .all(|f| v["facets"][f].as_array().is_some_and(|a| !a.is_empty()))
            },
        },
        Query {
            what: "ordered `/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=100`",
            path: "/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=100"
                .into(),
            script: None,
            has_results: non_empty_items,
        },
        Query {
            what: "full text `/entities/by-query?fullTextFilterTerm=parcel&fullTextFilterFields=metadata.name&limit=100`",
            path: "/entities/by-query?fullTextFilterTerm=parcel&fullTextFilterFields=metadata.name&limit=100".into(),
            script: None,
            has_results: non_empty_items,
        },
        Query {
            what: "full text, no fields `/entities/by-query?fullTextFilterTerm=parcel&limit=100`",
            path: "/entities/by-query?fullTextFilterTerm=parcel&limit=100".into(),
            script: None,
            has_results: non_empty_items,
        },
    ]
}

/// GETs the query once and says what is wrong with the answer, if anything.
async fn check_answer(client: &reqwest::Client, base: &str, query: &Query) -> Option<String> {
    let response = match client.get(format!("{base}{}", query.path)).send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("request failed: {e}")),
    };
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        return Some(format!(
            "answers {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if (query.has_results)(&v) => None,
        Ok(v) => {
            eprintln!(
                "peer: {base}{}: {}",
                query.path,
                v.to_string().chars().take(200).collect::<String>()
            );
            Some(format!("answers {} with no results", status.as_u16()))
        }
        Err(e) => Some(format!("answers {status}, not JSON: {e}")),
    }
}

/// p50 of 10 `POST /refresh` of one entity (after one untimed).
async fn refresh_p50(
    client: &reqwest::Client,
    base: &str,
    entity_ref: &str,
    token: Option<&str>,
) -> Result<Duration, String> {
    let mut samples = Vec::new();
    for i in 0..11 {
        let mut request = client
            .post(format!("{base}/refresh"))
            .json(&serde_json::json!({ "entityRef": entity_ref }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let took = started.elapsed();
        if !status.is_success() {
            return Err(format!("answers {status}: {body}"));
        }
        if i > 0 {
            samples.push(took);
        }
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// The first component of the generated files (its name is random words).
fn a_component(files: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(files)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for file in names.iter().rev() {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in text.split("---\n") {
            if doc.contains("\nkind: Component\n") {
                let name = doc
                    .lines()
                    .find_map(|l| l.strip_prefix("  name: "))
                    .unwrap();
                return format!("component:default/{name}");
            }
        }
    }
    panic!("no component in {}", files.display());
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn load_cell(load: &Load) -> String {
    let mut cell = format!("{:.0} req/s, p50 {}", load.rps, ms(load.p50));
    if load.non_2xx > 0 || load.errors > 0 {
        let _ = write!(
            cell,
            " (**{} non-2xx, {} socket errors** of {})",
            load.non_2xx, load.errors, load.requests
        );
    }
    if let Some(why) = &load.empty_answer {
        let _ = write!(cell, " ({why})");
    }
    cell
}

/// The 1-minute load average: other work on the machine skews both sides.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

/// Starts Callboard on the generated files: SQLite files in the data dir,
/// or a database of the private PostgreSQL cluster the tests use.
fn start_callboard(bin: &Path, dir: &Path, glob: &str, backend: &str) -> Server {
    let port = free_port();
    let data = dir.join(format!("data-{backend}"));
    let config = dir.join(format!("callboard-{backend}.toml"));
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[catalog]\nrefresh_interval_secs = 3600\nlocations = [{{ type = \"file\", target = \"{glob}\" }}]\n",
            data.display()
        ),
    )
    .unwrap();
    let mut serve = Command::new(bin);
    serve.arg("--config").arg(&config);
    if backend == "postgres" {
        let url = callboard_store::testing::postgres::shared().create_database();
        serve.arg("--database").arg(url);
    }
    serve
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .current_dir(dir);
    eprintln!("peer: starting Callboard ({backend}) on 127.0.0.1:{port}");
    let name = if backend == "postgres" {
        "Callboard (PostgreSQL)"
    } else {
        "Callboard (SQLite)"
    };
    let mut server = Server::spawn(
        name,
        serve,
        dir.join(format!("callboard-{backend}.log")),
        port,
    );
    server.data = Some(data);
    server
}

/// Everything measured on one server.
struct Figures {
    ingest: Ingestion,
    loads: Vec<Load>,
    rss_mb: f64,
    /// Resident now: anonymous memory, and file pages (mapped files, e.g.
    /// SQLite's memory-mapped database).
    rss_now: [f64; 2],
    refresh: Result<Duration, String>,
}

#[allow(clippy::too_many_lines)]
async fn run(n: usize, backends: &[String]) -> String {
    let secs = env_secs("CALLBOARD_PEER_SECS", 10);
    let backstage_timeout = Duration::from_secs(env_secs("CALLBOARD_PEER_TIMEOUT_SECS", 3600));
    let node_version = output_of("node", &["--version"]).expect(
        "`node` is not on the PATH: the peer benchmark runs Backstage on Node.js 20 or later",
    );
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "`wrk` is not on the PATH: install it (`apt-get install -y wrk`)"
    );
    let backstage_dir = install_backstage();
    let bin = callboard_bin();
    let callboard_version = output_of(bin.to_str().unwrap(), &["--version"]).unwrap_or_default();

    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CALLBOARD_BENCH_KEEP").is_some() {
        eprintln!("peer: keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    let files = dir.path().join("catalog");
    let total = generate(&files, n);
    let want = total as u64 + 1; // and the configured Location entity
    let entity_ref = a_component(&files);
    let glob = format!("{}/*.yaml", files.display());
    eprintln!("peer: generated {total} entities in {}", files.display());
    let client = reqwest::Client::new();

    // Backstage ingests with nothing else running; then each Callboard
    // likewise, while the servers already started idle.
    let port = free_port();
    let run_config = dir.path().join("backstage-run.yaml");
    std::fs::write(
        &run_config,
        format!(
            "app:\n  baseUrl: http://127.0.0.1:{port}\n\
             backend:\n  baseUrl: http://127.0.0.1:{port}\n  listen:\n    host: 127.0.0.1\n    port: {port}\n\
             catalog:\n  locations:\n    - type: file\n      target: '{glob}'\n"
        ),
    )
    .unwrap();
    let mut node = Command::new("node");
    node.arg("index.js")
        .args(["--config", "app-config.yaml", "--config"])
        .arg(&run_config)
        .env("NODE_ENV", "production")
        .env("LOG_LEVEL", "warn")
        .current_dir(&backstage_dir);
    eprintln!("peer: starting Backstage ({node_version}) on 127.0.0.1:{port}");
    let mut servers = vec![Server::spawn(
        "Backstage",
        node,
        dir.path().join("backstage.log"),
        port,
    )];
    let mut ingests = Vec::new();
    ingests.push(wait_ingested(&mut servers[0], &client, want, backstage_timeout).await);
    for backend in backends {
        let mut server = start_callboard(&bin, dir.path(), &glob, backend);
        ingests.push(wait_ingested(&mut server, &client, want, Duration::from_secs(600)).await);
        servers.push(server);
    }
    for (server, ingest) in servers.iter().zip(&ingests) {
        eprintln!(
            "peer: {} ingested {total} entities in {:.2} s",
            server.name,
            ingest.until_queryable.as_secs_f64()
        );
    }

    // The queries, each on every server, rotating which goes first.
    let queries = queries(counts(n).users);
    let mut loads: Vec<Vec<Load>> = vec![Vec::new(); servers.len()];
    let mut load_seen = vec![load_average()];
    for (i, query) in queries.iter().enumerate() {
        let script = query.script.as_ref().map(|s| {
            let path = dir.path().join(format!("query-{i}.lua"));
            std::fs::write(&path, s).unwrap();
            path
        });
        for k in 0..servers.len() {
            let side = (i + k) % servers.len();
            let server = &mut servers[side];
            server.check_alive();
            let problem = check_answer(&client, &server.base, query).await;
            if let Some(problem) = &problem {
                eprintln!("peer: {} {}: {problem}", server.name, query.path);
            }
            load_seen.push(load_average());
            let url = format!("{}{}", server.base, query.path);
            // A short warm-up (Node's JIT, caches), not counted.
            let _ = wrk(&url, script.as_deref(), 2);
            let mut load = wrk(&url, script.as_deref(), secs);
            load.empty_answer = problem;
            eprintln!(
                "peer: {:<22} {:>8.0} req/s, p50 {:>9}  {}",
                server.name,
                load.rps,
                ms(load.p50),
                query.path
            );
            loads[side].push(load);
        }
    }

    load_seen.push(load_average());
    let load_min = load_seen.iter().copied().fold(f64::INFINITY, f64::min);
    let load_max = load_seen.iter().copied().fold(0.0, f64::max);
    let mut figures = Vec::new();
    for ((server, ingest), loads) in servers.iter_mut().zip(ingests).zip(loads) {
        let rss_mb = server.status_mb("VmHWM");
        let rss_now = [server.status_mb("RssAnon"), server.status_mb("RssFile")];
        let token = server.data.as_ref().map(|data| {
            std::fs::read_to_string(data.join("admin-token"))
                .expect("Callboard wrote no admin-token in its data dir")
        });
        let refresh = refresh_p50(
            &client,
            &server.base,
            &entity_ref,
            token.as_deref().map(str::trim),
        )
        .await;
        server.check_alive();
        figures.push(Figures {
            ingest,
            loads,
            rss_mb,
            rss_now,
            refresh,
        });
    }
    drop(servers);

    let mut out = String::new();
    for (j, backend) in backends.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{n} generated entities ({want} with the configured Location), Callboard on {backend}; wrk -t2 -c8 -d{secs}s per query and server; load average (1 min) {load_min:.1}-{load_max:.1} during the queries on {} cores; Node {node_version}; {callboard_version}\n",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
        );
        out.push_str(&table(
            &queries,
            total,
            &entity_ref,
            &figures[0],
            &figures[j + 1],
        ));
    }
    out
}

fn table(queries: &[Query], total: usize, entity_ref: &str, b: &Figures, c: &Figures) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| measure | Backstage | Callboard | ratio | goal |");
    let _ = writeln!(t, "|---|---|---|---|---|");
    let rate = |i: &Ingestion| total as f64 / i.until_queryable.as_secs_f64();
    let ingest_ratio = rate(&c.ingest) / rate(&b.ingest);
    let ingest_cell = |i: &Ingestion| {
        format!(
            "{:.2} s, **{:.0} /s** (answering after {:.1} s)",
            i.until_queryable.as_secs_f64(),
            rate(i),
            i.until_listening.as_secs_f64()
        )
    };
    let _ = writeln!(
        t,
        "| ingestion from files, process start until all queryable | {} | {} | {ingest_ratio:.0}x | ≥ 100x: {} |",
        ingest_cell(&b.ingest),
        ingest_cell(&c.ingest),
        verdict(ingest_ratio >= 100.0)
    );
    for (query, (bl, cl)) in queries.iter().zip(b.loads.iter().zip(&c.loads)) {
        let comparable = bl.empty_answer.is_none() && cl.empty_answer.is_none();
        let ratio = cl.rps / bl.rps;
        let (ratio_cell, goal) = if comparable {
            (
                format!(
                    "{ratio:.1}x (p50 {:.1}x)",
                    bl.p50.as_secs_f64() / cl.p50.as_secs_f64()
                ),
                format!("≥ 10x: {}", verdict(ratio >= 10.0)),
            )
        } else {
            (
                format!("{ratio:.1}x, not comparable"),
                "not comparable: the answers differ".to_owned(),
            )
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {ratio_cell} | {goal} |",
            query.what,
            load_cell(bl),
            load_cell(cl)
        );
    }
    let mem_ratio = c.rss_mb / b.rss_mb;
    let _ = writeln!(
        t,
        "| server peak RSS (`VmHWM`, after everything above; resident then: anonymous + file pages) | {:.0} MB ({:.0} + {:.0}) | {:.0} MB ({:.0} + {:.0}) | {mem_ratio:.2} (1/{:.1}) | ≤ 1/4: {} |",
        b.rss_mb,
        b.rss_now[0],
        b.rss_now[1],
        c.rss_mb,
        c.rss_now[0],
        c.rss_now[1],
        1.0 / mem_ratio,
        verdict(mem_ratio <= 0.25)
    );
    let refresh_cell = |r: &Result<Duration, String>, what: &str| match r {
        Ok(d) => format!("p50 {} ({what})", ms(*d)),
        Err(e) => format!("failed: {e}"),
    };
    let refresh_goal = match &c.refresh {
        Ok(d) => format!(
            "in milliseconds (< 1 s): {}",
            verdict(*d < Duration::from_secs(1))
        ),
        Err(_) => "in milliseconds: **not met** (failed)".to_owned(),
    };
    let _ = writeln!(
        t,
        "| `POST /refresh` of `{entity_ref}`, 10 times | {} | {} | - | {refresh_goal} |",
        refresh_cell(
            &b.refresh,
            "only marks the entity for the processing loop, which re-reads it later"
        ),
        refresh_cell(
            &c.refresh,
            "reads the entity's own file again (a hash when unchanged) and commits before answering"
        ),
    );
    t
}

fn main() {
    // cargo passes `--bench`; a number is the catalog size, `sqlite` and
    // `postgres` pick Callboard's storage (default: sqlite).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(10_000);
    let mut backends: Vec<String> = args
        .iter()
        .filter(|a| *a == "sqlite" || *a == "postgres")
        .cloned()
        .collect();
    if backends.is_empty() {
        backends.push("sqlite".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = runtime.block_on(run(n, &backends));
    println!("{table}");
}
