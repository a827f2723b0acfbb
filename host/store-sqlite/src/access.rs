//! API tokens and the audit log in `coord.sqlite` (beside sessions, apart
//! from the catalog's writer, so a long ingestion never delays a sign-in
//! or an audit entry).

use std::sync::Arc;

use callboard_store::access::{
    AuditLog, AuditRow, TokenRow, TokenStore, audit_page, check_audit, check_token,
};
use callboard_store::sessions::TOUCH_GRANULARITY_MS;
use callboard_store::{Result, StoreError};
use rusqlite::{OptionalExtension, Row, params};

use crate::db::Db;

/// Migration of the tokens and audit tables (appended to the leases
/// store's). Ids of audit entries are AUTOINCREMENT: never reused, even
/// after the newest entries are pruned, so a page cursor stays valid.
pub(crate) const ACCESS_V5: &str = "
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    permissions TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    last_used_ms INTEGER,
    revoked_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS api_tokens_created ON api_tokens (created_ms, id);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at_ms);";

/// The columns [`token`] reads, in its order.
const TOKEN_COLUMNS: &str =
    "id, name, digest, permissions, created_by, created_ms, expires_ms, last_used_ms, revoked_ms";

/// Permission names as stored: a JSON array of strings.
fn permissions_text(permissions: &[String]) -> String {
    serde_json::Value::from(permissions.to_vec()).to_string()
}

/// A token row read with [`TOKEN_COLUMNS`]; unreadable permissions are
/// [`StoreError::Corrupt`].
fn token(r: &Row<'_>) -> rusqlite::Result<std::result::Result<TokenRow, StoreError>> {
    let id: String = r.get(0)?;
    let permissions: String = r.get(3)?;
    let permissions = match serde_json::from_str(&permissions) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Err(StoreError::Corrupt(format!(
                "permissions of API token {id}: {e}"
            ))));
        }
    };
    Ok(Ok(TokenRow {
        id,
        name: r.get(1)?,
        digest: r.get(2)?,
        permissions,
        created_by: r.get(4)?,
        created_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        last_used_ms: r.get(7)?,
        revoked_ms: r.get(8)?,
    }))
}

pub(crate) struct SqliteTokens {
    db: Arc<Db>,
}

impl SqliteTokens {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl TokenStore for SqliteTokens {
    async fn create_token(&self, row: &TokenRow) -> Result<()> {
        check_token(row)?;
        let row = row.clone();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO api_tokens (id, name, digest, permissions, created_by, created_ms,
                         expires_ms, last_used_ms, revoked_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT DO NOTHING",
                    params![
                        row.id,
                        row.name,
                        row.digest,
                        permissions_text(&row.permissions),
                        row.created_by,
                        row.created_ms,
                        row.expires_ms,
                        row.last_used_ms,
                        row.revoked_ms
                    ],
                )?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "an API token with id {} or with the same secret exists",
                        row.id
                    ))
                    .into());
                }
                Ok(())
            })
            .await
    }

    async fn use_token(&self, digest: &str, now_ms: i64) -> Result<Option<TokenRow>> {
        let digest = digest.to_owned();
        let found = self
            .db
            .read(move |c| {
                let row = c
                    .prepare_cached(&format!(
                        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = ?1"
                    ))?
                    .query_row([digest], token)
                    .optional()?;
                Ok(row.transpose()?)
            })
            .await?;
        let Some(mut row) = found.filter(|t| t.live(now_ms)) else {
            return Ok(None);
        };
        if row
            .last_used_ms
            .is_none_or(|last| now_ms - last >= TOUCH_GRANULARITY_MS)
        {
            let id = row.id.clone();
            self.db
                .write(move |tx| {
                    tx.execute(
                        "UPDATE api_tokens SET last_used_ms = max(coalesce(last_used_ms, ?2), ?2)
                         WHERE id = ?1",
                        params![id, now_ms],
                    )?;
                    Ok(())
                })
                .await?;
            row.last_used_ms = Some(now_ms);
        }
        Ok(Some(row))
    }

    async fn list_tokens(&self, limit: usize) -> Result<Vec<TokenRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ms DESC, id DESC LIMIT ?1"
                ))?;
                let rows = stmt.query_map([limit], token)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(row??);
                }
                Ok(out)
            })
            .await
    }

    async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
        let id = id.to_owned();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE api_tokens SET revoked_ms = ?2
                     WHERE id = ?1 AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?2)",
                    params![id, now_ms],
                )?;
                Ok(n > 0)
            })
            .await
    }
}

pub(crate) struct SqliteAudit {
    db: Arc<Db>,
}

impl SqliteAudit {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl AuditLog for SqliteAudit {
    async fn record(&self, row: &AuditRow) -> Result<i64> {
        let detail = check_audit(row)?;
        let row = row.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO audit_log (at_ms, actor, action, target, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    row.at_ms, row.actor, row.action, row.target, detail
                ])?;
                Ok(tx.last_insert_rowid())
            })
            .await
    }

    async fn entries(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>> {
        let limit = i64::try_from(audit_page(limit)).unwrap_or(0);
        let before = before.unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, at_ms, actor, action, target, detail FROM audit_log
                     WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![before, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, at_ms, actor, action, target, detail) = row?;
                    let detail = serde_json::from_str(&detail)
                        .map_err(|e| StoreError::Corrupt(format!("audit entry {id}: {e}")))?;
                    out.push(AuditRow {
                        id,
                        at_ms,
                        actor,
                        action,
                        target,
                        detail,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64> {
        self.db
            .write(move |tx| {
                let n = tx.execute("DELETE FROM audit_log WHERE at_ms < ?1", [older_than_ms])?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }
}
