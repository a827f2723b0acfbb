//! `cargo xtask`: Callboard's automation, in Rust so it needs nothing beyond
//! cargo and rustup (matklad's xtask pattern).

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, bail};
use callboard_plugin_contract::{
    manifest::{self, Manifest},
    signing::VendorKey,
};
use clap::{Parser, Subcommand};

/// Build, demo, test and benchmark Callboard.
#[derive(Debug, Parser)]
struct Xtask {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build every example plugin and test fixture for wasm32-wasip2 and pack
    /// them into plugin files (prints the folder they are in).
    BuildPlugins,
    /// Build everything and serve the portal with the demo catalog and the
    /// example plugins on http://127.0.0.1:7007.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7007")]
        bind: String,
    },
    /// The full test suite: fmt check, clippy with -D warnings, all tests.
    Test {
        /// Extra arguments for the test binaries (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run a benchmark: `runtime` (instance + handle), `http` (plugin route vs
    /// native route), `catalog` (catalog at 10k/100k entities), `web` (page
    /// server time), `swap` (plugin hot update), `events` (event delivery
    /// and the latency publishing adds), `peer` (Callboard beside Backstage's
    /// own catalog backend, installed from the npm registry; needs node, npm
    /// and wrk), `permissions` (catalog reads by a user restricted to what
    /// their groups own beside an administrator's), `telemetry` (a catalog
    /// lookup and a plugin call with metrics and traces off and on), `search`
    /// (queries over 100k entities + 50k docs sections, change to findable),
    /// `docs` (building a 5,000-page site, rebuilding one changed page),
    /// `devloop` (`callboard plugin dev`: a saved file to the new version
    /// answering).
    Bench {
        /// Which benchmark.
        #[arg(value_parser = ["runtime", "http", "catalog", "web", "swap", "events", "peer", "permissions", "telemetry", "search", "docs", "devloop"])]
        name: String,
        /// Extra arguments for the benchmark.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build a fuzz target (tests/fuzz) with coverage instrumentation and run
    /// it on a copy of its seed corpus; `--list` names the targets.
    Fuzz {
        /// Which target.
        #[arg(required_unless_present = "list")]
        target: Option<String>,
        /// How long to fuzz.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// List the targets and exit.
        #[arg(long)]
        list: bool,
        /// Extra arguments for libFuzzer (e.g. `-max_len=65536`, or a crash
        /// file to replay).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Xtask::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(xtask: Xtask) -> anyhow::Result<()> {
    let root = root();
    std::env::set_current_dir(&root)?;
    match xtask.command {
        Task::BuildPlugins => {
            let dir = build_plugins(&root)?;
            println!("{}", dir.display());
        }
        Task::Demo { bind } => {
            let plugins = build_plugins(&root)?;
            let data = root.join("data");
            let installed = data.join("plugins");
            std::fs::create_dir_all(&installed)?;
            for plugin in example_plugins(&root)? {
                let file = format!("{}.wasm", plugin.manifest.id);
                copy_atomically(&plugins.join(&file), &installed.join(&file))?;
            }
            // The demo's licences for commercial plugins (see demo/vendor/README.md).
            let licenses = data.join("licenses");
            std::fs::create_dir_all(&licenses)?;
            for entry in std::fs::read_dir(root.join("demo/licenses"))? {
                let from = entry?.path();
                if let Some(name) = from
                    .file_name()
                    .filter(|_| from.extension() == Some(OsStr::new("license")))
                {
                    std::fs::copy(&from, licenses.join(name))
                        .with_context(|| format!("copying {}", from.display()))?;
                }
            }
            let _ci = demo_ci_api()?;
            let _clusters = demo_kube_clusters()?;
            step("serving the demo portal (Ctrl-C stops it)");
            cargo(["run", "--release", "--quiet", "-p", "callboard", "--"])
                .args(["--config", "demo/callboard.toml", "--data-dir"])
                .arg(&data)
                .args(["serve", "--bind", &bind])
                .status_ok()?;
        }
        Task::Test { args } => {
            step("cargo fmt --check");
            cargo(["fmt", "--all", "--check"]).status_ok()?;
            step("cargo clippy -D warnings");
            // Crates pinned to an older plugin API are linted apart, so that
            // the SDK is linted as every other plugin builds it.
            let pinned: Vec<String> = plugin_crates(&root)?
                .into_iter()
                .filter(PluginCrate::pins_older_api)
                .map(|c| c.package)
                .collect();
            let mut clippy = cargo(["clippy", "--workspace", "--all-targets", "--release"]);
            for p in &pinned {
                clippy.args(["--exclude", p]);
            }
            clippy.args(["--", "-D", "warnings"]).status_ok()?;
            for p in &pinned {
                cargo([
                    "clippy",
                    "--all-targets",
                    "--release",
                    "-p",
                    p,
                    "--",
                    "-D",
                    "warnings",
                ])
                .status_ok()?;
            }
            let plugins = build_plugins(&root)?;
            let bin = callboard_bin()?;
            step("cargo test");
            // The workspace's default members: plugins are tested through the
            // host, and through the plugin harness (host/plugin-harness, whose
            // tests load the same packed plugins), in this one release build.
            let mut test = cargo(["test", "--release", "--"]);
            test.args(&args)
                .env("CALLBOARD_TEST_PLUGINS", &plugins)
                .env("CALLBOARD_BIN", &bin);
            let (mut passed, mut failed) = run_tests(&mut test)?;
            // The fuzz targets' seed corpora, replayed as regression tests
            // (the crate is not a default member: it links libFuzzer).
            step("cargo test -p callboard-fuzz (seed corpora)");
            let mut fuzz = cargo(["test", "--release", "-p", "callboard-fuzz", "--"]);
            fuzz.args(&args);
            let (fuzz_passed, fuzz_failed) = run_tests(&mut fuzz)?;
            passed += fuzz_passed;
            failed += fuzz_failed;
            // The example plugins' own logic, natively (the SDK exports only
            // in wasm builds; through the host they are tested above).
            step(
                "cargo test -p assistant -p cost -p insights -p kubernetes (plugin logic, natively)",
            );
            let mut own = cargo([
                "test",
                "--release",
                "-p",
                "assistant",
                "-p",
                "cost",
                "-p",
                "insights",
                "-p",
                "kubernetes",
                "--",
            ]);
            own.args(&args);
            let (own_passed, own_failed) = run_tests(&mut own)?;
            passed += own_passed;
            failed += own_failed;
            // One closing line for the whole suite (cargo prints one per binary).
            println!("\ntests: {passed} passed, {failed} failed");
            if failed > 0 {
                bail!("{failed} tests failed");
            }
        }
        Task::Bench { name, args } => {
            let plugins = build_plugins(&root)?;
            let bin = callboard_bin()?;
            step(&format!("benchmark {name}"));
            // Backtraces on every trap would distort the figures.
            cargo(["bench", "-p", "callboard-tests", "--bench", &name, "--"])
                .args(&args)
                .env("CALLBOARD_TEST_PLUGINS", &plugins)
                // Benchmarks that run the server as a process.
                .env("CALLBOARD_BIN", bin)
                .env_remove("RUST_BACKTRACE")
                .status_ok()?;
        }
        Task::Fuzz {
            target,
            seconds,
            list,
            args,
        } => {
            let targets = fuzz_targets()?;
            match target {
                Some(name) if !list => {
                    let target = targets
                        .iter()
                        .find(|t| t.name == name)
                        .with_context(|| format!("no fuzz target {name:?}; see --list"))?;
                    fuzz(&root, target, seconds, &args)?;
                }
                _ => {
                    for t in &targets {
                        let note = if t.host {
                            " (needs the host crate)"
                        } else {
                            ""
                        };
                        println!("{}{note}", t.name);
                    }
                }
            }
        }
    }
    Ok(())
}

/// One `[[bin]]` of tests/fuzz.
struct FuzzTarget {
    name: String,
    /// Needs the `host` feature (and so an instrumented wasmtime).
    host: bool,
}

const FUZZ_PACKAGE: &str = "callboard-fuzz";

fn fuzz_targets() -> anyhow::Result<Vec<FuzzTarget>> {
    let output = cargo(["metadata", "--format-version", "1", "--no-deps"]).output()?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == FUZZ_PACKAGE))
        .with_context(|| format!("no {FUZZ_PACKAGE} package in the workspace"))?;
    let mut targets: Vec<FuzzTarget> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| {
            Some(FuzzTarget {
                name: t["name"].as_str()?.to_owned(),
                host: t["required-features"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "host")),
            })
        })
        .collect();
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(targets)
}

