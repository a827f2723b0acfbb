//! Signing in: the OpenID Connect relying party (authorization code flow
//! with PKCE, the provider found by discovery, the ID token verified:
//! signature against the provider's keys, issuer, audience, expiry,
//! nonce), the short-lived flow cookie that carries the flow's secrets
//! from the start to the callback, and the sign-in resolvers that map a
//! signed-in person to a `User` entity.
//!
//! The flow keeps no server-side state for people who have not signed in
//! yet (nothing an outsider can fill): its state, nonce, PKCE verifier and
//! the page to return to travel in an HttpOnly cookie that lives ten
//! minutes, signed with HMAC-SHA256 under a key every replica shares (the
//! callback may reach another replica than the start did).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::Engine as _;
use callboard_catalog::{Catalog, EntityRef, Predicate, Selection, Start};
use hmac::{Hmac, Mac};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::config::OidcConfig;

/// How long a started sign-in may take.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// How long the provider's discovery document (and keys) are kept.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// Largest page path a sign-in returns to.
const MAX_RETURN: usize = 2048;

/// Why a sign-in failed. The message is for the person signing in and the
/// log: it names the provider or the claim, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider could not be reached or answered nonsense.
    #[error("the sign-in provider {issuer} is unavailable: {reason}")]
    Provider {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        reason: String,
    },
    /// The callback does not belong to a sign-in started here (no or a
    /// bad flow cookie, another state), or it expired.
    #[error("this sign-in was not started here or took too long: {0}")]
    Flow(&'static str),
    /// The provider said no (the person cancelled, or it refused).
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    /// The ID token did not verify.
    #[error("the sign-in provider's ID token is not valid: {0}")]
    Token(String),
    /// Nobody in the catalog matches the person.
    #[error(
        "{0} has no user entity in the catalog, so cannot sign in (ask the portal's administrators to add one)"
    )]
    Unknown(String),
    /// The configuration is wrong.
    #[error("auth.oidc: {0}")]
    Config(String),
}

/// What a sign-in's start hands to its callback (inside the flow cookie).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// `state`.
    s: String,
    /// `nonce`.
    n: String,
    /// PKCE verifier.
    v: String,
    /// Redirect URI used (the token request must repeat it).
    u: String,
    /// Page to return to.
    r: String,
    /// Expiry, ms since the epoch.
    e: i64,
}

impl Pending {
    /// The page to return to after signing in.
    pub fn return_to(&self) -> &str {
        &self.r
    }
}

/// The claims a signed-in person brought.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username`.
    pub preferred_username: Option<String>,
}

impl Claims {
    fn claim(&self, name: &str) -> Option<&str> {
        match name {
            "sub" => Some(&self.sub),
            "email" => self.email.as_deref(),
            "name" => self.name.as_deref(),
            "preferred_username" => self.preferred_username.as_deref(),
            _ => None,
        }
    }

    /// How the person is named in messages and logs.
    pub fn display(&self) -> String {
        self.email
            .clone()
            .or_else(|| self.preferred_username.clone())
            .unwrap_or_else(|| format!("subject {}", self.sub))
    }
}

/// One way to find a person's user entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// `spec.profile.email` equals the e-mail claim.
    Email,
    /// The user's name equals the e-mail's local part.
    EmailLocalPart,
    /// Annotation `annotation` equals claim `claim`.
    Claim {
        /// The claim.
        claim: String,
        /// The annotation.
        annotation: String,
    },
}

impl Resolver {
    /// Parses `email`, `email-local-part` or `claim:<claim>=<annotation>`.
    pub fn parse(text: &str) -> Result<Self, SignInError> {
        match text.trim() {
            "email" => Ok(Self::Email),
            "email-local-part" => Ok(Self::EmailLocalPart),
            other => {
                let bad = || {
                    SignInError::Config(format!(
                        "resolver {other:?}: expected \"email\", \"email-local-part\" or \
                         \"claim:<sub|email|name|preferred_username>=<annotation>\""
                    ))
                };
                let (claim, annotation) = other
                    .strip_prefix("claim:")
                    .and_then(|r| r.split_once('='))
                    .ok_or_else(bad)?;
                let (claim, annotation) = (claim.trim(), annotation.trim());
                if !["sub", "email", "name", "preferred_username"].contains(&claim)
                    || annotation.is_empty()
                    || annotation.len() > 253
                {
                    return Err(bad());
                }
                Ok(Self::Claim {
                    claim: claim.to_owned(),
                    annotation: annotation.to_owned(),
                })
            }
        }
    }
}

