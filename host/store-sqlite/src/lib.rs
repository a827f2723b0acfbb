//! Callboard's embedded storage backend: SQLite files in the data directory.
//!
//! - `catalog.sqlite`: the catalog, the change feed, shared plugin files
//!   and access policy versions (one file, so a write and its feed entry
//!   commit together);
//! - `coord.sqlite`: leases, sessions, counters, API tokens and the audit
//!   log (apart, so a long ingestion holding the catalog's writer never
//!   delays a heartbeat or a sign-in);
//! - `kv.sqlite`: plugins' key-value data.
//!
//! Each file has one writing connection and a bounded pool of readers (WAL
//! lets them run beside the writer). SQLite blocks, so every call runs on
//! tokio's blocking pool, and a semaphore bounds how many run at once: the
//! async workers never wait on SQLite, and a burst of requests queues
//! instead of spawning a thread each.
//!
//! This crate (with `callboard-store-postgres`) is the only one that names a
//! database driver.

mod access;
pub mod backup;
mod catalog;
mod coord;
mod db;
mod docs;
mod kv;
mod plugins;
mod policies;
mod query;
mod search;
mod sessions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use callboard_store::{Admin, Result, SchemaStatus, StoreError, Stores};

use db::Db;

/// How the SQLite files are opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The catalog file; `<data_dir>/catalog.sqlite` if unset.
    pub catalog_path: Option<PathBuf>,
    /// Read connections per file (each holds its own page cache).
    pub max_read_connections: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            catalog_path: None,
            max_read_connections: 8,
        }
    }
}

/// Opens (creating and migrating if needed) the SQLite files under
/// `data_dir`. Two `open`s of one folder in one process share change-feed
/// wake-ups, like two replicas on one database.
pub fn open(data_dir: &Path, options: &SqliteOptions) -> Result<Stores> {
    let catalog_path = options
        .catalog_path
        .clone()
        .unwrap_or_else(|| data_dir.join("catalog.sqlite"));
    let readers = options.max_read_connections.max(1);
    let main = Arc::new(Db::open(&catalog_path, readers, db::WRITER_CACHE_KB)?);
    let main_feed = main.clone();
    main.migrate_blocking("catalog", catalog::MIGRATIONS)?;
    main.migrate_blocking("feed", coord::FEED_MIGRATIONS)?;
    main.migrate_blocking("plugins", plugins::MIGRATIONS)?;
    main.migrate_blocking("policies", policies::MIGRATIONS)?;
    main.migrate_blocking("docs", docs::MIGRATIONS)?;
    let coord_db = Arc::new(Db::open(&data_dir.join("coord.sqlite"), 2, 2_000)?);
    coord_db.migrate_blocking("leases", coord::LEASE_MIGRATIONS)?;
    let kv_db = Arc::new(Db::open(&data_dir.join("kv.sqlite"), 4, 2_000)?);
    kv_db.migrate_blocking("kv", kv::MIGRATIONS)?;
    let feed = Arc::new(coord::SqliteFeed::new(main.clone()));
    Ok(Stores {
        catalog: Arc::new(catalog::SqliteCatalog::new(main.clone(), feed.clone())),
        kv: Arc::new(kv::SqliteKv::new(kv_db.clone())),
        leases: Arc::new(coord::SqliteLeases::new(coord_db.clone())),
        sessions: Arc::new(sessions::SqliteSessions::new(coord_db.clone())),
        counters: Arc::new(coord::SqliteCounters::new(coord_db.clone())),
        plugins: Arc::new(plugins::SqlitePlugins::new(main.clone(), feed.clone())),
        tokens: Arc::new(access::SqliteTokens::new(coord_db.clone())),
        policies: Arc::new(policies::SqlitePolicies::new(main.clone(), feed.clone())),
        audit: Arc::new(access::SqliteAudit::new(coord_db.clone())),
        search: Arc::new(search::SqliteSearch::new(main.clone())),
        docs: Arc::new(docs::SqliteDocs::new(main.clone())),
        feed,
        admin: Arc::new(SqliteAdmin {
            files: vec![
                (main, "catalog", catalog::MIGRATIONS),
                (main_feed.clone(), "feed", coord::FEED_MIGRATIONS),
                (main_feed.clone(), "plugins", plugins::MIGRATIONS),
                (main_feed.clone(), "policies", policies::MIGRATIONS),
                (main_feed, "docs", docs::MIGRATIONS),
                (coord_db, "leases", coord::LEASE_MIGRATIONS),
                (kv_db, "kv", kv::MIGRATIONS),
            ],
        }),
    })
}

