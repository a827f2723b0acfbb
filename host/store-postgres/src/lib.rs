//! Callboard's replica storage backend: PostgreSQL through `tokio-postgres`
//! and a `deadpool` pool.
//!
//! [`connect`] opens a pool, applies the versioned migrations under an
//! advisory lock (replicas starting together never race), starts the change
//! feed's `LISTEN` task and returns every store of [`Stores`]. The stores
//! mirror the SQLite backend's semantics; see each module for the SQL.
//!
//! Connections are plain TCP (`NoTls`): the database is expected on
//! loopback or a private network. A connection the server dropped
//! (restart, `pg_terminate_backend`) is noticed when the pool hands it out
//! again (a test query) and replaced; callers see `StoreError::Unavailable`
//! only for the operation that was running when it broke.

mod access;
mod catalog;
mod coord;
mod docs;
mod error;
mod kv;
mod plugins;
mod policies;
mod query;
mod schema;
mod search;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use callboard_store::{Admin, Result, SchemaStatus, StoreError, Stores};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use crate::error::pg;

/// How to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections in the pool (the feed listener and migrations use
    /// one more each, outside the pool).
    pub max_connections: usize,
    /// Longest wait to connect, and to get a pooled connection.
    pub connect_timeout: Duration,
    /// Longest a single statement may run (set on every connection).
    pub statement_timeout: Duration,
    /// Password, overriding the URL's (so it can come from a secret file).
    pub password: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            password: None,
        }
    }
}

/// What every store shares: the pool and how to open more connections.
pub(crate) struct Db {
    pool: Pool,
    /// Configuration of the pool's connections (for dedicated ones).
    config: tokio_postgres::Config,
    /// The URL without password.
    location: String,
}

impl Db {
    /// A pooled connection; a broken one is never handed out (the pool
    /// verifies each one with a round trip before reuse).
    pub(crate) async fn get(&self) -> Result<Conn> {
        let span =
            tracing::info_span!("db", otel.name = "postgres batch", db.system = "postgresql");
        let started = std::time::Instant::now();
        let object = self.pool.get().await.map_err(error::pool)?;
        let waited = started.elapsed();
        // A connection handed out at once did not wait; only waits are timed.
        if waited > std::time::Duration::from_micros(200) {
            metrics::histogram!(callboard_store::metrics::DB_POOL_WAIT, "backend" => "postgres")
                .record(waited.as_secs_f64());
        }
        Ok(Conn {
            object,
            _span: span,
        })
    }

    fn pool_status(&self) -> callboard_store::PoolStatus {
        let status = self.pool.status();
        callboard_store::PoolStatus {
            open: status.size,
            idle: status.available,
            max: status.max_size,
            waiting: status.waiting,
        }
    }
}

/// A pooled connection for one batch of queries; its `db` span (a trace's
/// database span) lasts as long as it is held.
pub(crate) struct Conn {
    object: Object,
    _span: tracing::Span,
}

impl Conn {
    /// Closes the connection instead of returning it to the pool.
    pub(crate) fn discard(conn: Self) {
        drop(Object::take(conn.object));
    }
}

impl std::ops::Deref for Conn {
    type Target = Object;

    fn deref(&self) -> &Object {
        &self.object
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        &mut self.object
    }
}

/// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`
/// or key-value form), migrates every store to this build's schema and
/// returns them. Fails with [`StoreError::SchemaTooNew`] when the database
/// was migrated by a newer build, and with [`StoreError::Unavailable`] when
/// it cannot be reached.
pub async fn connect(url: &str, options: &PgOptions) -> Result<Stores> {
    let config = config(url, options)?;
    {
        let mut client = connect_one(&config).await?;
        schema::migrate(&mut client).await?;
    }
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
    let db = Arc::new(Db {
        pool,
        location: location(&config),
        config,
    });
    let feed = Arc::new(coord::PgFeed::start(db.clone()));
    Ok(Stores {
        catalog: Arc::new(catalog::PgCatalog::new(db.clone())),
        kv: Arc::new(kv::PgKv::new(db.clone())),
        leases: Arc::new(coord::PgLeases::new(db.clone())),
        sessions: Arc::new(sessions::PgSessions::new(db.clone())),
        counters: Arc::new(coord::PgCounters::new(db.clone())),
        feed,
        plugins: Arc::new(plugins::PgPlugins::new(db.clone())),
        tokens: Arc::new(access::PgTokens::new(db.clone())),
        policies: Arc::new(policies::PgPolicies::new(db.clone())),
        audit: Arc::new(access::PgAudit::new(db.clone())),
        search: Arc::new(search::PgSearch::new(db.clone())),
        docs: Arc::new(docs::PgDocs::new(db.clone())),
        admin: Arc::new(PgAdmin { db }),
    })
}

/// The schema version of each store, without migrating anything (for
/// `callboard db status`).
pub async fn schema_status(url: &str, options: &PgOptions) -> Result<Vec<SchemaStatus>> {
    let config = config(url, options)?;
    let client = connect_one(&config).await?;
    schema::status(&client).await
}

/// Parses the URL and applies the options.
fn config(url: &str, options: &PgOptions) -> Result<tokio_postgres::Config> {
    // The URL may hold a password: never echo it.
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::input(format!("invalid PostgreSQL URL: {e}")))?;
    if let Some(password) = &options.password {
        config.password(password.as_bytes());
    }
    config.connect_timeout(options.connect_timeout);
    let millis = options.statement_timeout.as_millis().max(1);
    let mut server_options = config.get_options().unwrap_or_default().to_owned();
    if !server_options.is_empty() {
        server_options.push(' ');
    }
    // JIT compiles a query whose estimated cost is high, which a catalog
    // page's estimate often is even though it stops after a page: tens of
    // milliseconds of compiling for a query that runs in one or two.
    server_options.push_str(&format!("-c statement_timeout={millis} -c jit=off"));
    config.options(server_options);
    if config.get_application_name().is_none() {
        config.application_name("callboard");
    }
    config.keepalives_idle(Duration::from_secs(60));
    Ok(config)
}

/// Opens one connection outside the pool, its I/O driven by a task.
pub(crate) async fn connect_one(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| pg(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// `postgres://user@host:port/db`, without the password.
fn location(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) if name.contains(':') => format!("[{name}]"),
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("postgres://{at}{host}:{port}/{db}")
}

/// Health and schema.
struct PgAdmin {
    db: Arc<Db>,
}

#[async_trait::async_trait]
impl Admin for PgAdmin {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.db.location.clone()
    }

    async fn ping(&self) -> Result<()> {
        let client = self.db.get().await?;
        client.simple_query("SELECT 1").await.map_err(|e| pg(&e))?;
        Ok(())
    }

    async fn schema(&self) -> Result<Vec<SchemaStatus>> {
        let client = self.db.get().await?;
        schema::status(&client).await
    }

    fn pool(&self) -> callboard_store::PoolStatus {
        self.db.pool_status()
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String> {
        let client = self.db.get().await?;
        client
            .execute(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate],
            )
            .await
            .map_err(|e| pg(&e))?;
        let row = client
            .query_one("SELECT value FROM secrets WHERE name = $1", &[&name])
            .await
            .map_err(|e| pg(&e))?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_hides_the_password() {
        let options = PgOptions::default();
        let c = config("postgres://app:secret@db.internal:6543/callboard", &options).unwrap();
        assert_eq!(location(&c), "postgres://app@db.internal:6543/callboard");
        assert_eq!(
            c.get_options(),
            Some("-c statement_timeout=30000 -c jit=off"),
            "statement timeout set on every connection"
        );
        let c = config("host=127.0.0.1 user=u dbname=d", &options).unwrap();
        assert_eq!(location(&c), "postgres://u@127.0.0.1:5432/d");
        assert!(config("postgres://x:y@h:notaport/d", &options).is_err());
    }
}
