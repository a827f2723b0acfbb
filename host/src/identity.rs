//! Who a request is from, resolved once per request.
//!
//! [`resolve`] runs on every route, before any handler: it reads the
//! request's credentials (a `Bearer` token, else the session cookie), finds
//! the principal and, for a person, their ownership refs (the user, its
//! groups and their parent groups, as Backstage's `ownershipEntityRefs`),
//! and puts an [`Identity`] in the request's extensions. Handlers, pages and
//! plugin calls read that; nothing else looks at credentials. A request
//! with a token that is not valid is refused here (401), before its body is
//! read; a cookie that names no live session is simply ignored (the caller
//! is anonymous).
//!
//! What an identity may do is [`access::Access`]'s decision (the policy);
//! this module only says who is asking.

pub mod access;
pub mod callers;
pub mod config;
pub mod ownership;
pub mod signin;

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use callboard_store::TokenStore;

use crate::auth::{ADMIN_SUBJECT, SessionInfo, Sessions, Tokens};
use ownership::Ownership;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Nobody named themselves.
    Anonymous,
    /// The bootstrap super-administrator: the admin token, or a session
    /// signed in with it.
    Admin,
    /// A person, as their `User` entity ref (lower-case,
    /// `user:default/alice`).
    User(String),
    /// A machine: an API token's service principal.
    Token {
        /// The service principal's name.
        name: String,
        /// The stored token's id (`None` for `[server] api_tokens`).
        id: Option<String>,
    },
}

/// Who a request is from, with what the policy needs to decide for them.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Who.
    pub principal: Principal,
    /// The refs the policy knows the principal by: a person's ownership
    /// refs, `token:<name>` for a token, nothing for the others.
    pub refs: Arc<[String]>,
    /// A person's ownership refs (themselves, their groups and the groups'
    /// parents): what `$ownerRefs` stands for in conditions.
    pub ownership: Arc<[String]>,
    /// A person's `spec.profile.displayName`, when the catalog has one.
    pub display_name: Option<Arc<str>>,
    /// The token's restrictions to certain permissions, if any.
    pub restricted_to: Option<Arc<[String]>>,
    /// The session the request came with (for CSRF tokens and sign-out).
    pub session: Option<SessionInfo>,
}

impl Identity {
    /// Nobody.
    pub fn anonymous() -> Self {
        Self {
            principal: Principal::Anonymous,
            refs: Arc::from(Vec::new()),
            ownership: Arc::from(Vec::new()),
            display_name: None,
            restricted_to: None,
            session: None,
        }
    }

    /// The super-administrator (the admin token).
    pub fn admin() -> Self {
        Self {
            principal: Principal::Admin,
            ..Self::anonymous()
        }
    }

    /// Whether the request named nobody.
    pub fn is_anonymous(&self) -> bool {
        self.principal == Principal::Anonymous
    }

    /// A person's user ref, if the principal is one.
    pub fn user_ref(&self) -> Option<&str> {
        match &self.principal {
            Principal::User(r) => Some(r),
            _ => None,
        }
    }

    /// How the audit log and usage events name the principal: the user
    /// ref, `token:<name>`, `admin`, or `anonymous`.
    pub fn name(&self) -> String {
        match &self.principal {
            Principal::Anonymous => "anonymous".into(),
            Principal::Admin => ADMIN_SUBJECT.into(),
            Principal::User(r) => r.clone(),
            Principal::Token { name, .. } => format!("token:{name}"),
        }
    }
}

/// The session cookie over plain http.
pub const COOKIE: &str = "callboard_session";
/// The session cookie behind https: the prefix makes browsers insist on
/// `Secure`, `Path=/` and no `Domain`, so no sibling host can plant one.
pub const HOST_COOKIE: &str = "__Host-callboard_session";

/// What [`resolve`] needs: the credentials it checks and where ownership
/// comes from.
pub struct Identities {
    tokens: Arc<Tokens>,
    stored_tokens: Arc<dyn TokenStore>,
    sessions: Arc<Sessions>,
    ownership: Ownership,
    https: bool,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

impl Identities {
    /// Resolves identities from these credentials.
    pub fn new(
        tokens: Arc<Tokens>,
        stored_tokens: Arc<dyn TokenStore>,
        sessions: Arc<Sessions>,
        ownership: Ownership,
        https: bool,
    ) -> Self {
        Self {
            tokens,
            stored_tokens,
            sessions,
            ownership,
            https,
        }
    }