/// Coverage instrumentation for libFuzzer, as cargo-fuzz passes it (all
/// stable flags; no sanitizer, which would need nightly).
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Builds and runs one fuzz target for `seconds`; fails if it finds a crash.
fn fuzz(root: &Path, target: &FuzzTarget, seconds: u64, args: &[String]) -> anyhow::Result<()> {
    // Instrumented artifacts live apart: they must never mix with normal ones.
    let dir = target_dir()?.join("fuzz");
    let triple = host_triple()?;
    step(&format!(
        "building fuzz target {} (instrumented)",
        target.name
    ));
    let mut build = cargo(["build", "--release", "-p", FUZZ_PACKAGE, "--bin"]);
    build.arg(&target.name).args(["--target", &triple]);
    if !target.host {
        // The catalog targets do not need wasmtime.
        build.arg("--no-default-features");
    }
    // `--target` keeps the flags off build scripts and proc macros, which
    // cannot link the coverage hooks; only this command sees them.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"] {
        build.env_remove(var);
    }
    build
        .env("CARGO_TARGET_DIR", &dir)
        .env(
            "RUSTFLAGS",
            FUZZ_RUSTFLAGS
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
        .status_ok()?;
    let bin = dir.join(&triple).join("release").join(format!(
        "{}{}",
        target.name,
        std::env::consts::EXE_SUFFIX
    ));

    // The working corpus grows run after run; the seeds are copied in each time.
    let corpus = dir.join("corpus").join(&target.name);
    std::fs::create_dir_all(&corpus)?;
    let seeds = root.join("tests/fuzz/corpus").join(&target.name);
    if let Ok(entries) = std::fs::read_dir(&seeds) {
        for entry in entries {
            let from = entry?.path();
            if let Some(name) = from.file_name().filter(|_| from.is_file()) {
                std::fs::copy(&from, corpus.join(name))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
    }
    let artifacts = dir.join("artifacts").join(&target.name);
    std::fs::create_dir_all(&artifacts)?;
    // Given input files, libFuzzer runs just those (replaying a crash).
    let replay = args.iter().any(|a| Path::new(a).is_file());
    step(&if replay {
        format!("replaying inputs on {}", target.name)
    } else {
        format!("fuzzing {} for {seconds} s", target.name)
    });
    let mut run = Command::new(&bin);
    run.arg(format!("-max_total_time={seconds}"))
        // A single input taking this long is reported as a hang.
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(args);
    if !replay {
        run.arg(&corpus);
    }
    let status = run
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))
        .and_then(|child| fuzz_report(child, &corpus))?;
    if !status.success() {
        bail!(
            "{} found a crash ({status}); the input is in {} (replay it with \
             `cargo xtask fuzz {} -- <file>`)",
            target.name,
            artifacts.display(),
            target.name
        );
    }
    Ok(())
}