/// The relying party for one provider.
pub struct Oidc {
    config: OidcConfig,
    secret: String,
    resolvers: Vec<Resolver>,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// A relying party for `config` (the secret from
    /// `CALLBOARD_OIDC_CLIENT_SECRET` when set). The provider is asked
    /// nothing until the first sign-in, so a provider that is down does
    /// not stop the portal from starting.
    pub fn new(config: &OidcConfig) -> Result<Self, SignInError> {
        IssuerUrl::new(config.issuer.clone())
            .map_err(|e| SignInError::Config(format!("issuer {:?}: {e}", config.issuer)))?;
        if config.client_id.is_empty() {
            return Err(SignInError::Config("client_id is empty".into()));
        }
        let secret = std::env::var("CALLBOARD_OIDC_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| config.client_secret.clone());
        let resolvers = config
            .resolvers
            .iter()
            .map(|r| Resolver::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer point the
            // portal anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .map_err(|e| SignInError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            config: config.clone(),
            secret,
            resolvers,
            http,
            metadata: Mutex::new(None),
        })
    }

    /// The sign-in button's label.
    pub fn label(&self) -> &str {
        &self.config.label
    }

    fn provider_error(&self, reason: impl std::fmt::Display) -> SignInError {
        SignInError::Provider {
            issuer: self.config.issuer.clone(),
            reason: reason.to_string(),
        }
    }

