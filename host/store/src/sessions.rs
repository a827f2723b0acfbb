//! Server-side sessions, shared by every replica: a person signed in
//! through one replica is signed in on all of them, and a sign-out through
//! one ends the session everywhere.
//!
//! A session is stored under the SHA-256 digest of its id (the cookie's
//! value), never the id itself: reading the database does not give anyone
//! a usable cookie. Times are milliseconds since the Unix epoch, from the
//! caller's clock (replicas' clocks are assumed synchronised).

use crate::Result;

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Hex SHA-256 digest of the session id.
    pub id_digest: String,
    /// Who signed in (`admin` for the admin pages).
    pub subject: String,
    /// The CSRF token every state-changing form of this session carries.
    pub csrf: String,
    /// When it started.
    pub created_ms: i64,
    /// When it was last used.
    pub last_seen_ms: i64,
}

/// Expiry and cap of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long has expired.
    pub idle_ms: i64,
    /// A session this old has expired, however much it is used.
    pub max_age_ms: i64,
    /// Sessions that may live at once; a new one ends the oldest beyond it.
    pub max_sessions: usize,
}

impl SessionLimits {
    /// Whether `s` has expired at `now_ms`.
    pub fn expired(&self, s: &SessionRow, now_ms: i64) -> bool {
        now_ms - s.last_seen_ms >= self.idle_ms || now_ms - s.created_ms >= self.max_age_ms
    }
}

/// Last-use times closer together than this are not written again, so a
/// page load does not write to the database every time.
pub const TOUCH_GRANULARITY_MS: i64 = 1000;

/// The shared session store.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session (its `created_ms` and `last_seen_ms` are
    /// `now_ms`); drops expired sessions, and the oldest ones beyond
    /// `limits.max_sessions`.
    async fn create(
        &self,
        id_digest: &str,
        subject: &str,
        csrf: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<()>;
    /// The session if it is live at `now_ms`, its last use set to `now_ms`
    /// (unless it was set less than [`TOUCH_GRANULARITY_MS`] before); an
    /// expired one is removed and `None` returned.
    async fn touch(
        &self,
        id_digest: &str,
        limits: &SessionLimits,
        now_ms: i64,
    ) -> Result<Option<SessionRow>>;
    /// Ends a session (nothing if there is none).
    async fn revoke(&self, id_digest: &str) -> Result<()>;
}
