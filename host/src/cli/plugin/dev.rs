//! `callboard plugin dev [DIR]`: the author's loop. Serves a local portal
//! (its own data folder under the project's `target/`), builds the project
//! for `wasm32-wasip2`, packs it with its `plugin.toml` and installs it
//! through the plugins folder (the portal swaps it in without dropping a
//! request); then watches the project and does it again on every save,
//! printing the compiler's errors (the running version keeps serving) and
//! the plugin's own log lines, and how long the change took to answer.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{config::Config, plugins::manifest::Manifest};

/// What `plugin dev` logs when `RUST_LOG` does not say: the plugin's own
/// lines (target `plugin`), the runtime's plugin events, warnings.
pub const LOG_FILTER: &str =
    "warn,plugin=trace,callboard::plugins=info,wasmtime_cranelift=warn,cranelift=warn";

/// `callboard plugin dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// The plugin project (a folder with Cargo.toml and plugin.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where the local portal listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:7007")]
    pub bind: SocketAddr,
    /// Build with the release profile (slower to build, faster to run).
    #[arg(long)]
    pub release: bool,
}

/// The project being developed.
struct Project {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
}

impl Project {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("{} does not exist", dir.display()))?;
        if !dir.join("Cargo.toml").is_file() {
            anyhow::bail!(
                "{} holds no Cargo.toml; `callboard plugin new NAME` writes a project",
                dir.display()
            );
        }
        let manifest_path = dir.join("plugin.toml");
        let manifest = read_manifest(&manifest_path)?;
        Ok(Self {
            dir,
            manifest_path,
            manifest,
        })
    }
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Manifest::from_toml(&text).with_context(|| format!("{}", path.display()))
}

/// Runs the loop until Ctrl-C.
pub fn run(args: &DevArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let project = Project::read(&args.dir)?;
    crate::plugins::cargo::ensure_wasm_target().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(project, args, config.clone()))
}

async fn serve(project: Project, args: &DevArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    let id = project.manifest.id.clone();
    config.data_dir = project.dir.join("target").join("callboard-dev");
    config.bind = args.bind;
    config.plugins.dir = None;
    config.plugins.watch = true;
    // A local portal for one author: anyone on this machine reads, and the
    // plugin gets what its manifest asks for.
    config.auth.anonymous = crate::identity::config::Anonymous::Read;
    config
        .grants
        .plugins
        .insert(id.clone(), project.manifest.capabilities.clone());
    let plugins_dir = config.plugins_dir();
    let running = crate::server::start(config)
        .await
        .context("cannot start the local portal")?;
    let url = running.url();
    println!("local portal on {url} (data in target/callboard-dev; Ctrl-C to stop)");
    println!(
        "plugin routes: {url}/api/plugins/{id}/...   pages and views: {url}/plugins, {url}/catalog"
    );

    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let _watch = watch(&project.dir, tx)?;
    let mut since = Instant::now();
    let mut built = stamp(&project.dir);
    loop {
        round(&project, &plugins_dir, &running, args.release, since).await;
        // Until a watched file really changed (an editor's save may report
        // several events, or none that matter).
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    running.shutdown().await?;
                    return Ok(ExitCode::SUCCESS);
                }
                changed = changes.recv() => {
                    if changed.is_none() {
                        running.shutdown().await?;
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            since = Instant::now();
            // A save often touches several files: take them all.
            tokio::time::sleep(Duration::from_millis(30)).await;
            while changes.try_recv().is_ok() {}
            let now = stamp(&project.dir);
            if now != built {
                built = now;
                break;
            }
        }
    }
}

/// Length and modification time of every watched file: what decides that
/// the project changed (reading files, as a build does, changes nothing).
fn stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.join("src")];
    for file in ["Cargo.toml", "plugin.toml"] {
        let path = dir.join(file);
        if let Ok(meta) = path.metadata() {
            out.push((path, meta.len(), meta.modified().ok()));
        }
    }
    while let Some(folder) = pending.pop() {
        let Ok(entries) = folder.read_dir() else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                out.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
        if out.len() > 10_000 {
            break;
        }
    }
    out.sort();
    out
}

/// One build, pack and install, reported.
async fn round(
    project: &Project,
    plugins_dir: &Path,
    running: &crate::server::Running,
    release: bool,
    since: Instant,
) {
    let manifest = match read_manifest(&project.manifest_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e:#}");
            return;
        }
    };
    let build = {
        let dir = project.dir.clone();
        tokio::task::spawn_blocking(move || build(&dir, release)).await
    };
    let component = match build {
        Ok(Ok(path)) => path,
        Ok(Err(e)) => {
            eprintln!("build failed: {e:#}; the running version keeps serving");
            return;
        }
        Err(e) => {
            eprintln!("build failed: {e}");
            return;
        }
    };
    let built = since.elapsed();
    let packed = match pack(&component, &manifest) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("cannot pack {}: {e:#}", component.display());
            return;
        }
    };
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&packed));
    let target = plugins_dir.join(format!("{}.wasm", manifest.id));
    let written = std::time::SystemTime::now();
    if let Err(e) = crate::plugins::write_atomically(&target, &packed) {
        eprintln!("cannot install into {}: {e:#}", target.display());
        return;
    }
    // The portal's folder watch swaps it in; wait for this exact file to
    // answer, or for the portal to say why it refused it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(info) = running.state.plugins.get(&manifest.id)
            && info.sha256 == sha256
        {
            println!(
                "{}@{} answering {:.1} s after the change (build {:.1} s, install {:.1} s)",
                info.id,
                info.version,
                since.elapsed().as_secs_f64(),
                built.as_secs_f64(),
                (since.elapsed() - built).as_secs_f64()
            );
            return;
        }
        if let Some(failure) = running
            .state
            .plugins
            .failures()
            .into_iter()
            .find(|f| f.file == target && f.at >= written)
        {
            eprintln!("the portal refused the new build: {}", failure.error);
            return;
        }
        if Instant::now() > deadline {
            eprintln!("the new build did not start answering within 60 s; see the log above");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `cargo build --target wasm32-wasip2` in `dir`; the component's path.
/// The compiler's messages go to the terminal as cargo renders them.
fn build(dir: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(dir)
        .args([
            "build",
            "--lib",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if release {
        cargo.arg("--release");
    }
    let output = cargo.output().context("cannot run cargo")?;
    let component = callboard_plugin_contract::cargo::built_component(&output.stdout, None);
    anyhow::ensure!(output.status.success(), "cargo build failed (see above)");
    component.context("cargo built no .wasm component: is the crate-type cdylib?")
}

/// The component with the manifest embedded (the API version read from it).
fn pack(component: &Path, manifest: &Manifest) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let (_, packed) = crate::plugins::manifest::pack(&bytes, manifest)
        .with_context(|| format!("{}", component.display()))?;
    Ok(packed)
}

/// Sends a message whenever something is written, created or removed
/// under `src/`, or `Cargo.toml` or `plugin.toml` changes (a build's reads
/// are not changes).
fn watch(
    dir: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, Watcher as _, event::ModifyKind};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let written = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_)
        ) && !matches!(event.kind, EventKind::Modify(ModifyKind::Metadata(_)));
        if written {
            let _ = tx.send(());
        }
    })?;
    // The folder itself, so an editor's save by rename is seen too.
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    let src = dir.join("src");
    if src.exists() {
        watcher
            .watch(&src, notify::RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", src.display()))?;
    }
    Ok(watcher)
}
