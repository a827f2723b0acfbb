//! API tokens and the audit log in the coordination store.

use std::sync::Arc;

use callboard_store::access::{
    AuditLog, AuditRow, TokenRow, TokenStore, audit_page, check_audit, check_token,
};
use callboard_store::sessions::TOUCH_GRANULARITY_MS;
use callboard_store::{Result, StoreError};
use tokio_postgres::Row;

use crate::Db;
use crate::error::pg;

/// Migration of the tokens and audit tables (the coordination store's
/// fifth).
pub(crate) const COORDINATION_V5: &str = r#"
CREATE TABLE api_tokens (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    digest text COLLATE "C" NOT NULL UNIQUE,
    permissions text[] NOT NULL,
    created_by text NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint,
    last_used_ms bigint,
    revoked_ms bigint
);
CREATE INDEX api_tokens_created ON api_tokens (created_ms, id);
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail json NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
"#;

/// The columns [`token`] reads, in its order.
const TOKEN_COLUMNS: &str =
    "id, name, digest, permissions, created_by, created_ms, expires_ms, last_used_ms, revoked_ms";

/// A token row read with [`TOKEN_COLUMNS`].
fn token(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.try_get(0).map_err(|e| pg(&e))?,
        name: r.try_get(1).map_err(|e| pg(&e))?,
        digest: r.try_get(2).map_err(|e| pg(&e))?,
        permissions: r.try_get(3).map_err(|e| pg(&e))?,
        created_by: r.try_get(4).map_err(|e| pg(&e))?,
        created_ms: r.try_get(5).map_err(|e| pg(&e))?,
        expires_ms: r.try_get(6).map_err(|e| pg(&e))?,
        last_used_ms: r.try_get(7).map_err(|e| pg(&e))?,
        revoked_ms: r.try_get(8).map_err(|e| pg(&e))?,
    })
}

/// API tokens on PostgreSQL.
pub(crate) struct PgTokens {
    db: Arc<Db>,
}

impl PgTokens {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl TokenStore for PgTokens {
    async fn create_token(&self, row: &TokenRow) -> Result<()> {
        check_token(row)?;
        let client = self.db.get().await?;
        // Without a conflict target, DO NOTHING covers both the id and the
        // digest, and concurrent creates of one of them wait for each other.
        let n = client
            .execute(
                "INSERT INTO api_tokens (id, name, digest, permissions, created_by, created_ms,
                     expires_ms, last_used_ms, revoked_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING",
                &[
                    &row.id,
                    &row.name,
                    &row.digest,
                    &row.permissions,
                    &row.created_by,
                    &row.created_ms,
                    &row.expires_ms,
                    &row.last_used_ms,
                    &row.revoked_ms,
                ],
            )
            .await
            .map_err(|e| pg(&e))?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "an API token with id {} or with the same secret exists",
                row.id
            )));
        }
        Ok(())
    }

    async fn use_token(&self, digest: &str, now_ms: i64) -> Result<Option<TokenRow>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = $1"),
                &[&digest],
            )
            .await
            .map_err(|e| pg(&e))?;
        let Some(mut row) = row.map(|r| token(&r)).transpose()? else {
            return Ok(None);
        };
        if !row.live(now_ms) {
            return Ok(None);
        }
        if row
            .last_used_ms
            .is_none_or(|last| now_ms - last >= TOUCH_GRANULARITY_MS)
        {
            client
                .execute(
                    "UPDATE api_tokens SET last_used_ms = greatest(last_used_ms, $2) WHERE id = $1",
                    &[&row.id, &now_ms],
                )
                .await
                .map_err(|e| pg(&e))?;
            row.last_used_ms = Some(now_ms);
        }
        Ok(Some(row))
    }

    async fn list_tokens(&self, limit: usize) -> Result<Vec<TokenRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.db.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ms DESC, id DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter().map(token).collect()
    }

    async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
        let client = self.db.get().await?;
        let n = client
            .execute(
                "UPDATE api_tokens SET revoked_ms = $2
                 WHERE id = $1 AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > $2)",
                &[&id, &now_ms],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(n > 0)
    }
}

/// The audit log on PostgreSQL.
pub(crate) struct PgAudit {
    db: Arc<Db>,
}

impl PgAudit {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl AuditLog for PgAudit {
    async fn record(&self, row: &AuditRow) -> Result<i64> {
        check_audit(row)?;
        let client = self.db.get().await?;
        let inserted = client
            .query_one(
                "INSERT INTO audit_log (at_ms, actor, action, target, detail)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &row.at_ms,
                    &row.actor,
                    &row.action,
                    &row.target,
                    &row.detail,
                ],
            )
            .await
            .map_err(|e| pg(&e))?;
        inserted.try_get(0).map_err(|e| pg(&e))
    }

    async fn entries(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>> {
        let limit = i64::try_from(audit_page(limit)).unwrap_or(0);
        let before = before.unwrap_or(i64::MAX);
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT id, at_ms, actor, action, target, detail FROM audit_log
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[&before, &limit],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get(0).map_err(|e| pg(&e))?,
                    at_ms: r.try_get(1).map_err(|e| pg(&e))?,
                    actor: r.try_get(2).map_err(|e| pg(&e))?,
                    action: r.try_get(3).map_err(|e| pg(&e))?,
                    target: r.try_get(4).map_err(|e| pg(&e))?,
                    detail: r.try_get(5).map_err(|e| pg(&e))?,
                })
            })
            .collect()
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64> {
        let client = self.db.get().await?;
        client
            .execute("DELETE FROM audit_log WHERE at_ms < $1", &[&older_than_ms])
            .await
            .map_err(|e| pg(&e))
    }
}