/// The schema versions in the files under `data_dir`, without migrating
/// (for `callboard db status`). A file that does not exist is version 0.
pub fn schema_status(data_dir: &Path, options: &SqliteOptions) -> Result<Vec<SchemaStatus>> {
    let catalog_path = options
        .catalog_path
        .clone()
        .unwrap_or_else(|| data_dir.join("catalog.sqlite"));
    let mut out = Vec::new();
    for (store, path, migrations) in [
        ("catalog", catalog_path.clone(), catalog::MIGRATIONS),
        ("feed", catalog_path.clone(), coord::FEED_MIGRATIONS),
        ("plugins", catalog_path.clone(), plugins::MIGRATIONS),
        ("policies", catalog_path.clone(), policies::MIGRATIONS),
        ("docs", catalog_path, docs::MIGRATIONS),
        (
            "leases",
            data_dir.join("coord.sqlite"),
            coord::LEASE_MIGRATIONS,
        ),
        ("kv", data_dir.join("kv.sqlite"), kv::MIGRATIONS),
    ] {
        let version = if path.exists() {
            db::stored_version(&path, store)?
        } else {
            0
        };
        out.push(SchemaStatus {
            store: store.to_owned(),
            version,
            supported: db::len_i64(migrations),
        });
    }
    Ok(out)
}

/// Each store's file and migrations.
struct SqliteAdmin {
    files: Vec<(Arc<Db>, &'static str, &'static [&'static str])>,
}

#[async_trait::async_trait]
impl Admin for SqliteAdmin {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.files
            .first()
            .map(|(db, ..)| db.path().display().to_string())
            .unwrap_or_default()
    }

    async fn ping(&self) -> Result<()> {
        let Some((db, ..)) = self.files.first() else {
            return Ok(());
        };
        db.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String> {
        let coord = self
            .files
            .iter()
            .find(|(_, store, _)| *store == "leases")
            .map(|(db, ..)| db.clone())
            .ok_or_else(|| StoreError::Backend("no coordination file".into()))?;
        coord::shared_secret(&coord, name, candidate).await
    }

    fn pool(&self) -> callboard_store::PoolStatus {
        // One Db per file; several stores may share one.
        let mut seen = Vec::new();
        let mut total = callboard_store::PoolStatus::default();
        for (db, ..) in &self.files {
            if seen.iter().any(|s| Arc::ptr_eq(s, db)) {
                continue;
            }
            seen.push(db.clone());
            let pool = db.pool();
            total.open += pool.open;
            total.idle += pool.idle;
            total.max += pool.max;
            total.waiting += pool.waiting;
        }
        total
    }

    async fn schema(&self) -> Result<Vec<SchemaStatus>> {
        let mut out = Vec::new();
        for (db, store, migrations) in &self.files {
            let version = db.version(store).await?;
            out.push(SchemaStatus {
                store: (*store).to_owned(),
                version,
                supported: db::len_i64(migrations),
            });
        }
        Ok(out)
    }
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the shape `map_err` passes; the error is consumed into a message"
)]
/// Maps SQLite's errors: a busy or locked database is momentarily
/// unavailable; anything else is a backend failure.
pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Errors inside a blocking call: SQLite's, or the store's own.
#[derive(Debug)]
pub(crate) enum Error {
    Sql(rusqlite::Error),
    Store(StoreError),
}

pub(crate) type Res<T> = std::result::Result<T, Error>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Sql(e) => sql_error(e),
            Error::Store(e) => e,
        }
    }
}
