//! Sessions in the coordination store.

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::sessions::{SessionLimits, SessionRow, SessionStore, TOUCH_GRANULARITY_MS};

use crate::Db;
use crate::error::pg;

/// Migration of the sessions table (the coordination store's third).
pub(crate) const COORDINATION_V3: &str = r#"
CREATE TABLE sessions (
    id_digest text COLLATE "C" PRIMARY KEY,
    subject text NOT NULL,
    csrf text NOT NULL,
    created_ms bigint NOT NULL,
    last_seen_ms bigint NOT NULL
);
CREATE INDEX sessions_created ON sessions (created_ms);
"#;

pub(crate) struct PgSessions {
    db: Arc<Db>,
}

impl PgSessions {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl SessionStore for PgSessions {
    async fn create(
        &self,
        id_digest: &str,
        subject: &str,
        csrf: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<()> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        tx.execute(
            "DELETE FROM sessions WHERE last_seen_ms <= $1 OR created_ms <= $2",
            &[&(now_ms - limits.idle_ms), &(now_ms - limits.max_age_ms)],
        )
        .await
        .map_err(|e| pg(&e))?;
        let keep = i64::try_from(limits.max_sessions.max(1) - 1).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM sessions WHERE id_digest IN (
                 SELECT id_digest FROM sessions ORDER BY created_ms DESC, id_digest OFFSET $1)",
            &[&keep],
        )
        .await
        .map_err(|e| pg(&e))?;
        tx.execute(
            "INSERT INTO sessions (id_digest, subject, csrf, created_ms, last_seen_ms)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id_digest) DO UPDATE SET subject = EXCLUDED.subject, csrf = EXCLUDED.csrf,
                 created_ms = EXCLUDED.created_ms, last_seen_ms = EXCLUDED.last_seen_ms",
            &[&id_digest, &subject, &csrf, &now_ms],
        )
        .await
        .map_err(|e| pg(&e))?;
        tx.commit().await.map_err(|e| pg(&e))
    }

    async fn touch(
        &self,
        id_digest: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<Option<SessionRow>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                "SELECT id_digest, subject, csrf, created_ms, last_seen_ms FROM sessions WHERE id_digest = $1",
                &[&id_digest],
            )
            .await
            .map_err(|e| pg(&e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut session = SessionRow {
            id_digest: row.try_get(0).map_err(|e| pg(&e))?,
            subject: row.try_get(1).map_err(|e| pg(&e))?,
            csrf: row.try_get(2).map_err(|e| pg(&e))?,
            created_ms: row.try_get(3).map_err(|e| pg(&e))?,
            last_seen_ms: row.try_get(4).map_err(|e| pg(&e))?,
        };
        if limits.expired(&session, now_ms) {
            client
                .execute("DELETE FROM sessions WHERE id_digest = $1", &[&id_digest])
                .await
                .map_err(|e| pg(&e))?;
            return Ok(None);
        }
        if now_ms - session.last_seen_ms >= TOUCH_GRANULARITY_MS {
            client
                .execute(
                    "UPDATE sessions SET last_seen_ms = greatest(last_seen_ms, $2) WHERE id_digest = $1",
                    &[&id_digest, &now_ms],
                )
                .await
                .map_err(|e| pg(&e))?;
            session.last_seen_ms = now_ms;
        }
        Ok(Some(session))
    }

    async fn revoke(&self, id_digest: &str) -> Result<()> {
        let client = self.db.get().await?;
        client
            .execute("DELETE FROM sessions WHERE id_digest = $1", &[&id_digest])
            .await
            .map_err(|e| pg(&e))?;
        Ok(())
    }
}
