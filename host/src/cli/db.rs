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
}

/// Runs a `db` subcommand.
pub async fn run(command: DbCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
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
