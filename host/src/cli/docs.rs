//! `callboard docs`: for people writing TechDocs. `build` checks a site the
//! way the portal will render it; `serve` previews it locally and renders
//! again when a file changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;

/// `callboard docs ...`
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Render a site (a folder holding `mkdocs.yml`) as the portal does and
    /// list its problems with file and line. Exits 1 when it has problems,
    /// 2 when it cannot be read.
    Build {
        /// The site's folder.
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Preview a site on a local address, rendering again (only the pages
    /// that changed) when a file changes; reload the page to see it.
    Serve {
        /// The site's folder.
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8000")]
        bind: SocketAddr,
    },
}

/// Runs a `docs` subcommand.
pub async fn run(command: DocsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        DocsCommand::Build { dir, json } => build(&dir, config, json).await,
        DocsCommand::Serve { dir, bind } => serve(dir, config.clone(), bind).await,
    }
}

/// Reads and renders the site at `dir`, after `previous`.
fn render(
    dir: &Path,
    config: &Config,
    previous: Option<&callboard_docs::Manifest>,
) -> anyhow::Result<(callboard_docs::Files, callboard_docs::Build, Duration)> {
    let started = std::time::Instant::now();
    let files = callboard_docs::Files::from_dir(dir, config.docs.limits())
        .with_context(|| format!("cannot read the site in {}", dir.display()))?;
    if !files.contains("mkdocs.yml") && !files.contains("mkdocs.yaml") {
        anyhow::bail!("{} holds no mkdocs.yml", dir.display());
    }
    let build = callboard_docs::build(&files, previous);
    Ok((files, build, started.elapsed()))
}

fn problem_lines(build: &callboard_docs::Build) -> Vec<String> {
    build
        .problems
        .iter()
        .map(|p| {
            let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            format!("{}{at}: {}", p.file, p.message)
        })
        .collect()
}

async fn build(dir: &Path, config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let (dir2, config2) = (dir.to_owned(), config.clone());
    let rendered = tokio::task::spawn_blocking(move || render(&dir2, &config2, None)).await?;
    let (_, build, took) = match rendered {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "site": build.site.name,
                "pages": build.manifest.pages.len(),
                "files": build.assets.len(),
                "problems": build.problems,
                "ms": took.as_millis() as u64,
            }))?
        );
    } else {
        for line in problem_lines(&build) {
            println!("{line}");
        }
        println!(
            "{}: {} page(s), {} file(s), {} problem(s), rendered in {} ms",
            build.site.name,
            build.manifest.pages.len(),
            build.assets.len(),
            build.problems.len(),
            took.as_millis()
        );
    }
    Ok(if build.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The preview's current rendering.
struct Preview {
    files: callboard_docs::Files,
    build: callboard_docs::Build,
}

async fn serve(dir: PathBuf, config: Config, bind: SocketAddr) -> anyhow::Result<ExitCode> {
    let (files, build, took) = {
        let (d, c) = (dir.clone(), config.clone());
        tokio::task::spawn_blocking(move || render(&d, &c, None)).await??
    };
    for line in problem_lines(&build) {
        eprintln!("{line}");
    }
    eprintln!(
        "rendered {} page(s) in {} ms",
        build.manifest.pages.len(),
        took.as_millis()
    );
    let state = Arc::new(RwLock::new(Preview { files, build }));
    let _watch = watch(dir.clone(), config.clone(), state.clone())?;
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::temporary(PREVIEW_BASE) }),
        )
        .route(
            "/static/docs.css",
            axum::routing::get(crate::web::docs_stylesheet),
        )
        .route(
            "/static/callboard.css",
            axum::routing::get(crate::web::stylesheet),
        )
        .fallback(axum::routing::get(move |uri: axum::http::Uri| {
            let state = state.clone();
            async move { crate::web::preview_page(&state_view(&state), uri.path()) }
        }));
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    eprintln!(
        "previewing {} on http://{}{PREVIEW_BASE} (Ctrl-C to stop)",
        dir.display(),
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// Where the preview serves the site.
pub const PREVIEW_BASE: &str = "/docs/default/component/preview/";

fn state_view(state: &RwLock<Preview>) -> crate::web::PreviewSite {
    let guard = state
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    crate::web::PreviewSite::new(&guard.files, &guard.build)
}

/// Renders again (incrementally) whenever a file under `dir` changes.
fn watch(
    dir: PathBuf,
    config: Config,
    state: Arc<RwLock<Preview>>,
) -> anyhow::Result<notify_debouncer_mini::Debouncer<notify::RecommendedWatcher>> {
    use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
    let watched = dir.clone();
    let mut debouncer = new_debouncer(
        Duration::from_millis(200),
        move |result: DebounceEventResult| {
            if result.is_err() {
                return;
            }
            let previous = state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .build
                .manifest
                .clone();
            match render(&dir, &config, Some(&previous)) {
                Ok((files, build, took)) => {
                    for line in problem_lines(&build) {
                        eprintln!("{line}");
                    }
                    eprintln!(
                        "rendered {} changed page(s) in {} ms",
                        build.pages.len(),
                        took.as_millis()
                    );
                    // The preview keeps every page: unchanged ones come
                    // from the previous rendering.
                    let mut guard = state
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let mut pages = std::mem::take(&mut guard.build.pages);
                    pages.retain(|p| build.unchanged.contains(&p.source));
                    let mut merged = build;
                    merged.pages.extend(pages);
                    *guard = Preview {
                        files,
                        build: merged,
                    };
                }
                Err(e) => eprintln!("error: {e:#}"),
            }
        },
    )?;
    debouncer
        .watcher()
        .watch(&watched, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", watched.display()))?;
    Ok(debouncer)
}