    /// The session cookie's name for this server.
    pub fn cookie_name(&self) -> &'static str {
        if self.https { HOST_COOKIE } else { COOKIE }
    }

    /// `Set-Cookie` for a session id (`max_age` 0 clears it). `SameSite=Lax`:
    /// a link from chat or e-mail to the portal arrives signed in, while
    /// cross-site posts carry no cookie (and every form also carries the
    /// session's CSRF token).
    pub fn session_cookie(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.cookie_name(),
            if self.https { "; Secure" } else { "" },
        );
        HeaderValue::from_str(&cookie).ok()
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Ownership refs of users.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// The identity of a session's subject.
    pub async fn of_session(&self, session: SessionInfo) -> Identity {
        if session.subject == ADMIN_SUBJECT {
            return Identity {
                session: Some(session),
                ..Identity::admin()
            };
        }
        let (ownership, display_name) = self.ownership.profile_of(&session.subject).await;
        Identity {
            principal: Principal::User(session.subject.clone()),
            refs: ownership.clone(),
            ownership,
            display_name,
            restricted_to: None,
            session: Some(session),
        }
    }

    /// The identity a bearer token proves, or why it proves none.
    async fn of_token(&self, offered: &str) -> Result<Identity, Refusal> {
        match self.tokens.holder(offered) {
            Some(ADMIN_SUBJECT) => return Ok(Identity::admin()),
            Some(name) => {
                return Ok(Identity {
                    principal: Principal::Token {
                        name: name.to_owned(),
                        id: None,
                    },
                    refs: Arc::from(vec![format!("token:{name}")]),
                    ..Identity::anonymous()
                });
            }
            None => {}
        }
        let digest = hex::encode(crate::auth::digest(offered.trim()));
        match self
            .stored_tokens
            .use_token(&digest, crate::auth::now_ms())
            .await
        {
            Ok(Some(row)) => Ok(Identity {
                refs: Arc::from(vec![format!("token:{}", row.name)]),
                restricted_to: (!row.permissions.is_empty())
                    .then(|| Arc::from(row.permissions.clone())),
                principal: Principal::Token {
                    name: row.name,
                    id: Some(row.id),
                },
                ..Identity::anonymous()
            }),
            Ok(None) => Err(Refusal::BadToken),
            Err(e) => {
                tracing::error!("API tokens: {e}");
                Err(Refusal::Unavailable)
            }
        }
    }

    /// The live session the request's cookie names, if any (its idle time
    /// restarts). At most four cookies of that name are tried.
    pub async fn session_of(&self, headers: &HeaderMap) -> Option<SessionInfo> {
        let name = self.cookie_name();
        let ids: Vec<&str> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(n, _)| *n == name)
            .map(|(_, id)| id.trim())
            .take(4)
            .collect();
        for id in ids {
            if let Some(info) = self.sessions.check(id).await {
                return Some(info);
            }
        }
        None
    }
}

/// Why credentials were refused.
enum Refusal {
    BadToken,
    Unavailable,
}

/// Middleware on every route: puts the request's [`Identity`] in its
/// extensions, or refuses a token that is not valid (401).
pub async fn resolve(
    State(ids): State<Arc<Identities>>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = if let Some(offered) = crate::auth::bearer(request.headers()) {
        match ids.of_token(offered).await {
            Ok(identity) => identity,
            Err(Refusal::BadToken) => {
                return crate::api::error::ApiError::unauthenticated(
                    "the bearer token is not valid: it is unknown, expired or revoked",
                )
                .into_response();
            }
            Err(Refusal::Unavailable) => {
                return crate::api::error::ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableError",
                    "cannot check the token: the database is unavailable",
                )
                .into_response();
            }
        }
    } else if let Some(session) = ids.session_of(request.headers()).await {
        ids.of_session(session).await
    } else {
        Identity::anonymous()
    };
    // The request's span names who it is from (a user or service ref, never
    // a credential).
    if !identity.is_anonymous() {
        tracing::Span::current().record("user", identity.name());
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}
