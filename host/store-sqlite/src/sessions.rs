//! Sessions in `coord.sqlite` (beside leases and shared secrets).

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::sessions::{SessionLimits, SessionRow, SessionStore, TOUCH_GRANULARITY_MS};
use rusqlite::{OptionalExtension, params};

use crate::db::Db;

/// Migration of the sessions table (appended to the leases store's).
pub(crate) const SESSIONS_V3: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id_digest TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_ms);";

pub(crate) struct SqliteSessions {
    db: Arc<Db>,
}

impl SqliteSessions {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteSessions {
    async fn create(
        &self,
        id_digest: &str,
        subject: &str,
        csrf: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<()> {
        let (id, subject, csrf, limits) = (
            id_digest.to_owned(),
            subject.to_owned(),
            csrf.to_owned(),
            *limits,
        );
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM sessions WHERE last_seen_ms <= ?1 OR created_ms <= ?2",
                    params![now_ms - limits.idle_ms, now_ms - limits.max_age_ms],
                )?;
                // Room for the new one: the oldest beyond the cap go.
                let keep = i64::try_from(limits.max_sessions.max(1) - 1).unwrap_or(i64::MAX);
                tx.execute(
                    "DELETE FROM sessions WHERE id_digest IN (
                         SELECT id_digest FROM sessions ORDER BY created_ms DESC, id_digest LIMIT -1 OFFSET ?1)",
                    [keep],
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO sessions (id_digest, subject, csrf, created_ms, last_seen_ms)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![id, subject, csrf, now_ms],
                )?;
                Ok(())
            })
            .await
    }

    async fn touch(
        &self,
        id_digest: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<Option<SessionRow>> {
        let (id, limits) = (id_digest.to_owned(), *limits);
        let found = self
            .db
            .read({
                let id = id.clone();
                move |conn| {
                    Ok(conn
                        .prepare_cached(
                            "SELECT id_digest, subject, csrf, created_ms, last_seen_ms FROM sessions WHERE id_digest = ?1",
                        )?
                        .query_row([id], |r| {
                            Ok(SessionRow {
                                id_digest: r.get(0)?,
                                subject: r.get(1)?,
                                csrf: r.get(2)?,
                                created_ms: r.get(3)?,
                                last_seen_ms: r.get(4)?,
                            })
                        })
                        .optional()?)
                }
            })
            .await?;
        let Some(mut session) = found else {
            return Ok(None);
        };
        if limits.expired(&session, now_ms) {
            self.revoke(&id).await?;
            return Ok(None);
        }
        if now_ms - session.last_seen_ms >= TOUCH_GRANULARITY_MS {
            self.db
                .write(move |tx| {
                    tx.execute(
                        "UPDATE sessions SET last_seen_ms = max(last_seen_ms, ?2) WHERE id_digest = ?1",
                        params![id, now_ms],
                    )?;
                    Ok(())
                })
                .await?;
            session.last_seen_ms = now_ms;
        }
        Ok(Some(session))
    }

    async fn revoke(&self, id_digest: &str) -> Result<()> {
        let id = id_digest.to_owned();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM sessions WHERE id_digest = ?1", [id])?;
                Ok(())
            })
            .await
    }
}
