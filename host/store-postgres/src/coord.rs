//! Leases and the change feed.
//!
//! Time is the database's clock (`now()`). The feed is an outbox table;
//! appends take a transaction-scoped advisory lock so that sequence numbers
//! become visible in order (a follower that read up to `n` never misses a
//! smaller number committed later), and `NOTIFY callboard_feed` at commit.
//! A listener task on its own connection wakes [`Feed::wait`]ers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use callboard_store::coord::{Feed, FeedEvent, Lease, Leases};
use callboard_store::{Result, StoreError};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::Db;
use crate::error::pg;

/// The notification channel of the feed.
const CHANNEL: &str = "callboard_feed";

/// Advisory lock serializing feed appends until their commit.
const FEED_LOCK: i64 = 0x6361_6c6c_6665_6564; // "callfeed"

/// How often `wait` polls while the listener is down.
const POLL: Duration = Duration::from_secs(1);

/// How often the listener checks its connection.
const LISTENER_PING: Duration = Duration::from_secs(30);

/// Longest pause between listener reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Leases on PostgreSQL.
pub(crate) struct PgLeases {
    db: Arc<Db>,
}

impl PgLeases {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[async_trait::async_trait]
impl Leases for PgLeases {
    async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        let client = self.db.get().await?;
        // One statement: a missing row is inserted; an existing one is taken
        // over only if due and not held by somebody else unexpired. The row
        // lock of ON CONFLICT DO UPDATE makes concurrent claims take turns.
        let row = client
            .query_opt(
                "INSERT INTO leases AS l (name, holder, expires_at, due_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3), now())
                 ON CONFLICT (name) DO UPDATE
                     SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                     WHERE l.due_at <= now()
                       AND (l.holder IS NULL OR l.expires_at < now() OR l.holder = EXCLUDED.holder)
                 RETURNING holder",
                &[&name, &holder, &secs(ttl)],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(row.map(|_| Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
        }))
    }

    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let client = self.db.get().await?;
        let n = client
            .execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND holder = $2",
                &[&lease.name, &lease.holder, &secs(ttl)],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(n > 0)
    }

    async fn complete(&self, lease: &Lease, next_in: Duration) -> Result<bool> {
        let client = self.db.get().await?;
        let n = client
            .execute(
                "UPDATE leases SET holder = NULL, expires_at = NULL,
                     due_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND holder = $2",
                &[&lease.name, &lease.holder, &secs(next_in)],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(n > 0)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let client = self.db.get().await?;
        client
            .execute(
                "UPDATE leases SET holder = NULL, expires_at = NULL WHERE name = $1 AND holder = $2",
                &[&lease.name, &lease.holder],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(())
    }

    async fn make_due(&self, name: &str) -> Result<()> {
        let client = self.db.get().await?;
        client
            .execute(
                "INSERT INTO leases (name, due_at) VALUES ($1, now())
                 ON CONFLICT (name) DO UPDATE SET due_at = now()",
                &[&name],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(())
    }
}

/// Appends an event inside the caller's transaction; returns its sequence
/// number. The advisory lock is held until the transaction ends, so
/// appends commit in sequence order.
pub(crate) async fn append(client: &Client, topic: &str, payload: &Value) -> Result<i64> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
        .await
        .map_err(|e| pg(&e))?;
    let row = client
        .query_one(
            "WITH appended AS (INSERT INTO feed (topic, payload) VALUES ($1, $2) RETURNING seq)
             SELECT seq, pg_notify($3, seq::text) FROM appended",
            &[&topic, payload, &CHANNEL],
        )
        .await
        .map_err(|e| pg(&e))?;
    row.try_get(0).map_err(|e| pg(&e))
}

/// What the feed shares with its listener task.
struct Shared {
    /// The highest sequence number known to exist.
    head: watch::Sender<i64>,
    /// Whether the listener is connected and listening.
    listening: AtomicBool,
}

/// The change feed on PostgreSQL.
pub(crate) struct PgFeed {
    db: Arc<Db>,
    shared: Arc<Shared>,
    /// Dropped with the feed: stops the listener task.
    _stop: oneshot::Sender<()>,
}

impl PgFeed {
    /// The feed, with its listener task started.
    pub(crate) fn start(db: Arc<Db>) -> Self {
        let (head, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            head,
            listening: AtomicBool::new(false),
        });
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(listen(db.clone(), shared.clone(), stopped));
        Self {
            db,
            shared,
            _stop: stop,
        }
    }
}

/// The newest sequence number (0 when the feed is empty).
async fn read_head(client: &Client) -> Result<i64> {
    let row = client
        .query_one("SELECT coalesce(max(seq), 0) FROM feed", &[])
        .await
        .map_err(|e| pg(&e))?;
    row.try_get(0).map_err(|e| pg(&e))
}