/// Echoes libFuzzer's output and sums up the run.
fn fuzz_report(
    mut child: std::process::Child,
    corpus: &Path,
) -> anyhow::Result<std::process::ExitStatus> {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().context("fuzzer stderr")?;
    let (mut execs, mut rate, mut crash) = (None, None, None);
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line?;
        eprintln!("{line}");
        let stat = |key: &str| line.strip_prefix(key).map(|v| v.trim().to_owned());
        execs = execs.or(stat("stat::number_of_executed_units:"));
        rate = rate.or(stat("stat::average_exec_per_sec:"));
        if let Some((_, file)) = line.split_once("Test unit written to ") {
            crash = Some(file.trim().to_owned());
        }
    }
    let status = child.wait()?;
    let inputs = std::fs::read_dir(corpus)?.count();
    println!(
        "fuzz: {} executions, {} exec/s, corpus {inputs} inputs, {}",
        execs.as_deref().unwrap_or("?"),
        rate.as_deref().unwrap_or("?"),
        match &crash {
            Some(file) => format!("crash input: {file}"),
            None if status.success() => "no crash".to_owned(),
            None => format!("exited with {status}"),
        }
    );
    Ok(status)
}

fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).arg("-vV").output()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host triple")
}

/// The demo's CI API (`demo/ci-server`), as `demo/callboard.toml`'s
/// `[plugins.settings.ci]` expects it.
const DEMO_CI_BIND: &str = "127.0.0.1:7008";
const DEMO_CI_TOKEN: &str = "demo-ci-token";

