//! One SQLite file: a writing connection, a bounded pool of readers, the
//! bounded blocking pool every call runs on, and versioned migrations.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use callboard_store::{Result, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::{Error, Res, sql_error};

/// Page cache of the catalog's writing connection, in KiB: the writer
/// touches every index page of a large load.
pub(crate) const WRITER_CACHE_KB: u32 = 32_000;

pub(crate) struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// Signalled when a read connection is returned.
    returned: Condvar,
    /// Calls running on the blocking pool at once: every reader plus the
    /// writer, so a call never holds a thread while waiting for a
    /// connection.
    jobs: tokio::sync::Semaphore,
    /// Calls waiting for one of `jobs`.
    waiting: std::sync::atomic::AtomicUsize,
    /// Match counts that steer query plans, forgotten at each commit.
    estimates: crate::query::Estimates,
}

/// Idle read connections and how many exist; never more than `max`.
struct Readers {
    idle: Vec<Connection>,
    open: usize,
    max: usize,
}

/// A read connection taken from the pool, returned on drop (a panicking
/// reader cannot leak its slot).
struct Taken<'d> {
    db: &'d Db,
    conn: Option<Connection>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.db.release(self.conn.take());
    }
}

impl Db {
    pub(crate) fn open(path: &Path, max_readers: usize, writer_cache_kb: u32) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = connect(path)?;
        conn.execute_batch(&format!("PRAGMA cache_size = -{writer_cache_kb};"))
            .map_err(sql_error)?;
        let max = max_readers.max(1);
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                open: 0,
                max,
            }),
            returned: Condvar::new(),
            jobs: tokio::sync::Semaphore::new(max + 1),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            estimates: crate::query::Estimates::default(),
        })
    }

    pub(crate) fn estimates(&self) -> &crate::query::Estimates {
        &self.estimates
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read connection, on the blocking pool.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        let span = self.span("read");
        self.blocking(move || span.in_scope(|| db.read_blocking(f)))
            .await
    }

    /// The span of one batch: a read or a write transaction on this file.
    fn span(&self, what: &'static str) -> tracing::Span {
        let file = self.path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        tracing::info_span!("db", otel.name = %format_args!("sqlite {what} {file}"), db.system = "sqlite", db.operation = what)
    }

    /// The pool now: every open connection (the writer and the readers),
    /// idle readers, and calls waiting for a slot.
    pub(crate) fn pool(&self) -> callboard_store::PoolStatus {
        let readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        callboard_store::PoolStatus {
            open: readers.open + 1,
            idle: readers.idle.len(),
            max: readers.max + 1,
            waiting: self.waiting.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Runs `f` in one IMMEDIATE write transaction, on the blocking pool;
    /// nothing is written unless it succeeds.
    pub(crate) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Transaction<'_>) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        let span = self.span("write");
        self.blocking(move || span.in_scope(|| db.write_blocking(f)))
            .await
    }

    /// Runs `f` on the blocking pool once one of the bounded slots is free.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _slot = match self.jobs.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                use std::sync::atomic::Ordering;
                let started = std::time::Instant::now();
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let slot = self.jobs.acquire().await;
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                metrics::histogram!(callboard_store::metrics::DB_POOL_WAIT, "backend" => "sqlite")
                    .record(started.elapsed().as_secs_f64());
                slot.map_err(|_| StoreError::Unavailable("the database is closing".into()))?
            }
        };
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Backend(format!("a database task failed: {e}")))?
    }

    pub(crate) fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Res<T>) -> Result<T> {
        let conn = {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(conn) = pool.idle.pop() {
                    break Some(conn);
                }
                if pool.open < pool.max {
                    pool.open += 1;
                    break None;
                }
                pool = self
                    .returned
                    .wait(pool)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut taken = Taken { db: self, conn };
        let conn = match taken.conn.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        taken.conn = Some(conn);
        result.map_err(StoreError::from)
    }

    fn release(&self, conn: Option<Connection>) {
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        match conn {
            Some(conn) => pool.idle.push(conn),
            None => pool.open -= 1,
        }
        drop(pool);
        self.returned.notify_one();
    }

    pub(crate) fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Res<T>,
    ) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let result = f(&tx).map_err(StoreError::from)?;
        self.commit(tx)?;
        Ok(result)
    }

    /// Commits a write transaction of the writing connection; the match
    /// counts kept to steer plans are forgotten.
    pub(crate) fn commit(&self, tx: Transaction<'_>) -> Result<()> {
        tx.commit().map_err(sql_error)?;
        self.estimates.written();
        Ok(())
    }

    /// The writing connection, for a transaction that spans many calls
    /// (ingestion); held until the guard drops.
    pub(crate) fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the migrations of `store` not applied yet, each in an
    /// IMMEDIATE transaction that reads the version first: two processes
    /// starting together cannot both apply one.
    pub(crate) fn migrate_blocking(&self, store: &str, migrations: &[&str]) -> Result<()> {
        let supported = len_i64(migrations);
        loop {
            let done = self.write_blocking(|tx| {
                ensure_table(tx)?;
                let version = version_of(tx, store)?;
                if version > supported {
                    return Err(Error::Store(StoreError::SchemaTooNew {
                        store: store.to_owned(),
                        found: version,
                        supported,
                    }));
                }
                let Some(sql) = usize::try_from(version)
                    .ok()
                    .and_then(|v| migrations.get(v))
                else {
                    return Ok(true);
                };
                tx.execute_batch(sql).map_err(|e| {
                    StoreError::Backend(format!("{store} migration {}: {e}", version + 1))
                })?;
                tx.execute(
                    "INSERT OR REPLACE INTO schema_migrations (store, version) VALUES (?1, ?2)",
                    rusqlite::params![store, version + 1],
                )
                .map_err(sql_error)?;
                Ok(false)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    pub(crate) async fn version(self: &Arc<Self>, store: &str) -> Result<i64> {
        let store = store.to_owned();
        self.read(move |c| Ok(version_of(c, &store)?)).await
    }
}

pub(crate) fn len_i64<T>(items: &[T]) -> i64 {
    i64::try_from(items.len()).unwrap_or(i64::MAX)
}

/// The version of `store` in the file at `path`, read-only.
pub(crate) fn stored_version(path: &Path, store: &str) -> Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_error)?;
    version_of(&conn, store)
}

fn ensure_table(c: &Connection) -> Result<()> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (store TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )
    .map_err(sql_error)
}

