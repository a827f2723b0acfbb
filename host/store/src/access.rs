//! Identity storage, shared by every replica: API tokens of service
//! principals, the versions of the access policy, and the audit log.
//!
//! A token is stored under the SHA-256 digest of its secret, never the
//! secret itself: reading the database gives nobody a usable token. The
//! policy is one JSON document (roles, members, rules) the store keeps as
//! opaque text, versioned: at most one draft, at most one published
//! version, the others inactive; a publication appends an
//! [`ACCESS_TOPIC`] event in its transaction so every replica reloads it.
//! Times are milliseconds since the Unix epoch, from the caller's clock.
//!
//! Everything here is bounded ([`check_token`], [`check_audit`],
//! [`check_policy_document`], [`check_text`]): backends refuse larger input with
//! [`StoreError::Input`] before they write.

use crate::{Result, StoreError};

/// Feed topic of policy publications (payload: `{"version": <id>}`).
pub const ACCESS_TOPIC: &str = "access";

/// Longest id, name, digest, creator, permission name, actor, action or
/// target, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Most permission names one token may be restricted to.
pub const MAX_TOKEN_PERMISSIONS: usize = 256;

/// Largest policy document, in bytes.
pub const MAX_POLICY_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Largest audit detail, serialised, in bytes.
pub const MAX_AUDIT_DETAIL_BYTES: usize = 16 * 1024;

/// Most audit entries one page returns, whatever the caller asks.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// An API token of a service principal. The secret itself is never stored:
/// only its SHA-256 digest (hex), computed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Public id (the caller makes a uuid) to list and revoke by.
    pub id: String,
    /// The service principal, e.g. `ci-bot` (not unique).
    pub name: String,
    /// Hex SHA-256 of the secret (unique).
    pub digest: String,
    /// Restrictions: empty means only what the policy grants the
    /// principal; otherwise at most these permission names.
    pub permissions: Vec<String>,
    /// Who made it (a user ref or `admin`).
    pub created_by: String,
    /// When it was made.
    pub created_ms: i64,
    /// When it stops working, if ever.
    pub expires_ms: Option<i64>,
    /// When it was last used (written at most once per
    /// [`TOUCH_GRANULARITY_MS`](crate::sessions::TOUCH_GRANULARITY_MS)).
    pub last_used_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

impl TokenRow {
    /// Whether the token may be used at `now_ms`: not revoked, not expired
    /// (a token expires at its `expires_ms`).
    pub fn live(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| now_ms < e)
    }
}

/// The shared API tokens.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token; [`StoreError::Conflict`] when its id or digest
    /// exists, [`StoreError::Input`] when it is beyond the bounds
    /// ([`check_token`]).
    async fn create_token(&self, row: &TokenRow) -> Result<()>;
    /// The live token with this digest at `now_ms` (not revoked, not
    /// expired), its `last_used_ms` set to `now_ms` (written only when it
    /// moved by at least
    /// [`TOUCH_GRANULARITY_MS`](crate::sessions::TOUCH_GRANULARITY_MS),
    /// as sessions do). `None` otherwise.
    async fn use_token(&self, digest: &str, now_ms: i64) -> Result<Option<TokenRow>>;
    /// Every token, revoked and expired ones too, newest first, at most
    /// `limit`.
    async fn list_tokens(&self, limit: usize) -> Result<Vec<TokenRow>>;
    /// Revokes a token (`revoked_ms = now_ms`); false when no live token
    /// has this id.
    async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool>;
}

/// Where a policy version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyState {
    /// Being edited; at most one version is a draft.
    Draft,
    /// In force; at most one version is published.
    Published,
    /// Published once, replaced since.
    Inactive,
}

impl PolicyState {
    /// The stored (and serialised) name: `draft`, `published`, `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Inactive => "inactive",
        }
    }

    /// The state a stored name stands for; [`StoreError::Corrupt`] for any
    /// other text.
    pub fn parse(stored: &str) -> Result<Self> {
        match stored {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            "inactive" => Ok(Self::Inactive),
            other => Err(StoreError::Corrupt(format!(
                "policy version state {other:?} (expected draft, published or inactive)"
            ))),
        }
    }
}

impl std::fmt::Display for PolicyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of the whole access policy (roles, members, rules). The
/// document is opaque JSON text to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Increasing, never reused (a discarded draft's id is never given
    /// again).
    pub id: i64,
    /// Where it is in its life.
    pub state: PolicyState,
    /// The policy, as the caller wrote it.
    pub document: String,
    /// Who drafted it (last saved it, for a draft).
    pub author: String,
    /// When it was first saved.
    pub created_ms: i64,
    /// When it was published, if it was.
    pub published_ms: Option<i64>,
    /// Who published it, if anyone did.
    pub published_by: Option<String>,
}

/// The versions of the access policy.
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    /// The published version, if any.
    async fn published(&self) -> Result<Option<PolicyVersion>>;
    /// One version by id.
    async fn version(&self, id: i64) -> Result<Option<PolicyVersion>>;
    /// Versions newest first, at most `limit` (documents included).
    async fn versions(&self, limit: usize) -> Result<Vec<PolicyVersion>>;
    /// Saves `document` as the draft, replacing the existing draft if there
    /// is one (there is at most one draft). Every save gets a new id, so a
    /// reviewer who publishes the id they reviewed can never publish an
    /// edit made after their review ([`PolicyStore::publish`] refuses the
    /// old id). Returns the new id.
    /// [`StoreError::Input`] beyond [`MAX_POLICY_DOCUMENT_BYTES`].
    async fn save_draft(&self, document: &str, author: &str, now_ms: i64) -> Result<i64>;
    /// Deletes the draft; false when there was none.
    async fn discard_draft(&self) -> Result<bool>;
    /// In one transaction: the draft `id` becomes published
    /// (`published_ms`/`published_by` set), the previously published
    /// version becomes inactive, and an [`ACCESS_TOPIC`] feed event
    /// `{"version": id}` is appended. `Ok(false)` when `id` is not the
    /// current draft (someone published or discarded it meanwhile).
    async fn publish(&self, id: i64, by: &str, now_ms: i64) -> Result<bool>;
    /// First start: if no version exists at all, stores `document` as
    /// published (author and publisher `callboard`, appending the feed
    /// event) and returns true; otherwise changes nothing and returns
    /// false. Two replicas starting together end with exactly one
    /// published version.
    async fn seed(&self, document: &str, now_ms: i64) -> Result<bool>;
}