/// A child process, killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds and starts the demo CI API; it stops when the guard is dropped.
fn demo_ci_api() -> anyhow::Result<KillOnDrop> {
    step(&format!(
        "starting the demo CI API on http://{DEMO_CI_BIND}"
    ));
    demo_server(
        "callboard-demo-ci",
        &["--bind", DEMO_CI_BIND, "--token", DEMO_CI_TOKEN],
        DEMO_CI_BIND,
    )
}

/// The demo's Kubernetes clusters (`demo/kube-apiserver`), as
/// `demo/callboard.toml`'s `[plugins.settings.kubernetes]` expects them:
/// prod-eu wants a token (bound to the plugin in
/// `[plugins.credentials.kubernetes]`), staging none.
const DEMO_KUBE: &[(&str, &str, Option<&str>)] = &[
    ("prod-eu", "127.0.0.1:7010", Some("demo-kube-token")),
    ("staging", "127.0.0.1:7011", None),
];

/// Builds and starts the demo Kubernetes API servers.
fn demo_kube_clusters() -> anyhow::Result<Vec<KillOnDrop>> {
    DEMO_KUBE
        .iter()
        .map(|(cluster, bind, token)| {
            step(&format!(
                "starting the demo Kubernetes cluster {cluster} on http://{bind}"
            ));
            let mut args = vec!["--cluster", cluster, "--bind", bind];
            if let Some(token) = token {
                args.extend(["--token", token]);
            }
            demo_server("callboard-demo-kube", &args, bind)
        })
        .collect()
}

/// Builds and starts one of the demo's loopback servers (`package`'s
/// binary of the same name); it stops when the guard is dropped.
fn demo_server(package: &str, args: &[&str], bind: &str) -> anyhow::Result<KillOnDrop> {
    if std::net::TcpStream::connect(bind).is_ok() {
        bail!("{bind} is in use (a {package} left running?); stop it first");
    }
    cargo(["build", "--release", "--quiet", "-p", package]).status_ok()?;
    let bin = target_dir()?
        .join("release")
        .join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    let mut child = KillOnDrop(
        Command::new(&bin)
            .args(args)
            .spawn()
            .with_context(|| format!("running {}", bin.display()))?,
    );
    // Up within a few seconds, or say why not (usually: the port is taken).
    for _ in 0..50 {
        if let Some(status) = child.0.try_wait()? {
            bail!("{package} exited ({status}); is {bind} in use?");
        }
        if std::net::TcpStream::connect(bind).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("{package} is not listening on {bind} after 5 s")
}

struct PluginCrate {
    dir: PathBuf,
    package: String,
    manifest: Manifest,
}

impl PluginCrate {
    /// Whether the crate builds against an older plugin API than the SDK's
    /// own (it enables the SDK's `api-0-4` feature).
    fn pins_older_api(&self) -> bool {
        std::fs::read_to_string(self.dir.join("Cargo.toml"))
            .is_ok_and(|text| text.contains("\"api-0-4\""))
    }
}

/// Plugin crates: folders with a `plugin.toml`, under example-plugins/ and tests/fixtures/.
fn plugin_crates(root: &Path) -> anyhow::Result<Vec<PluginCrate>> {
    let mut out = Vec::new();
    for parent in ["example-plugins", "tests/fixtures"] {
        let Ok(entries) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        for entry in entries {
            let dir = entry?.path();
            let manifest = dir.join("plugin.toml");
            if !manifest.is_file() {
                continue;
            }
            let package = dir
                .file_name()
                .and_then(OsStr::to_str)
                .context("plugin folder name")?
                .to_owned();
            let text = std::fs::read_to_string(&manifest)?;
            let manifest =
                Manifest::from_toml(&text).with_context(|| format!("{}", manifest.display()))?;
            out.push(PluginCrate {
                dir,
                package,
                manifest,
            });
        }
    }
    out.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(out)
}

fn example_plugins(root: &Path) -> anyhow::Result<Vec<PluginCrate>> {
    let examples = root.join("example-plugins");
    Ok(plugin_crates(root)?
        .into_iter()
        .filter(|p| p.dir.starts_with(&examples))
        .collect())
}

/// Builds and packs every plugin crate; returns the folder of packed files.
fn build_plugins(root: &Path) -> anyhow::Result<PathBuf> {
    callboard_plugin_contract::cargo::ensure_wasm_target().map_err(anyhow::Error::msg)?;
    let crates = plugin_crates(root)?;
    step(&format!(
        "building {} plugins for wasm32-wasip2",
        crates.len()
    ));
    // A crate pinned to an older plugin API (the SDK's `api-0-4` feature)
    // builds on its own: in one build with the others, cargo would unify
    // the SDK's features and build every plugin against that API.
    let (pinned, current): (Vec<&PluginCrate>, Vec<&PluginCrate>) =
        crates.iter().partition(|c| c.pins_older_api());
    let mut groups: Vec<Vec<&PluginCrate>> = vec![current];
    groups.extend(pinned.into_iter().map(|c| vec![c]));
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let mut build = cargo(["build", "--profile", "plugin", "--target", "wasm32-wasip2"]);
        for c in group {
            build.args(["-p", &c.package]);
        }
        // The host's RUSTFLAGS (e.g. -C target-cpu=native) must not reach wasm.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
        ] {
            build.env_remove(var);
        }
        build.status_ok()?;
    }

    // Packed and signed with the plugin contract itself: no wasmtime (and
    // no host build) is needed to make plugin files.
    let target = target_dir()?;
    let out = target.join("callboard-plugins");
    std::fs::create_dir_all(&out)?;
    for c in &crates {
        let component = target
            .join("wasm32-wasip2/plugin")
            .join(format!("{}.wasm", c.package.replace('-', "_")));
        let bytes = std::fs::read(&component)
            .with_context(|| format!("cannot read {}", component.display()))?;
        let (_, mut packed) = manifest::pack(&bytes, &c.manifest)
            .with_context(|| format!("packing {}", component.display()))?;
        // Plugins of the demo's made-up vendors are signed with their DEMO
        // keys (demo/vendor/README.md), as a vendor ships them.
        let key = c
            .manifest
            .vendor
            .as_ref()
            .map(|v| root.join("demo/vendor").join(format!("{v}.key")))
            .filter(|k| k.is_file());
        if let Some(key) = key {
            packed = VendorKey::read(&key)?
                .sign_plugin(&packed)
                .with_context(|| format!("signing {}", c.package))?;
        }
        let file = out.join(format!("{}.wasm", c.manifest.id));
        callboard_plugin_contract::write_atomically(&file, &packed)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(out)
}

