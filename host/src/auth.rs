//! Who may change things: bearer tokens (the admin token and the API tokens
//! from `[server]`) and the admin pages' sessions.
//!
//! Tokens are kept and compared as SHA-256 digests: comparing digests keeps
//! the comparison's timing independent of how much of a guess was right, and
//! the config file holds no secret. Sessions are random 256-bit ids, kept
//! in memory by digest (a restart signs every administrator out; a later
//! change moves them into the shared store), with an idle and an absolute
//! expiry, and revoked at sign-out.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use crate::server::config::ServerConfig;

type Digest32 = [u8; 32];

fn digest(text: &str) -> Digest32 {
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

/// One signed-in administrator.
#[derive(Debug, Clone)]
struct Session {
    created: Instant,
    last_seen: Instant,
    csrf: String,
}

/// What a valid session carries for the pages.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session id, as the cookie holds it (to revoke it at sign-out).
    pub id: String,
    /// The token every admin form carries, bound to this session.
    pub csrf: String,
}

impl SessionInfo {
    /// Whether a form's CSRF token is this session's.
    pub fn csrf_matches(&self, offered: &str) -> bool {
        digest(offered) == digest(&self.csrf)
    }
}

/// The admin sessions, in memory, by digest of their id.
#[derive(Debug)]
pub struct Sessions {
    by_digest: Mutex<HashMap<Digest32, Session>>,
    idle: Duration,
    max_age: Duration,
    max_sessions: usize,
}

impl Sessions {
    /// An empty store with `config`'s expiry and cap.
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            by_digest: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(config.session_idle_secs.max(1)),
            max_age: Duration::from_secs(config.session_max_secs.max(1)),
            max_sessions: config.max_sessions.max(1),
        }
    }

    /// Starts a session; returns its id and CSRF token.
    pub fn create(&self) -> Result<SessionInfo, AuthError> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        let mut sessions = self.lock();
        self.prune(&mut sessions, now);
        if sessions.len() >= self.max_sessions
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&id),
            Session {
                created: now,
                last_seen: now,
                csrf: csrf.clone(),
            },
        );
        Ok(SessionInfo { id, csrf })
    }

    /// The live session with id `id`, its idle time restarted; expired
    /// sessions are dropped.
    pub fn check(&self, id: &str) -> Option<SessionInfo> {
        let now = Instant::now();
        let key = digest(id);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&key)?;
        if self.expired(session, now) {
            sessions.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(SessionInfo {
            id: id.to_owned(),
            csrf: session.csrf.clone(),
        })
    }

    /// Ends session `id` (sign-out).
    pub fn revoke(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// How long a session may live (the cookie's Max-Age).
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) >= self.idle
            || now.duration_since(s.created) >= self.max_age
    }

    fn prune(&self, sessions: &mut HashMap<Digest32, Session>, now: Instant) {
        sessions.retain(|_, s| !self.expired(s, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, Session>> {
        self.by_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
