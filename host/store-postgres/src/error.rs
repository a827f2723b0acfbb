//! Mapping driver and pool errors onto [`StoreError`].

use callboard_store::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// A driver error as a [`StoreError`]: connection-level failures are
/// `Unavailable` (the caller may retry later), everything else `Backend`.
pub(crate) fn pg(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let message = db.message();
        if is_unavailable_code(code) {
            return StoreError::Unavailable(format!("PostgreSQL: {message}"));
        }
        if *code == SqlState::QUERY_CANCELED {
            return StoreError::Backend(format!("PostgreSQL: {message} (statement timeout?)"));
        }
        return StoreError::Backend(format!("PostgreSQL {}: {message}", code.code()));
    }
    if is_connection_error(e) {
        return StoreError::Unavailable(format!("PostgreSQL connection: {}", describe(e)));
    }
    StoreError::Backend(format!("PostgreSQL: {}", describe(e)))
}

/// Whether a driver error means the connection (not the statement) failed.
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        return is_unavailable_code(db.code());
    }
    if e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    let text = e.to_string();
    [
        "error communicating with the server",
        "connection closed",
        "error connecting to server",
        "timeout waiting for server",
        "unexpected message from server",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
}

/// SQLSTATE codes that say the server is out of reach for now: class 08
/// (connection exceptions), administrator shutdown, crash shutdown, "the
/// database system is starting up", too many connections.
fn is_unavailable_code(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
}

/// Whether a driver error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The error and its causes on one line.
fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A pool error as a [`StoreError`].
pub(crate) fn pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Timeout(kind) => StoreError::Unavailable(format!(
            "PostgreSQL: no connection available ({})",
            match kind {
                deadpool_postgres::TimeoutType::Wait =>
                    "timed out waiting for a free pooled connection",
                deadpool_postgres::TimeoutType::Create => "timed out connecting",
                deadpool_postgres::TimeoutType::Recycle => "timed out checking a pooled connection",
            }
        )),
        PoolError::Backend(e) => pg(&e),
        PoolError::Closed => StoreError::Unavailable("PostgreSQL: the pool is closed".into()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Backend("PostgreSQL pool: no async runtime configured".into())
        }
        PoolError::PostCreateHook(e) => {
            StoreError::Unavailable(format!("PostgreSQL: setting up a connection failed: {e}"))
        }
    }
}

/// Rows of two columns as pairs.
pub(crate) fn pairs<A, B>(rows: &[tokio_postgres::Row]) -> Result<Vec<(A, B)>, StoreError>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
{
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(|e| pg(&e))?,
                r.try_get(1).map_err(|e| pg(&e))?,
            ))
        })
        .collect()
}