/// Runs `cargo test`, echoing its output, and totals its `test result:` lines.
fn run_tests(test: &mut Command) -> anyhow::Result<(u64, u64)> {
    use std::io::BufRead as _;
    let mut child = test
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    for line in std::io::BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                result
                    .split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed))
}

/// Builds the release `callboard` binary, which tests and benchmarks run
/// as a process, and returns its path. Always built here: `cargo test`
/// builds only test harnesses, so a binary left in the target folder (a
/// shared cache) could be an older one.
fn callboard_bin() -> anyhow::Result<PathBuf> {
    step("cargo build --release -p callboard");
    cargo(["build", "--release", "-p", "callboard"]).status_ok()?;
    Ok(target_dir()?
        .join("release")
        .join(format!("callboard{}", std::env::consts::EXE_SUFFIX)))
}

fn target_dir() -> anyhow::Result<PathBuf> {
    let output = cargo(["metadata", "--format-version", "1", "--no-deps"]).output()?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata: no target_directory")?;
    Ok(PathBuf::from(dir))
}

fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<()> {
    let tmp = to.with_extension("wasm.part");
    std::fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}

fn root() -> PathBuf {
    // `cargo run` sets it at run time too; prefer that, so a binary built from
    // another clone sharing the target directory still works on this one.
    let xtask = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    xtask
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn cargo<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args);
    cmd
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

trait StatusOk {
    fn status_ok(&mut self) -> anyhow::Result<()>;
}

impl StatusOk for Command {
    fn status_ok(&mut self) -> anyhow::Result<()> {
        let status = self.status().with_context(|| format!("running {self:?}"))?;
        if !status.success() {
            bail!("{self:?} failed ({status})");
        }
        Ok(())
    }
}
