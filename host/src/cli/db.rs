//! `callboard db`: the storage backend, seen from the command line.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

/// `callboard db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Show the backend, where its data lives and each store's schema
    /// version (migrating nothing). Exits 1 when a schema is older than this
    /// build (`callboard serve` migrates it) or newer (upgrade Callboard).
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Back up the embedded SQLite files to FILE (a tar archive), consistent
    /// while the server keeps serving. PostgreSQL: use pg_dump (README.md).
    Backup {
        /// The archive to write; must not exist.
        file: std::path::PathBuf,
        /// Print the manifest as JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Restore the SQLite files from a backup. Refused while a server uses
    /// the data directory; the files replaced are moved to
    /// `before-restore-<time>/` in it.
    Restore {
        /// The archive `callboard db backup` wrote.
        file: std::path::PathBuf,
        /// Print what was restored as JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `db` subcommand.
pub async fn run(command: DbCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Backup { file, json } => {
            let config = config.clone();
            let manifest = tokio::task::spawn_blocking(move || {
                crate::backup::backup(&config, &file, json).map(|m| (m, file))
            })
            .await??;
            let (manifest, file) = manifest;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifest)?);
            } else {
                let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
                println!(
                    "backed up {} files ({bytes} bytes) to {}",
                    manifest.files.len(),
                    file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Restore { file, json } => {
            let config = config.clone();
            let restored =
                tokio::task::spawn_blocking(move || crate::backup::restore(&config, &file, json))
                    .await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&restored)?);
            } else {
                println!(
                    "restored {} files taken by Callboard {}",
                    restored.manifest.files.len(),
                    restored.manifest.callboard
                );
                if let Some(previous) = &restored.previous {
                    println!("the files replaced are in {}", previous.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Status { json } => {
            let (backend, location, schema) = crate::database::status(config).await?;
            let current = schema.iter().all(|s| s.version == s.supported);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "backend": backend,
                        "location": location,
                        "current": current,
                        "stores": schema,
                    }))?
                );
            } else {
                println!("backend:  {backend}");
                println!("location: {location}");
                println!(
                    "{:<14} {:>8} {:>10}  state",
                    "store", "version", "supported"
                );
                for s in &schema {
                    let state = match s.version.cmp(&s.supported) {
                        std::cmp::Ordering::Equal => "current",
                        std::cmp::Ordering::Less if s.version == 0 => "not created",
                        std::cmp::Ordering::Less => "migrated at next start",
                        std::cmp::Ordering::Greater => "NEWER than this build",
                    };
                    println!(
                        "{:<14} {:>8} {:>10}  {state}",
                        s.store, s.version, s.supported
                    );
                }
            }
            Ok(if current {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
