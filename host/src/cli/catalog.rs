//! `callboard catalog ...`: check descriptor files and import them.

use std::path::PathBuf;
use std::process::ExitCode;

use callboard_catalog::{ApplySummary, IngestProblem, LocationKind, ingest};

/// Catalog subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Check descriptor files (files, directories or globs) and list every
    /// error with file and line; exits non-zero if any is found.
    Validate {
        /// Files, directories (every *.yaml/*.yml below) or globs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the errors as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Read descriptor files into the catalog database (each file becomes a
    /// registered location, refreshed like any other).
    Import {
        /// Files, directories (every *.yaml/*.yml below) or globs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Runs a catalog subcommand. Call it inside a tokio runtime.
pub async fn run(cmd: CatalogCommand, config: &crate::config::Config) -> anyhow::Result<ExitCode> {
    match cmd {
        CatalogCommand::Validate { paths, json } => validate(&paths, json, config).await,
        CatalogCommand::Import { paths } => import(&paths, config).await,
    }
}

async fn validate(
    paths: &[PathBuf],
    json: bool,
    config: &crate::config::Config,
) -> anyhow::Result<ExitCode> {
    let files = ingest::expand_paths(paths);
    let mut problems: Vec<IngestProblem> = Vec::new();
    // One location per argument, as `import` registers it: a file that is
    // both matched and referenced by a Location entity is read once.
    for path in paths {
        for p in ingest::check_location(
            LocationKind::File,
            &ingest::path_target(path),
            &config.catalog,
        )
        .await
        {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&problems)?);
    } else {
        for p in &problems {
            println!("{}", display(p));
        }
        let noun = if files.len() == 1 { "file" } else { "files" };
        if problems.is_empty() {
            println!("{} {noun} checked, no errors", files.len());
        } else {
            println!(
                "{} {noun} checked, {} error(s)",
                files.len(),
                problems.len()
            );
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `path:line: entity: message`, the way compilers print, so editors can jump.
fn display(p: &IngestProblem) -> String {
    let file = p.location.strip_prefix("file:").unwrap_or(&p.location);
    let mut out = file.to_owned();
    if let Some(line) = p.line {
        out.push_str(&format!(":{line}"));
    }
    if let Some(entity) = &p.entity {
        out.push_str(&format!(": {entity}"));
    }
    out.push_str(&format!(": {}", p.message));
    out
}

async fn import(paths: &[PathBuf], config: &crate::config::Config) -> anyhow::Result<ExitCode> {
    let (stores, catalog) = crate::server::AppState::open_storage(config).await?;
    let files = ingest::expand_paths(paths);
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:40}] {pos}/{len} files, {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let mut total = ApplySummary::default();
    let mut problems = Vec::new();
    let mut entities = 0usize;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // One registered location per argument (a directory becomes a glob), so
    // files that Location entities inside it reference are read once.
    for path in paths {
        let location = catalog
            .register_location("file", &ingest::path_target(path))
            .await?;
        let (bar2, read2) = (bar.clone(), read.clone());
        let report = catalog
            .refresh_location_with_progress(&location, move |n| {
                let so_far = read2.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
                bar2.inc(1);
                bar2.set_message(format!("{so_far} entities"));
            })
            .await?;
        total.added += report.summary.added;
        total.updated += report.summary.updated;
        total.unchanged += report.summary.unchanged;
        total.orphaned += report.summary.orphaned;
        entities += report.entities.len();
        problems.extend(report.problems);
    }
    bar.finish_and_clear();
    for p in &problems {
        eprintln!("error: {}", display(p));
    }
    println!(
        "Imported {} files into {} in {:.1}s: {entities} entities ({} added, {} updated, {} unchanged, {} orphaned), {} error(s)",
        files.len(),
        stores.admin.location(),
        started.elapsed().as_secs_f64(),
        total.added,
        total.updated,
        total.unchanged,
        total.orphaned,
        problems.len()
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
