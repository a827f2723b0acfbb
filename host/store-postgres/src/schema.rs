//! Versioned migrations, applied at start-up under an advisory lock so that
//! replicas starting together never race.
//!
//! Every text column that is compared, sorted or used as a range is
//! `COLLATE "C"`: byte order, like SQLite's `BINARY`, whatever the
//! database's default collation, so both backends order alike and prefix
//! ranges can use the btree indexes.

use callboard_store::{SchemaStatus, StoreError};
use tokio_postgres::Client;

use crate::error::pg;

/// Key of the session advisory lock held while migrating (an arbitrary
/// constant: "callboard" in ASCII, truncated to 64 bits).
pub(crate) const MIGRATION_LOCK: i64 = 0x6361_6c6c_626f_6172;

/// One store's ordered migrations; the index + 1 is the schema version.
pub(crate) struct StoreSchema {
    /// Name in `schema_migrations`.
    pub(crate) store: &'static str,
    /// SQL of each version.
    pub(crate) migrations: &'static [&'static str],
}

impl StoreSchema {
    fn supported(&self) -> i64 {
        i64::try_from(self.migrations.len()).unwrap_or(i64::MAX)
    }
}

const CATALOG_V1: &str = r#"
CREATE TABLE locations (
    ord bigserial NOT NULL,
    id text COLLATE "C" PRIMARY KEY,
    type text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    source text COLLATE "C" NOT NULL,
    UNIQUE (type, target)
);
CREATE INDEX locations_ord ON locations (ord);
CREATE TABLE entities (
    id bigserial PRIMARY KEY,
    ref text COLLATE "C" NOT NULL UNIQUE,
    uid text COLLATE "C" NOT NULL UNIQUE,
    kind text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    location_id text COLLATE "C",
    parent_ref text COLLATE "C",
    location_key text COLLATE "C",
    hash text COLLATE "C" NOT NULL,
    spec_hash text COLLATE "C" NOT NULL,
    generation bigint NOT NULL,
    orphan boolean NOT NULL DEFAULT false,
    body text NOT NULL,
    doc text NOT NULL DEFAULT ''
);
CREATE INDEX entities_location ON entities (location_id);
CREATE INDEX entities_name ON entities (name, id);
CREATE TABLE search (
    entity_id bigint NOT NULL,
    key text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    original text COLLATE "C",
    PRIMARY KEY (entity_id, key, value)
);
-- Ordered by entity within a (key, value): conditions merge-join, and
-- facets count with index-only scans.
CREATE INDEX search_kv ON search (key, value, entity_id) INCLUDE (original);
-- Keys and values are strongly correlated: without these the planner
-- multiplies their selectivities and misjudges every filter.
CREATE STATISTICS search_kv_stats (mcv, dependencies) ON key, value FROM search;
ALTER TABLE search ALTER COLUMN key SET STATISTICS 1000;
ALTER TABLE search ALTER COLUMN value SET STATISTICS 1000;
CREATE TABLE relations (
    origin_id bigint NOT NULL,
    source text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    target_display text COLLATE "C" NOT NULL
);
-- The writer stores each entity's relations once per (source, type,
-- target), compared case-insensitively on the type like SQLite's key; a
-- narrow index serves deletes by entity.
CREATE INDEX relations_origin ON relations (origin_id);
CREATE INDEX relations_source ON relations (source, lower(type), target, target_display);
CREATE INDEX relations_target ON relations (lower(type), target, source);
"#;

/// Content hashes of the files and URLs a location read cleanly.
const CATALOG_V2: &str = r#"
CREATE TABLE sources (
    location_id text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    key text COLLATE "C" NOT NULL,
    hash text COLLATE "C" NOT NULL,
    PRIMARY KEY (location_id, key)
);
CREATE INDEX entities_source ON entities (location_key);
"#;

/// The planner loads the `(key, value)` statistics at every plan, and a
/// 1,000-entry list (the columns' target) was half of planning a catalog
/// query; the 100 most common pairs keep the correlation it needs.
const CATALOG_V3: &str = "ALTER STATISTICS search_kv_stats SET STATISTICS 100;";

/// Rendering reads an entity's relations by source in (type, target as
/// displayed) order: with those columns in the index it is an index-only
/// scan, not a bitmap scan and a sort per entity (11 µs against 220 µs for
/// an entity with 50 relations). Filters on `relations.<type>` still find
/// the source's few rows by the first column.
const CATALOG_V4: &str = "
DROP INDEX relations_source;
CREATE INDEX relations_source ON relations (source, type, target_display);
";

const KV_V1: &str = r#"
CREATE TABLE kv (
    plugin text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (plugin, key)
);
CREATE TABLE kv_usage (
    plugin text COLLATE "C" PRIMARY KEY,
    bytes bigint NOT NULL
);
"#;

