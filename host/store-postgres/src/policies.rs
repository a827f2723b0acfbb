//! Access policy versions in the coordination store, beside the feed: a
//! publication and its [`ACCESS_TOPIC`] event commit in one transaction.
//!
//! Every change takes a transaction-scoped advisory lock first, so policy
//! writes from all replicas take turns (as on SQLite's single writer):
//! two replicas seeding at once store one version, and a publication never
//! interleaves with a draft's save or discard. Partial unique indexes keep
//! at most one draft and one published version whatever happens.

use std::sync::Arc;

use callboard_store::Result;
use callboard_store::access::{
    ACCESS_TOPIC, PolicyState, PolicyStore, PolicyVersion, SEED_AUTHOR, check_policy_document,
    check_text,
};
use serde_json::json;
use tokio_postgres::{Row, Transaction};

use crate::Db;
use crate::coord::append;
use crate::error::pg;

/// Migration of the policy versions (the coordination store's sixth).
pub(crate) const COORDINATION_V6: &str = r#"
CREATE TABLE policy_versions (
    id bigserial PRIMARY KEY,
    state text COLLATE "C" NOT NULL CHECK (state IN ('draft', 'published', 'inactive')),
    document text NOT NULL,
    author text NOT NULL,
    created_ms bigint NOT NULL,
    published_ms bigint,
    published_by text
);
CREATE UNIQUE INDEX policy_one_draft ON policy_versions (state) WHERE state = 'draft';
CREATE UNIQUE INDEX policy_one_published ON policy_versions (state) WHERE state = 'published';
"#;

/// Advisory lock serialising policy writes until their commit. Taken
/// before the feed's (in `append`), never after it.
const POLICY_LOCK: i64 = 0x6361_6c6c_706f_6c69; // "callpoli"

/// The columns [`version`] reads, in its order.
const COLUMNS: &str = "id, state, document, author, created_ms, published_ms, published_by";

/// A version read with [`COLUMNS`].
fn version(r: &Row) -> Result<PolicyVersion> {
    let state: String = r.try_get(1).map_err(|e| pg(&e))?;
    Ok(PolicyVersion {
        id: r.try_get(0).map_err(|e| pg(&e))?,
        state: PolicyState::parse(&state)?,
        document: r.try_get(2).map_err(|e| pg(&e))?,
        author: r.try_get(3).map_err(|e| pg(&e))?,
        created_ms: r.try_get(4).map_err(|e| pg(&e))?,
        published_ms: r.try_get(5).map_err(|e| pg(&e))?,
        published_by: r.try_get(6).map_err(|e| pg(&e))?,
    })
}

/// Takes the policy lock for the rest of `tx`.
async fn lock(tx: &Transaction<'_>) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_LOCK])
        .await
        .map_err(|e| pg(&e))?;
    Ok(())
}

/// Policy versions on PostgreSQL.
pub(crate) struct PgPolicies {
    db: Arc<Db>,
}

impl PgPolicies {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// The one version `filter` (SQL after `WHERE`, parameters `params`)
    /// selects, if any.
    async fn one(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<PolicyVersion>> {
        let client = self.db.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM policy_versions WHERE {filter}"),
                params,
            )
            .await
            .map_err(|e| pg(&e))?;
        row.map(|r| version(&r)).transpose()
    }
}

#[async_trait::async_trait]
impl PolicyStore for PgPolicies {
    async fn published(&self) -> Result<Option<PolicyVersion>> {
        self.one("state = 'published'", &[]).await
    }

    async fn version(&self, id: i64) -> Result<Option<PolicyVersion>> {
        self.one("id = $1", &[&id]).await
    }

    async fn versions(&self, limit: usize) -> Result<Vec<PolicyVersion>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.db.get().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM policy_versions ORDER BY id DESC LIMIT $1"),
                &[&limit],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter().map(version).collect()
    }

    async fn save_draft(&self, document: &str, author: &str, now_ms: i64) -> Result<i64> {
        check_policy_document(document, author)?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        lock(&tx).await?;
        // A new id at every save: a publish of the id a reviewer saw
        // refuses an edit made since.
        tx.execute("DELETE FROM policy_versions WHERE state = 'draft'", &[])
            .await
            .map_err(|e| pg(&e))?;
        let row = tx
            .query_one(
                "INSERT INTO policy_versions (state, document, author, created_ms)
                 VALUES ('draft', $1, $2, $3) RETURNING id",
                &[&document, &author, &now_ms],
            )
            .await
            .map_err(|e| pg(&e))?;
        let id: i64 = row.try_get(0).map_err(|e| pg(&e))?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(id)
    }

    async fn discard_draft(&self) -> Result<bool> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        lock(&tx).await?;
        let n = tx
            .execute("DELETE FROM policy_versions WHERE state = 'draft'", &[])
            .await
            .map_err(|e| pg(&e))?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(n > 0)
    }

    async fn publish(&self, id: i64, by: &str, now_ms: i64) -> Result<bool> {
        check_text("policy publisher", by)?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        lock(&tx).await?;
        let is_draft: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM policy_versions WHERE id = $1 AND state = 'draft')",
                &[&id],
            )
            .await
            .map_err(|e| pg(&e))?
            .try_get(0)
            .map_err(|e| pg(&e))?;
        if !is_draft {
            return Ok(false);
        }
        tx.execute(
            "UPDATE policy_versions SET state = 'inactive' WHERE state = 'published'",
            &[],
        )
        .await
        .map_err(|e| pg(&e))?;
        tx.execute(
            "UPDATE policy_versions SET state = 'published', published_ms = $2, published_by = $3
             WHERE id = $1",
            &[&id, &now_ms, &by],
        )
        .await
        .map_err(|e| pg(&e))?;
        append(tx.client(), ACCESS_TOPIC, &json!({ "version": id })).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(true)
    }

    async fn seed(&self, document: &str, now_ms: i64) -> Result<bool> {
        check_policy_document(document, SEED_AUTHOR)?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        // Under the lock, a later seeder's statements see the first one's
        // committed version (each statement takes a fresh snapshot at READ
        // COMMITTED), so it stores nothing.
        lock(&tx).await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM policy_versions)", &[])
            .await
            .map_err(|e| pg(&e))?
            .try_get(0)
            .map_err(|e| pg(&e))?;
        if any {
            return Ok(false);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO policy_versions
                     (state, document, author, created_ms, published_ms, published_by)
                 VALUES ('published', $1, $2, $3, $3, $2) RETURNING id",
                &[&document, &SEED_AUTHOR, &now_ms],
            )
            .await
            .map_err(|e| pg(&e))?
            .try_get(0)
            .map_err(|e| pg(&e))?;
        append(tx.client(), ACCESS_TOPIC, &json!({ "version": id })).await?;
        tx.commit().await.map_err(|e| pg(&e))?;
        Ok(true)
    }
}
