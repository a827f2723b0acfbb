//! `[database]`: which storage backend serves this node. Embedded SQLite
//! files in the data directory by default; `database.url =
//! "postgres://..."` (or `--database`) selects PostgreSQL, shared by every
//! replica. The host names no driver: it picks a backend crate.

use std::time::Duration;

use anyhow::Context as _;
use callboard_store::{SchemaStatus, Stores};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The environment variable that holds the PostgreSQL password, so it
/// need not sit in the configuration file or the URL.
pub const PASSWORD_ENV: &str = "CALLBOARD_DATABASE_PASSWORD";

/// `[database]` in `callboard.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user@host:port/db` selects PostgreSQL (the password from
    /// the URL or `CALLBOARD_DATABASE_PASSWORD`); empty (the default) keeps
    /// the embedded SQLite files in the data directory.
    pub url: String,
    /// PostgreSQL connections this replica keeps at most. Default 16.
    pub max_connections: usize,
    /// Seconds to wait for a PostgreSQL connection. Default 5.
    pub connect_timeout_secs: u64,
    /// Seconds one statement may run before PostgreSQL cancels it. Default 30.
    pub statement_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            connect_timeout_secs: 5,
            statement_timeout_secs: 30,
        }
    }
}

impl DatabaseConfig {
    /// Whether PostgreSQL is selected (checked by [`DatabaseConfig::validate`]).
    pub fn is_postgres(&self) -> bool {
        !self.url.is_empty()
    }

    /// Refuses a URL that is not PostgreSQL's, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.is_postgres()
            && !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://"))
        {
            anyhow::bail!(
                "database.url must start with postgres:// or postgresql:// (leave it empty for the embedded SQLite files), got \"{}\"",
                redact(&self.url)
            );
        }
        Ok(())
    }

    fn pg_options(&self) -> callboard_store_postgres::PgOptions {
        callboard_store_postgres::PgOptions {
            max_connections: self.max_connections.max(1),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs.max(1)),
            statement_timeout: Duration::from_secs(self.statement_timeout_secs.max(1)),
            password: std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()),
        }
    }
}

pub(crate) fn sqlite_options(config: &Config) -> callboard_store_sqlite::SqliteOptions {
    callboard_store_sqlite::SqliteOptions {
        catalog_path: config.catalog.database.clone(),
        max_read_connections: config.catalog.max_read_connections.max(1),
    }
}

/// A URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

/// Opens the configured backend, migrating its schema (under a lock, so
/// replicas starting together cannot race).
pub async fn open(config: &Config) -> anyhow::Result<Stores> {
    let db = &config.database;
    db.validate()?;
    if db.is_postgres() {
        let stores = callboard_store_postgres::connect(&db.url, &db.pg_options())
            .await
            .with_context(|| format!("cannot open the database {}", redact(&db.url)))?;
        tracing::info!(database = %redact(&db.url), "storage: PostgreSQL");
        Ok(stores)
    } else {
        let dir = config.data_dir.clone();
        let options = sqlite_options(config);
        let stores =
            tokio::task::spawn_blocking(move || callboard_store_sqlite::open(&dir, &options))
                .await?
                .with_context(|| {
                    format!(
                        "cannot open the SQLite files in {}",
                        config.data_dir.display()
                    )
                })?;
        Ok(stores)
    }
}

/// The backend, where its data lives, and each store's schema version,
/// without migrating anything (`callboard db status`).
pub async fn status(config: &Config) -> anyhow::Result<(&'static str, String, Vec<SchemaStatus>)> {
    let db = &config.database;
    db.validate()?;
    if db.is_postgres() {
        let schema = callboard_store_postgres::schema_status(&db.url, &db.pg_options())
            .await
            .with_context(|| format!("cannot read the database {}", redact(&db.url)))?;
        Ok(("postgres", redact(&db.url), schema))
    } else {
        let schema =
            callboard_store_sqlite::schema_status(&config.data_dir, &sqlite_options(config))?;
        Ok(("sqlite", config.data_dir.display().to_string(), schema))
    }
}
