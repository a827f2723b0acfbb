//! Coordination on one node: the change feed (in the catalog's file, so a
//! catalog write and its feed entry commit together) and leases (in
//! `coord.sqlite`, so a long ingestion holding the catalog's writer never
//! delays a heartbeat). Time is the system clock in milliseconds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callboard_store::coord::{Feed, FeedEvent, Lease, Leases};
use callboard_store::{Result, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use crate::Res;
use crate::db::Db;

/// Migrations of the feed (in `catalog.sqlite`).
pub(crate) const FEED_MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    at INTEGER NOT NULL
);"];

/// Migrations of the leases, shared secrets, sessions, counters, API tokens
/// and the audit log (in `coord.sqlite`).
pub(crate) const LEASE_MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT,
    expires_at INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;",
    "
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    crate::sessions::SESSIONS_V3,
    "
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    crate::access::ACCESS_V5,
];

pub(crate) struct SqliteCounters {
    db: Arc<Db>,
}

impl SqliteCounters {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl callboard_store::Counters for SqliteCounters {
    async fn add(&self, deltas: &[(String, i64)]) -> Result<()> {
        let deltas = deltas.to_vec();
        self.db
            .write(move |tx| {
                let mut add = tx.prepare_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                )?;
                for (name, delta) in &deltas {
                    add.execute(params![name, delta])?;
                }
                Ok(())
            })
            .await
    }

    async fn read(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let prefix = prefix.to_owned();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT name, value FROM counters WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
                )?;
                let rows = stmt.query_map([&prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
            })
            .await
    }
}

/// A secret shared by every handle on the file: stored unless present.
pub(crate) async fn shared_secret(db: &Arc<Db>, name: &str, candidate: &str) -> Result<String> {
    let (name, candidate) = (name.to_owned(), candidate.to_owned());
    db.write(move |tx| {
        tx.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
            params![name, candidate],
        )?;
        Ok(
            tx.query_row("SELECT value FROM secrets WHERE name = ?1", [&name], |r| {
                r.get(0)
            })?,
        )
    })
    .await
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Appends one event inside a transaction; its sequence number.
pub(crate) fn append(tx: &Transaction<'_>, topic: &str, payload: &str) -> Res<i64> {
    tx.prepare_cached("INSERT INTO feed (topic, payload, at) VALUES (?1, ?2, ?3)")?
        .execute(params![topic, payload, now_ms()])?;
    Ok(tx.last_insert_rowid())
}

/// The newest sequence number a file's feed has, shared by every handle on
/// that file in this process (two `open`s of one folder are two replicas).
fn signal_for(path: PathBuf) -> Arc<tokio::sync::watch::Sender<i64>> {
    type Signals = Mutex<HashMap<PathBuf, Weak<tokio::sync::watch::Sender<i64>>>>;
    static SIGNALS: OnceLock<Signals> = OnceLock::new();
    let mut map = SIGNALS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(signal) = map.get(&path).and_then(Weak::upgrade) {
        return signal;
    }
    let signal = Arc::new(tokio::sync::watch::channel(0).0);
    map.insert(path, Arc::downgrade(&signal));
    signal
}

pub(crate) struct SqliteFeed {
    db: Arc<Db>,
    signal: Arc<tokio::sync::watch::Sender<i64>>,
}

impl SqliteFeed {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let path = std::fs::canonicalize(db.path()).unwrap_or_else(|_| db.path().to_owned());
        Self {
            db,
            signal: signal_for(path),
        }
    }

    /// Wakes followers after a commit that appended `seq`.
    pub(crate) fn notify(&self, seq: i64) {
        self.signal.send_if_modified(|head| {
            let newer = seq > *head;
            if newer {
                *head = seq;
            }
            newer
        });
    }
}

#[async_trait::async_trait]
impl Feed for SqliteFeed {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<i64> {
        let (topic, payload) = (topic.to_owned(), payload.to_string());
        let seq = self
            .db
            .write(move |tx| append(tx, &topic, &payload))
            .await?;
        self.notify(seq);
        Ok(seq)
    }

    async fn read_after(&self, seq: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, topic, payload FROM feed WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![seq, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (seq, topic, payload) = row?;
                    let payload = serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("feed event {seq}: {e}")))?;
                    out.push(FeedEvent {
                        seq,
                        topic,
                        payload,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn head(&self) -> Result<i64> {
        self.db
            .read(|c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM feed", [], |r| r.get(0))?))
            .await
    }

    async fn wait(&self, seq: i64, timeout: Duration) {
        let mut rx = self.signal.subscribe();
        // Another process may write the file: the timeout is the poll.
        let _ = tokio::time::timeout(timeout, rx.wait_for(|head| *head > seq)).await;
    }

    async fn prune(&self, age: Duration) -> Result<u64> {
        let before = now_ms().saturating_sub(ms(age));
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "DELETE FROM feed WHERE at < ?1 AND seq < (SELECT max(seq) FROM feed)",
                    [before],
                )?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }
}

pub(crate) struct SqliteLeases {
    db: Arc<Db>,
}

impl SqliteLeases {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl Leases for SqliteLeases {
    async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.db
            .write(move |tx| {
                let now = now_ms();
                let row: Option<(Option<String>, i64, i64)> = tx
                    .prepare_cached(
                        "SELECT holder, expires_at, due_at FROM leases WHERE name = ?1",
                    )?
                    .query_row([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                if let Some((current, expires_at, due_at)) = row {
                    let held_by_other = current
                        .as_deref()
                        .is_some_and(|h| h != holder && expires_at >= now);
                    if held_by_other || due_at > now {
                        return Ok(None);
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO leases (name, holder, expires_at, due_at) VALUES (?1, ?2, ?3, 0)
                     ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3",
                )?
                .execute(params![name, holder, now.saturating_add(ms(ttl))])?;
                Ok(Some(Lease { name, holder }))
            })
            .await
    }

    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let lease = lease.clone();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let n = tx
                    .prepare_cached(
                        "UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND holder = ?2",
                    )?
                    .execute(params![
                        lease.name,
                        lease.holder,
                        now.saturating_add(ms(ttl))
                    ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn complete(&self, lease: &Lease, next_in: Duration) -> Result<bool> {
        let lease = lease.clone();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let n = tx
                    .prepare_cached(
                        "UPDATE leases SET holder = NULL, expires_at = 0, due_at = ?3 WHERE name = ?1 AND holder = ?2",
                    )?
                    .execute(params![lease.name, lease.holder, now.saturating_add(ms(next_in))])?;
                Ok(n == 1)
            })
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE leases SET holder = NULL, expires_at = 0 WHERE name = ?1 AND holder = ?2",
                )?
                .execute(params![lease.name, lease.holder])?;
                Ok(())
            })
            .await
    }

    async fn make_due(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached("UPDATE leases SET due_at = 0 WHERE name = ?1")?
                    .execute([name])?;
                Ok(())
            })
            .await
    }
}
