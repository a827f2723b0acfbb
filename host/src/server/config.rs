//! `[server]`: how the HTTP server guards itself (timeouts, caps), who may
//! write (tokens, sessions) and which `Host` names it answers to.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// `[server]` in `callboard.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The URL users reach the portal at, e.g. `https://portal.example.com`.
    /// When it starts with `https://`, the admin cookie is `Secure` and
    /// `__Host-` prefixed, and its host is allowed in `Host` headers.
    /// Default none.
    pub public_url: Option<String>,
    /// The portal is served behind https (a TLS-terminating proxy) even
    /// without `public_url`: the admin cookie is `Secure` and `__Host-`
    /// prefixed. Default false.
    pub https: bool,
    /// `Host` header values (name, or `name:port`) the server answers to;
    /// other requests get 421, so a DNS-rebinding page cannot reach a
    /// loopback-bound server. `"*"` allows any. Always allowed besides these:
    /// `localhost`, `127.0.0.1`, `[::1]`, the bind address and the host of
    /// `public_url`. Default empty.
    pub allowed_hosts: Vec<String>,
    /// Most open client connections; further clients wait in the listen
    /// backlog until one closes. Default 512.
    pub max_connections: usize,
    /// Longest wait for a request's headers, in seconds, counted from the
    /// connection's start or the previous response: a slow or idle client is
    /// disconnected after it (it is also the keep-alive idle timeout).
    /// Default 10.
    pub header_read_timeout_secs: u64,
    /// Longest wait for the next piece of a request body, in seconds; a
    /// stalled upload fails (and frees its connection). Default 30.
    pub body_timeout_secs: u64,
    /// On shutdown (SIGTERM, Ctrl-C), how long requests in flight and queued
    /// plugin events get to finish, in seconds; the rest is dropped and
    /// logged. Default 10.
    pub shutdown_drain_secs: u64,
    /// Largest request body read from a caller that has not yet proved who
    /// it is (admin sign-in form, catalog writes are checked before any
    /// body is read), in bytes. Default 64 KiB.
    pub max_unauthenticated_body: usize,
    /// Largest plugin or licence upload by a signed-in administrator, in
    /// bytes. Default 64 MiB.
    pub max_upload_body: usize,
    /// An admin session ends after this many seconds without a request;
    /// each request extends it. Default 3600 (1 hour).
    pub session_idle_secs: u64,
    /// An admin session ends this many seconds after sign-in, used or not.
    /// Default 43200 (12 hours).
    pub session_max_secs: u64,
    /// Most admin sessions kept at once; signing in beyond it ends the
    /// oldest. Default 64.
    pub max_sessions: usize,
    /// API tokens that may write to the catalog (besides the admin token),
    /// stored as SHA-256 digests so the config file holds no secret:
    /// `[[server.api_tokens]] name = "ci" sha256 = "<hex>"` (the digest of
    /// the token: `printf %s "$TOKEN" | sha256sum`). Default none.
    pub api_tokens: Vec<ApiToken>,
    /// A file of more API tokens, one token per line (blank lines and lines
    /// starting with `#` ignored), read at start-up; keep it readable by the
    /// server only. Default none.
    pub api_tokens_file: Option<PathBuf>,
}

/// One API token, by digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who uses it, for the log.
    pub name: String,
    /// SHA-256 of the token, 64 hex digits.
    pub sha256: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            https: false,
            allowed_hosts: Vec::new(),
            max_connections: 512,
            header_read_timeout_secs: 10,
            body_timeout_secs: 30,
            shutdown_drain_secs: 10,
            max_unauthenticated_body: 64 << 10,
            max_upload_body: 64 << 20,
            session_idle_secs: 3600,
            session_max_secs: 12 * 3600,
            max_sessions: 64,
            api_tokens: Vec::new(),
            api_tokens_file: None,
        }
    }
}

impl ServerConfig {
    /// Whether browsers reach the portal over https.
    pub fn is_https(&self) -> bool {
        self.https
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }

    /// [`Self::header_read_timeout_secs`] as a duration (at least 1 s).
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    /// [`Self::body_timeout_secs`] as a duration (at least 1 s).
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    /// [`Self::shutdown_drain_secs`] as a duration.
    pub fn shutdown_drain(&self) -> Duration {
        Duration::from_secs(self.shutdown_drain_secs)
    }
}