#[async_trait::async_trait]
impl Feed for PgFeed {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<i64> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let seq = append(tokio_postgres::GenericClient::client(&*tx), topic, payload).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        self.shared.head.send_if_modified(|head| raise(head, seq));
        Ok(seq)
    }

    async fn read_after(&self, seq: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        let client = self.db.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT seq, topic, payload FROM feed WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&seq, &limit],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| {
                Ok(FeedEvent {
                    seq: r.try_get(0).map_err(|e| pg(&e))?,
                    topic: r.try_get(1).map_err(|e| pg(&e))?,
                    payload: r.try_get(2).map_err(|e| pg(&e))?,
                })
            })
            .collect()
    }

    async fn head(&self) -> Result<i64> {
        let head = read_head(&*self.db.get().await?).await?;
        self.shared.head.send_if_modified(|h| raise(h, head));
        Ok(head)
    }

    async fn wait(&self, seq: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.shared.head.subscribe();
        if *rx.borrow_and_update() > seq {
            return;
        }
        // Subscribed first, then read: a notification in between is not lost.
        if let Ok(head) = self.head().await
            && head > seq
        {
            return;
        }
        loop {
            if *rx.borrow_and_update() > seq {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            let listening = self.shared.listening.load(Ordering::Acquire);
            let until = if listening {
                deadline
            } else {
                deadline.min(now + POLL)
            };
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as the feed; never happens.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                Err(_) if !listening => {
                    // Polling while the listener is down.
                    if let Ok(head) = self.head().await
                        && head > seq
                    {
                        return;
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// Drops events older than `age`, except the newest one, so that the
    /// head never goes back (followers compare it with their position).
    async fn prune(&self, age: Duration) -> Result<u64> {
        let client = self.db.get().await?;
        client
            .execute(
                "DELETE FROM feed WHERE at < now() - make_interval(secs => $1)
                 AND seq < (SELECT max(seq) FROM feed)",
                &[&secs(age)],
            )
            .await
            .map_err(|e| pg(&e))
    }
}

fn raise(head: &mut i64, seq: i64) -> bool {
    if seq > *head {
        *head = seq;
        true
    } else {
        false
    }
}

/// The listener task: `LISTEN callboard_feed` on a dedicated connection,
/// raising the shared head on every notification; reconnects with back-off
/// when the connection drops. Ends when the feed is dropped.
async fn listen(db: Arc<Db>, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = tokio::select! {
            _ = &mut stop => return,
            session = listen_once(&db, &shared) => session,
        };
        shared.listening.store(false, Ordering::Release);
        match session {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "change feed listener disconnected");
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One listening session; returns when its connection ends.
async fn listen_once(db: &Db, shared: &Shared) -> Result<()> {
    let (client, mut connection) = db.config.connect(NoTls).await.map_err(|e| pg(&e))?;
    // The connection's messages (notifications included) are only read
    // while it is polled: a task drives it and forwards notifications.
    let (notify_tx, mut notifications) = mpsc::unbounded_channel::<i64>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let seq = n.payload().parse().unwrap_or(0);
                    if notify_tx.send(seq).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    let result = listening(&client, shared, &mut notifications).await;
    driver.abort();
    result
}

async fn listening(
    client: &Client,
    shared: &Shared,
    notifications: &mut mpsc::UnboundedReceiver<i64>,
) -> Result<()> {
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| pg(&e))?;
    // Events appended while nobody listened: catch up once.
    let head = read_head(client).await?;
    shared.head.send_if_modified(|h| raise(h, head));
    shared.listening.store(true, Ordering::Release);
    tracing::debug!("change feed listener connected");
    let mut ping = tokio::time::interval(LISTENER_PING);
    ping.tick().await;
    loop {
        tokio::select! {
            seq = notifications.recv() => match seq {
                Some(seq) => {
                    // A payload that is not a sequence number (a NOTIFY from
                    // elsewhere): read the head instead of trusting it.
                    let seq = if seq > 0 { seq } else { read_head(client).await? };
                    shared.head.send_if_modified(|h| raise(h, seq));
                }
                None => {
                    return Err(StoreError::Unavailable("PostgreSQL: listener connection closed".into()));
                }
            },
            _ = ping.tick() => {
                // A half-open connection is only noticed by using it.
                tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1"))
                    .await
                    .map_err(|_| StoreError::Unavailable("PostgreSQL: listener connection stalled".into()))?
                    .map_err(|e| pg(&e))?;
            }
        }
    }
}

/// Counters summed over replicas.
pub(crate) const COORDINATION_V4: &str = r#"
CREATE TABLE counters (
    name text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);
"#;

pub(crate) struct PgCounters {
    db: Arc<Db>,
}

impl PgCounters {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl callboard_store::Counters for PgCounters {
    async fn add(&self, deltas: &[(String, i64)]) -> Result<()> {
        let (names, values): (Vec<&str>, Vec<i64>) =
            deltas.iter().map(|(n, v)| (n.as_str(), *v)).unzip();
        let client = self.db.get().await?;
        // One statement, so all deltas land together; sorted by name so two
        // replicas adding to the same counters lock them in one order.
        client
            .execute(
                "INSERT INTO counters (name, value)
                 SELECT n, sum(v) FROM unnest($1::text[], $2::bigint[]) AS d(n, v) GROUP BY n ORDER BY n
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
                &[&names, &values],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(())
    }

    async fn read(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT name, value FROM counters WHERE starts_with(name, $1) ORDER BY name",
                &[&prefix],
            )
            .await
            .map_err(|e| pg(&e))?;
        crate::error::pairs(&rows)
    }
}
