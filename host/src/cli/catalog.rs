//! `callboard catalog ...`: check descriptor files and import them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use callboard_catalog::{ApplySummary, Catalog, IngestProblem, LocationKind, ingest};

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
        CatalogCommand::Validate { paths, json } => validate(&paths, json).await,
        CatalogCommand::Import { paths } => import(&paths, config).await,
    }
}

async fn validate(paths: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let files = ingest::expand_paths(paths);
    let mut problems: Vec<IngestProblem> = Vec::new();
    for file in &files {
        problems
            .extend(ingest::check_location(LocationKind::File, &file.display().to_string()).await);
    }
    // A generated root Location has no file of its own; its problems are
    // already listed with the file they concern.
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
    let db = config.catalog.database_path(&config.data_dir);
    let catalog =
        Catalog::open(&db, &config.catalog).with_context(|| format!("opening {}", db.display()))?;
    let files = ingest::expand_paths(paths);
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:40}] {pos}/{len} files, {per_sec} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let mut total = ApplySummary::default();
    let mut problems = Vec::new();
    let mut entities = 0usize;
    for file in &files {
        bar.set_message(file.display().to_string());
        let location = catalog
            .register_location("file", &file.display().to_string())
            .await?;
        let report = catalog.refresh_location(&location).await?;
        total.added += report.summary.added;
        total.updated += report.summary.updated;
        total.unchanged += report.summary.unchanged;
        total.orphaned += report.summary.orphaned;
        // The generated Location entity of each file is not one of the user's.
        entities += report.entities.len().saturating_sub(1);
        problems.extend(report.problems);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for p in &problems {
        eprintln!("error: {}", display(p));
    }
    println!(
        "Imported {} files into {} in {:.1}s: {entities} entities ({} added, {} updated, {} unchanged, {} orphaned), {} error(s)",
        files.len(),
        db.display(),
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