    /// The discovery document (with the provider's keys), fetched again
    /// after [`METADATA_TTL`] or when `fresh` (a token signed by a key we
    /// do not know yet: the provider may have rotated its keys).
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, SignInError> {
        if !fresh
            && let Some((at, m)) = self
                .metadata
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| SignInError::Config(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| self.provider_error(error_chain(&e)))?;
        *self
            .metadata
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// Starts a sign-in: the provider's authorization URL to send the
    /// browser to, and what the callback needs.
    pub async fn start(
        &self,
        redirect_uri: &str,
        return_to: &str,
    ) -> Result<(String, Pending), SignInError> {
        let metadata = self.metadata(false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|e| SignInError::Config(format!("redirect URI: {e}")))?,
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            s: state.secret().clone(),
            n: nonce.secret().clone(),
            v: verifier.secret().clone(),
            u: redirect_uri.to_owned(),
            r: safe_return(return_to).to_owned(),
            e: crate::auth::now_ms() + i64::try_from(FLOW_TTL.as_millis()).unwrap_or(i64::MAX),
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes a sign-in: checks `state`, exchanges `code` (with the PKCE
    /// verifier) and verifies the ID token.
    pub async fn finish(
        &self,
        pending: &Pending,
        state: &str,
        code: &str,
    ) -> Result<Claims, SignInError> {
        if pending.e < crate::auth::now_ms() {
            return Err(SignInError::Flow("the sign-in expired"));
        }
        if !constant_eq(state.as_bytes(), pending.s.as_bytes()) {
            return Err(SignInError::Flow("the state does not match"));
        }
        let metadata = self.metadata(false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(pending.u.clone())
                .map_err(|e| SignInError::Config(format!("redirect URI: {e}")))?,
        );
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| self.provider_error(e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.v.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| self.provider_error(error_chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| SignInError::Token("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.n.clone());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(first) => {
                // Perhaps a key the cached document does not hold yet.
                let metadata = self.metadata(true).await?;
                let client = CoreClient::from_provider_metadata(
                    metadata,
                    ClientId::new(self.config.client_id.clone()),
                    Some(ClientSecret::new(self.secret.clone())),
                );
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|_| SignInError::Token(first.to_string()))?
                    .clone()
            }
        };
        Ok(Claims {
            sub: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            preferred_username: claims.preferred_username().map(|u| u.to_string()),
        })
    }

    /// The user entity ref of a signed-in person: the first resolver that
    /// finds exactly one user wins. A person nobody matches is refused,
    /// unless `allow_unknown_users`.
    pub async fn resolve(&self, catalog: &Catalog, claims: &Claims) -> Result<String, SignInError> {
        let email = claims
            .email
            .as_deref()
            .filter(|_| claims.email_verified || !self.config.require_verified_email);
        for resolver in &self.resolvers {
            let found = match resolver {
                Resolver::Email => match email {
                    Some(email) => one_user(catalog, "spec.profile.email", email).await?,
                    None => None,
                },
                Resolver::EmailLocalPart => match email.and_then(local_part) {
                    Some(local) => {
                        let r = EntityRef::new("user", "default", local);
                        catalog
                            .get_by_ref(&r)
                            .await
                            .map_err(|e| self.provider_error(format!("catalog: {e}")))?
                            .map(|_| r.to_string().to_ascii_lowercase())
                    }
                    None => None,
                },
                Resolver::Claim { claim, annotation } => match claims.claim(claim) {
                    Some(value) => {
                        one_user(
                            catalog,
                            &format!("metadata.annotations.{annotation}"),
                            value,
                        )
                        .await?
                    }
                    None => None,
                },
            };
            if let Some(user) = found {
                return Ok(user);
            }
        }
        if self.config.allow_unknown_users
            && let Some(local) = email.and_then(local_part)
        {
            return Ok(EntityRef::new("user", "default", local)
                .to_string()
                .to_ascii_lowercase());
        }
        Err(SignInError::Unknown(claims.display()))
    }
}

/// The user whose `key` equals `value`, if exactly one does.
async fn one_user(
    catalog: &Catalog,
    key: &str,
    value: &str,
) -> Result<Option<String>, SignInError> {
    let selection = Selection {
        predicate: Some(Predicate::All(vec![
            Predicate::eq("kind", &["user"]),
            Predicate::eq(key, &[value]),
        ])),
        full_text: None,
        order: Vec::new(),
    };
    let page = catalog
        .query(&selection, &Start::Beginning, 2)
        .await
        .map_err(|e| SignInError::Provider {
            issuer: "the catalog".into(),
            reason: e.to_string(),
        })?;
    if page.items.len() != 1 {
        if page.items.len() > 1 {
            tracing::warn!(key, "sign-in: more than one user matches; none is chosen");
        }
        return Ok(None);
    }
    let entity = callboard_catalog::entity_value(&page.items[0]);
    let name = entity
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let namespace = entity
        .pointer("/metadata/namespace")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("default");
    Ok(Some(
        EntityRef::new("user", namespace, name)
            .to_string()
            .to_ascii_lowercase(),
    ))
}

/// The part of an e-mail address before `@`, if it makes a valid name.
fn local_part(email: &str) -> Option<&str> {
    let (local, _) = email.split_once('@')?;
    (!local.is_empty()
        && local.len() <= 63
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    .then_some(local)
}

/// A page path to return to after signing in: a path on this portal only
/// (`/...`, not `//host` or `/\host`, which browsers read as another
/// site), else `/`.
pub fn safe_return(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= MAX_RETURN
        && path
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'\\');
    if ok { path } else { "/" }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest as _;
    Sha256::digest(a) == Sha256::digest(b)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Signs and reads the flow cookie's value.
#[derive(Clone)]
pub struct FlowSigner {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for FlowSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowSigner")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl FlowSigner {
    /// Signs with `key` (every replica's shared secret).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: std::sync::Arc::from(key),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// `base64url(json).base64url(hmac)`.
    pub fn seal(&self, pending: &Pending) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = b64.encode(serde_json::to_vec(pending).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        format!("{body}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    /// The flow a cookie value carries, if this portal signed it.
    pub fn open(&self, value: &str) -> Result<Pending, SignInError> {
        if value.len() > 4096 {
            return Err(SignInError::Flow("the sign-in cookie is too long"));
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, tag) = value
            .split_once('.')
            .ok_or(SignInError::Flow("the sign-in cookie is malformed"))?;
        let tag = b64
            .decode(tag)
            .map_err(|_| SignInError::Flow("the sign-in cookie is malformed"))?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| SignInError::Flow("the sign-in cookie is not this portal's"))?;
        let json = b64
            .decode(body)
            .map_err(|_| SignInError::Flow("the sign-in cookie is malformed"))?;
        serde_json::from_slice(&json)
            .map_err(|_| SignInError::Flow("the sign-in cookie is malformed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            safe_return("/catalog?kind=component"),
            "/catalog?kind=component"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "catalog",
            "/a b",
            "/\u{7f}",
        ] {
            assert_eq!(safe_return(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn a_flow_cookie_opens_only_with_its_key_and_unchanged() {
        let signer = FlowSigner::new(b"key one");
        let pending = Pending {
            s: "state".into(),
            n: "nonce".into(),
            v: "verifier".into(),
            u: "http://127.0.0.1/auth/oidc/callback".into(),
            r: "/catalog".into(),
            e: 1,
        };
        let sealed = signer.seal(&pending);
        assert_eq!(signer.open(&sealed).unwrap().r, "/catalog");
        assert!(FlowSigner::new(b"key two").open(&sealed).is_err());
        let (body, tag) = sealed.split_once('.').unwrap();
        let mut forged = pending;
        forged.r = "/admin".into();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let other = b64.encode(serde_json::to_vec(&forged).unwrap());
        assert_ne!(other, body);
        assert!(signer.open(&format!("{other}.{tag}")).is_err());
        assert!(signer.open("no-dot").is_err());
    }

    #[test]
    fn resolvers_parse_or_name_the_bad_one() {
        assert_eq!(Resolver::parse("email").unwrap(), Resolver::Email);
        assert_eq!(
            Resolver::parse("claim:sub=example.com/oidc-subject").unwrap(),
            Resolver::Claim {
                claim: "sub".into(),
                annotation: "example.com/oidc-subject".into()
            }
        );
        let e = Resolver::parse("claim:groups=x").unwrap_err().to_string();
        assert!(e.contains("claim:groups=x"), "{e}");
    }
}
