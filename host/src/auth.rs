//! Who may change things: bearer tokens (the admin token and the API tokens
//! from `[server]`) and the admin pages' sessions.
//!
//! Tokens are kept and compared as SHA-256 digests: comparing digests keeps
//! the comparison's timing independent of how much of a guess was right, and
//! the config file holds no secret. Sessions are random 256-bit ids, kept
//! in the shared store by digest (valid on every replica and across
//! restarts), with an idle and an absolute expiry, and revoked at sign-out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callboard_store::SessionStore;
use callboard_store::sessions::SessionLimits;
use sha2::{Digest, Sha256};

use crate::server::config::ServerConfig;

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// SHA-256 of `text`.
pub fn digest(text: &str) -> Digest32 {
    Sha256::digest(text.as_bytes()).into()
}

/// Why the tokens could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// An `[[server.api_tokens]]` digest is not 64 hex digits.
    #[error("server.api_tokens: the sha256 of token \"{0}\" is not 64 hex digits")]
    BadDigest(String),
    /// `server.api_tokens_file` could not be read.
    #[error("server.api_tokens_file {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No randomness from the operating system.
    #[error("cannot generate a random session id: {0}")]
    Random(String),
    /// The session store failed.
    #[error("cannot store the session: {0}")]
    Store(String),
}

/// The tokens that may write to the catalog.
#[derive(Debug)]
pub struct Tokens {
    admin: Digest32,
    api: Vec<(String, Digest32)>,
}

impl Tokens {
    /// The admin token plus the API tokens `config` lists or names a file of.
    pub fn load(admin_token: &str, config: &ServerConfig) -> Result<Self, AuthError> {
        let mut api = Vec::new();
        for t in &config.api_tokens {
            let bytes = hex::decode(t.sha256.trim())
                .ok()
                .and_then(|b| Digest32::try_from(b).ok())
                .ok_or_else(|| AuthError::BadDigest(t.name.clone()))?;
            api.push((t.name.clone(), bytes));
        }
        if let Some(path) = &config.api_tokens_file {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::File {
                path: path.clone(),
                source,
            })?;
            let lines = text.lines().map(str::trim);
            for (n, line) in lines.enumerate() {
                if !line.is_empty() && !line.starts_with('#') {
                    api.push((format!("{}:{}", path.display(), n + 1), digest(line)));
                }
            }
        }
        Ok(Self {
            admin: digest(admin_token.trim()),
            api,
        })
    }

    /// Whether `offered` is the admin token.
    pub fn is_admin(&self, offered: &str) -> bool {
        digest(offered.trim()) == self.admin
    }

    /// Who `offered` belongs to (`admin`, or the API token's name), if anyone.
    pub fn holder(&self, offered: &str) -> Option<&str> {
        let offered = digest(offered.trim());
        if offered == self.admin {
            return Some("admin");
        }
        self.api
            .iter()
            .find(|(_, d)| *d == offered)
            .map(|(name, _)| name.as_str())
    }
}

/// The `Bearer` token of a request, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// 32 random bytes, hex.
pub fn random_hex() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// What a valid session carries for the pages.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session id, as the cookie holds it (to revoke it at sign-out).
    pub id: String,
    /// Who signed in: [`ADMIN_SUBJECT`] (with the admin token) or a user
    /// entity ref (`user:default/alice`).
    pub subject: String,
    /// The token every admin form carries, bound to this session.
    pub csrf: String,
}

impl SessionInfo {
    /// Whether a form's CSRF token is this session's.
    pub fn csrf_matches(&self, offered: &str) -> bool {
        digest(offered) == digest(&self.csrf)
    }
}

/// The subject of a session signed in with the admin token.
pub const ADMIN_SUBJECT: &str = "admin";

/// Sessions (people and the admin token), in the shared store ([`SessionStore`]) by digest of
/// their id, so that every replica knows them.
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    limits: SessionLimits,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

impl Sessions {
    /// Sessions kept in `store`, with `config`'s expiry and cap.
    pub fn new(store: Arc<dyn SessionStore>, config: &ServerConfig) -> Self {
        Self {
            store,
            limits: SessionLimits {
                idle_ms: millis(Duration::from_secs(config.session_idle_secs.max(1))),
                max_age_ms: millis(Duration::from_secs(config.session_max_secs.max(1))),
                max_sessions: config.max_sessions.max(1),
            },
        }
    }

    /// Starts a session for `subject` ([`ADMIN_SUBJECT`] or a user entity
    /// ref); returns its id and CSRF token.
    pub async fn create(&self, subject: &str) -> Result<SessionInfo, AuthError> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        self.store
            .create(
                &hex::encode(digest(&id)),
                subject,
                &csrf,
                &self.limits,
                now_ms(),
            )
            .await
            .map_err(|e| AuthError::Store(e.to_string()))?;
        Ok(SessionInfo {
            id,
            subject: subject.to_owned(),
            csrf,
        })
    }

    /// The live session with id `id`, its idle time restarted; expired
    /// sessions are dropped. `None` too while the database is unreachable
    /// (logged): the pages then ask to sign in.
    pub async fn check(&self, id: &str) -> Option<SessionInfo> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        match self
            .store
            .touch(&hex::encode(digest(id)), &self.limits, now_ms())
            .await
        {
            Ok(session) => session.map(|s| SessionInfo {
                id: id.to_owned(),
                subject: s.subject,
                csrf: s.csrf,
            }),
            Err(e) => {
                tracing::error!("sessions: {e}");
                None
            }
        }
    }

    /// Ends session `id` (sign-out), on every replica.
    pub async fn revoke(&self, id: &str) {
        if let Err(e) = self.store.revoke(&hex::encode(digest(id))).await {
            tracing::error!("sessions: revoking: {e}");
        }
    }

    /// How long a session may live (the cookie's Max-Age).
    pub fn max_age(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.limits.max_age_ms).unwrap_or(0))
    }
}