/// Who [`PolicyStore::seed`] names as author and publisher.
pub const SEED_AUTHOR: &str = "callboard";

/// One audit log entry: who did what to what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Increasing, set by the store.
    pub id: i64,
    /// When it happened.
    pub at_ms: i64,
    /// `user:default/alice`, `token:ci-bot`, `admin`.
    pub actor: String,
    /// `policy.publish`, `token.create`, `plugin.install`, ...
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// A JSON object, at most [`MAX_AUDIT_DETAIL_BYTES`] serialised.
    pub detail: serde_json::Value,
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an entry (its id is ignored and assigned); returns the id.
    /// [`StoreError::Input`] when the entry is beyond the bounds
    /// ([`check_audit`]).
    async fn record(&self, row: &AuditRow) -> Result<i64>;
    /// Entries with id < `before` (all when `None`), newest first, at most
    /// `limit` (capped at [`MAX_AUDIT_PAGE`]).
    async fn entries(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>>;
    /// Deletes entries older than `older_than_ms` (`at_ms` before it);
    /// returns how many.
    async fn prune(&self, older_than_ms: i64) -> Result<u64>;
}

/// Refuses `text` longer than [`MAX_TEXT_BYTES`], naming `what` (e.g.
/// who publishes a policy).
pub fn check_text(what: &str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(StoreError::input(format!(
            "{what} is {} bytes long (at most {MAX_TEXT_BYTES})",
            text.len()
        )));
    }
    Ok(())
}

/// [`check_text`], and refuses empty text.
fn check_required(what: &str, text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(StoreError::input(format!("{what} is empty")));
    }
    check_text(what, text)
}

/// Checks a token before it is stored: id, name and digest present, every
/// text at most [`MAX_TEXT_BYTES`], at most [`MAX_TOKEN_PERMISSIONS`]
/// permission names, none of them empty.
pub fn check_token(row: &TokenRow) -> Result<()> {
    check_required("token id", &row.id)?;
    check_required("token name", &row.name)?;
    check_required("token digest", &row.digest)?;
    check_text("token creator", &row.created_by)?;
    if row.permissions.len() > MAX_TOKEN_PERMISSIONS {
        return Err(StoreError::input(format!(
            "token {} lists {} permissions (at most {MAX_TOKEN_PERMISSIONS})",
            row.id,
            row.permissions.len()
        )));
    }
    for permission in &row.permissions {
        check_required("token permission", permission)?;
    }
    Ok(())
}

/// Checks a policy document before it is stored: at most
/// [`MAX_POLICY_DOCUMENT_BYTES`]; and its author, at most
/// [`MAX_TEXT_BYTES`].
pub fn check_policy_document(document: &str, author: &str) -> Result<()> {
    if document.len() > MAX_POLICY_DOCUMENT_BYTES {
        return Err(StoreError::input(format!(
            "the policy document is {} bytes long (at most {MAX_POLICY_DOCUMENT_BYTES})",
            document.len()
        )));
    }
    check_text("policy author", author)
}

/// Checks an audit entry before it is stored and returns its detail
/// serialised: actor and action present, texts at most
/// [`MAX_TEXT_BYTES`], the detail a JSON object of at most
/// [`MAX_AUDIT_DETAIL_BYTES`] serialised.
pub fn check_audit(row: &AuditRow) -> Result<String> {
    check_required("audit actor", &row.actor)?;
    check_required("audit action", &row.action)?;
    check_text("audit target", &row.target)?;
    if !row.detail.is_object() {
        return Err(StoreError::input(format!(
            "audit detail of {} must be a JSON object",
            row.action
        )));
    }
    let detail = row.detail.to_string();
    if detail.len() > MAX_AUDIT_DETAIL_BYTES {
        return Err(StoreError::input(format!(
            "audit detail of {} is {} bytes long (at most {MAX_AUDIT_DETAIL_BYTES})",
            row.action,
            detail.len()
        )));
    }
    Ok(detail)
}

/// The page size an audit read uses for `limit`.
pub fn audit_page(limit: usize) -> usize {
    limit.min(MAX_AUDIT_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_as_lower_case() {
        for state in [
            PolicyState::Draft,
            PolicyState::Published,
            PolicyState::Inactive,
        ] {
            assert_eq!(PolicyState::parse(state.as_str()).unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().to_owned())
            );
        }
        assert!(matches!(
            PolicyState::parse("Draft"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_token_is_live_until_revoked_or_expired() {
        let mut row = TokenRow {
            id: "t".into(),
            name: "ci-bot".into(),
            digest: "d".into(),
            permissions: vec![],
            created_by: "admin".into(),
            created_ms: 0,
            expires_ms: Some(100),
            last_used_ms: None,
            revoked_ms: None,
        };
        assert!(row.live(99));
        assert!(!row.live(100));
        row.expires_ms = None;
        assert!(row.live(i64::MAX));
        row.revoked_ms = Some(5);
        assert!(!row.live(0));
    }
}
