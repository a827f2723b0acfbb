//! `[auth]` in `callboard.toml`: who may sign in, and how.

use serde::{Deserialize, Serialize};

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// What a request that names nobody (no session, no token) may do:
    /// `"none"` (sign in first: pages send people to the sign-in page and
    /// the API answers 401) or `"read"` (what the policy lets every
    /// signed-in principal read, and nothing else). Default `"none"`.
    pub anonymous: Anonymous,
    /// Members of `role:default/admin` in the policy a new install starts
    /// with (entity refs of users or groups, e.g. `group:default/platform`).
    /// Only read when no policy has been stored yet. Default none: the admin
    /// token is the only administrator until the policy says otherwise.
    pub admins: Vec<String>,
    /// Sign-in without a provider, as one fixed user: for the demo and local
    /// development only.
    pub guest: GuestConfig,
    /// Sign-in through an OpenID Connect provider.
    pub oidc: Option<OidcConfig>,
    /// Largest number of refs a principal's ownership may hold (the user,
    /// its groups and their parents); a deeper or wider membership is cut
    /// there (and logged). Default 256.
    pub max_ownership_refs: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            anonymous: Anonymous::None,
            admins: Vec::new(),
            guest: GuestConfig::default(),
            oidc: None,
            max_ownership_refs: 256,
        }
    }
}

/// What anonymous requests may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anonymous {
    /// Nothing: sign in first.
    None,
    /// Read what every signed-in principal may read.
    Read,
}

/// `[auth.guest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuestConfig {
    /// Offer "Continue as guest" on the sign-in page. Anyone who reaches the
    /// portal then signs in as `user`, with that user's ownership: never
    /// switch it on for a portal others can reach. Default false.
    pub enabled: bool,
    /// The user entity guests sign in as. Default `user:default/guest`.
    pub user: String,
}

impl Default for GuestConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            user: "user:default/guest".into(),
        }
    }
}

/// `[auth.oidc]`: an OpenID Connect provider (authorization code flow with
/// PKCE; the provider's endpoints and keys come from its discovery
/// document).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL, e.g. `https://login.example.com/realms/acme`
    /// (`/.well-known/openid-configuration` is read below it).
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret. Prefer the environment variable
    /// `CALLBOARD_OIDC_CLIENT_SECRET`, which wins when set.
    pub client_secret: String,
    /// Scopes asked for besides `openid`. Default `["profile", "email"]`.
    pub scopes: Vec<String>,
    /// The label of the sign-in button. Default "Sign in with SSO".
    pub label: String,
    /// How a signed-in person is matched to a `User` entity, tried in
    /// order: `"email"` (`spec.profile.email` equals the e-mail claim),
    /// `"email-local-part"` (the entity's name equals the part of the
    /// e-mail before `@`), `"claim:<claim>=<annotation>"` (the annotation
    /// equals the claim, e.g. `claim:sub=example.com/oidc-subject`).
    /// Default `["email", "email-local-part"]`.
    pub resolvers: Vec<String>,
    /// Let a person no resolver matches sign in anyway, as
    /// `user:default/<e-mail local part>` with no groups (Backstage's
    /// `dangerouslyAllowSignInWithoutUserInCatalog`). Default false: they
    /// are refused with a page that says why.
    pub allow_unknown_users: bool,
    /// Only e-mail claims the provider marks verified (`email_verified`)
    /// are used to match. Default true.
    pub require_verified_email: bool,
    /// Longest wait for the provider (discovery, token exchange), in
    /// seconds. Default 10.
    pub timeout_secs: u64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["profile".into(), "email".into()],
            label: "Sign in with SSO".into(),
            resolvers: vec!["email".into(), "email-local-part".into()],
            allow_unknown_users: false,
            require_verified_email: true,
            timeout_secs: 10,
        }
    }
}