/// Files written before `schema_migrations` existed kept the catalog's and
/// the key-value store's version in `PRAGMA user_version`.
fn version_of(c: &Connection, store: &str) -> Result<i64> {
    let has_table: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(sql_error)?;
    let recorded: Option<i64> = if has_table {
        c.query_row(
            "SELECT version FROM schema_migrations WHERE store = ?1",
            [store],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?
    } else {
        None
    };
    if let Some(v) = recorded {
        return Ok(v);
    }
    if store == "catalog" || store == "kv" {
        let legacy: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_error)?;
        // Only the file's own store used it: a kv file has a `kv` table.
        let table = if store == "catalog" { "entities" } else { "kv" };
        let owns: bool = c
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        if owns {
            return Ok(legacy);
        }
    }
    Ok(0)
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql_error)?;
    // synchronous=FULL in WAL mode: a commit is on disk before it is
    // acknowledged (NORMAL could lose the last commits to a power loss).
    // 4 MB of page cache per connection (eight readers): the OS page cache
    // holds the rest of the file once, for all of them.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -4000;",
    )
    .map_err(sql_error)?;
    // Plans never depend on bound values. Without this SQLite re-prepares
    // a statement whenever a value it planned around changes; the
    // full-text index's own segment lookup (`segid = ?`) did so at nearly
    // every query (8% of a full-text page's CPU). The catalog's queries
    // choose their driving index themselves (`query.rs`).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(sql_error)?;
    // Catalog queries vary in shape (filters, orders, pages): keep enough
    // of them prepared that a busy mix does not parse each again.
    conn.set_prepared_statement_cache_capacity(128);
    crate::query::register_functions(&conn).map_err(sql_error)?;
    Ok(conn)
}