const COORDINATION_V1: &str = r#"
CREATE TABLE leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text COLLATE "C",
    expires_at timestamptz,
    due_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE feed (
    seq bigserial PRIMARY KEY,
    topic text COLLATE "C" NOT NULL,
    payload json NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_at ON feed (at);
"#;

const COORDINATION_V2: &str = r#"
CREATE TABLE secrets (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
"#;

const PLUGINS_V1: &str = r#"
CREATE TABLE plugin_files (
    id text COLLATE "C" PRIMARY KEY,
    digest text NOT NULL,
    wasm bytea NOT NULL,
    license text,
    revision bigint NOT NULL
);
"#;

/// Files removed, so that a replica's stale plugins folder does not bring
/// them back.
const PLUGINS_V2: &str = r#"
CREATE TABLE plugin_removals (
    id text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    PRIMARY KEY (id, digest)
);
"#;

/// Every store this build knows, in `callboard db status` order.
pub(crate) const STORES: &[StoreSchema] = &[
    StoreSchema {
        store: "catalog",
        migrations: &[
            CATALOG_V1,
            CATALOG_V2,
            CATALOG_V3,
            CATALOG_V4,
            crate::search::CATALOG_V5,
            crate::search::CATALOG_V6,
        ],
    },
    StoreSchema {
        store: "kv",
        migrations: &[KV_V1],
    },
    StoreSchema {
        store: "coordination",
        migrations: &[
            COORDINATION_V1,
            COORDINATION_V2,
            crate::sessions::COORDINATION_V3,
            crate::coord::COORDINATION_V4,
            crate::access::COORDINATION_V5,
            crate::policies::COORDINATION_V6,
        ],
    },
    StoreSchema {
        store: "plugins",
        migrations: &[PLUGINS_V1, PLUGINS_V2],
    },
    StoreSchema {
        store: "docs",
        migrations: &[crate::docs::DOCS_V1, crate::docs::DOCS_V2],
    },
];

const VERSIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    store text COLLATE \"C\" PRIMARY KEY,
    version integer NOT NULL
)";

/// The version each store holds (0 when it has none, or when the versions
/// table does not exist yet).
pub(crate) async fn status(client: &Client) -> Result<Vec<SchemaStatus>, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(|e| pg(&e))?
        .get(0);
    let mut out = Vec::with_capacity(STORES.len());
    for schema in STORES {
        let version = if exists {
            client
                .query_opt(
                    "SELECT version FROM schema_migrations WHERE store = $1",
                    &[&schema.store],
                )
                .await
                .map_err(|e| pg(&e))?
                .map_or(0, |r| i64::from(r.get::<_, i32>(0)))
        } else {
            0
        };
        out.push(SchemaStatus {
            store: schema.store.to_owned(),
            version,
            supported: schema.supported(),
        });
    }
    Ok(out)
}

/// Brings every store to this build's version, holding the migration lock;
/// refuses a database newer than the build. `client` is a dedicated
/// connection (its session lock goes away with it if anything fails).
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    // Migrations may build indexes over large tables: no statement timeout.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .map_err(|e| pg(&e))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| pg(&e))?;
    let result = migrate_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked.map_err(|e| pg(&e))?;
    Ok(())
}

async fn migrate_locked(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(VERSIONS_TABLE)
        .await
        .map_err(|e| pg(&e))?;
    let current = status(client).await?;
    if let Some(too_new) = current.iter().find(|s| s.version > s.supported) {
        return Err(StoreError::SchemaTooNew {
            store: too_new.store.clone(),
            found: too_new.version,
            supported: too_new.supported,
        });
    }
    for (schema, state) in STORES.iter().zip(&current) {
        let done = usize::try_from(state.version).unwrap_or(0);
        for (i, sql) in schema.migrations.iter().enumerate().skip(done) {
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let tx = client.transaction().await.map_err(|e| pg(&e))?;
            tx.batch_execute(sql).await.map_err(|e| pg(&e))?;
            tx.execute(
                "INSERT INTO schema_migrations (store, version) VALUES ($1, $2)
                 ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version",
                &[&schema.store, &version],
            )
            .await
            .map_err(|e| pg(&e))?;
            tx.commit().await.map_err(|e| pg(&e))?;
            tracing::info!(store = schema.store, version, "PostgreSQL schema migrated");
        }
    }
    ensure_trigram_index(client).await
}

/// Trigram GIN indexes: the catalog's full-text filter is `doc LIKE
/// '%term%'`, and the search index's infix tier is `folded LIKE '%term%'`;
/// a `pg_trgm` GIN index makes both fast. The extension is trusted since
/// PostgreSQL 13 (any user with CREATE on the database may install it);
/// where it cannot be installed, both still work, by scanning. Retried at
/// every start-up until they exist.
async fn ensure_trigram_index(client: &mut Client) -> Result<(), StoreError> {
    ensure_trigram(
        client,
        "entities_doc",
        "entities",
        "doc",
        "full-text filters",
    )
    .await?;
    ensure_trigram(
        client,
        "search_docs_folded",
        "search_docs",
        "folded",
        "search inside words",
    )
    .await
}

/// Creates the trigram index `index` on `table (column)` unless it exists;
/// `what` names the feature it speeds up in the warning.
async fn ensure_trigram(
    client: &mut Client,
    index: &str,
    table: &str,
    column: &str,
    what: &str,
) -> Result<(), StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&index])
        .await
        .map_err(|e| pg(&e))?
        .get(0);
    if exists {
        return Ok(());
    }
    let tx = client.transaction().await.map_err(|e| pg(&e))?;
    let created = tx
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm;
             CREATE INDEX {index} ON {table} USING gin ({column} gin_trgm_ops);"
        ))
        .await;
    match created {
        Ok(()) => {
            tx.commit().await.map_err(|e| pg(&e))?;
        }
        Err(e) if crate::error::is_connection_error(&e) => return Err(pg(&e)),
        Err(e) => {
            drop(tx);
            tracing::warn!(
                error = %pg(&e),
                "pg_trgm is not available: {what} will scan instead of using an index"
            );
        }
    }
    Ok(())
}
