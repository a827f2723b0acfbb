//! `/api/admin/tokens`: API tokens of service principals
//! (`callboard.tokens.manage`).
//!
//! - `POST   /tokens` `{"name", "expiresInDays"?, "permissions"?}`: 201 with
//!   the secret, shown this once (`cbt_` + 64 hex digits); only its SHA-256
//!   is stored, which is what [`crate::identity`] looks tokens up by.
//! - `GET    /tokens`: every token (never its secret or digest), newest
//!   first, with its state (`live`, `expired`, `revoked`).
//! - `DELETE /tokens/{id}`: revokes it (204; 404 when no live token has
//!   that id).
//!
//! A token acts as the service principal `token:<name>`: what the policy
//! grants that principal, narrowed to `permissions` when it lists any.
//! Creations and revocations go to the audit log. The admin pages
//! (`/admin/tokens`) call the same functions.

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use callboard_store::access::{MAX_TOKEN_PERMISSIONS, TokenRow};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{rfc3339, store_error};
use crate::{api::admin::AdminApi, api::error::ApiError, identity::Identity};

/// What every secret starts with, so a leaked token is recognisable (and
/// secret scanners can look for it).
pub const SECRET_PREFIX: &str = "cbt_";
/// Longest token name, in characters.
pub const MAX_NAME: usize = 64;
/// Expiry when the caller names none, in days.
pub const DEFAULT_EXPIRY_DAYS: i64 = 90;
/// Longest expiry, in days (about ten years).
pub const MAX_EXPIRY_DAYS: i64 = 3650;
/// Most tokens a listing shows, newest first.
pub const MAX_LISTED: usize = 1000;
/// Largest creation request body, in bytes.
const MAX_BODY: usize = 64 << 10;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The routes, relative to `/api/admin`.
pub(super) fn routes() -> Router<AdminApi> {
    Router::new()
        .route(
            "/tokens",
            get(list)
                .post(create)
                .layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/tokens/{id}", delete(revoke))
}

/// A request for a new token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// The service principal's name: 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub name: String,
    /// Days until it stops working: 1 to 3650, default 90.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// Restrictions: known permission names (none: what the policy grants
    /// `token:<name>`).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A token just made: its row and its secret (shown once).
#[derive(Debug, Clone)]
pub struct Created {
    /// What was stored.
    pub row: TokenRow,
    /// The secret; nothing keeps it.
    pub secret: String,
}

/// Checks `new`, stores the token (by digest) and records `token.create`.
pub async fn create_token(
    state: &AdminApi,
    who: &Identity,
    new: NewToken,
) -> Result<Created, ApiError> {
    check_name(&new.name)?;
    let days = new.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
    if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
        return Err(ApiError::input(format!(
            "expiresInDays must be 1 to {MAX_EXPIRY_DAYS} (got {days}); every token expires"
        )));
    }
    if new.permissions.len() > MAX_TOKEN_PERMISSIONS {
        return Err(ApiError::input(format!(
            "a token may be restricted to at most {MAX_TOKEN_PERMISSIONS} permissions (got {})",
            new.permissions.len()
        )));
    }
    let known = state.access.permissions();
    let mut permissions: Vec<String> = Vec::with_capacity(new.permissions.len());
    for p in &new.permissions {
        if known.get(p).is_none() {
            return Err(ApiError::input(format!(
                "unknown permission \"{}\"",
                crate::permissions::shown(p)
            )));
        }
        if !permissions.contains(p) {
            permissions.push(p.clone());
        }
    }
    // The policy names a token's principal `token:<name>`: a second live
    // token of that name would share whatever the policy grants the first.
    let now = crate::auth::now_ms();
    let live = list_tokens(state).await?;
    if live
        .iter()
        .any(|t| t.name.eq_ignore_ascii_case(&new.name) && t.live(now))
    {
        return Err(ApiError::conflict(format!(
            "a live token named \"{}\" exists; revoke it first (the policy grants by name: token:{})",
            new.name, new.name
        )));
    }
    let random = crate::auth::random_hex().map_err(|e| {
        tracing::error!("API tokens: {e}");
        ApiError::internal("cannot generate a token: no randomness from the operating system")
    })?;
    let secret = format!("{SECRET_PREFIX}{random}");
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: new.name,
        digest: hex::encode(crate::auth::digest(&secret)),
        permissions,
        created_by: who.name(),
        created_ms: now,
        expires_ms: Some(now + days * DAY_MS),
        last_used_ms: None,
        revoked_ms: None,
    };
    state
        .stores
        .tokens
        .create_token(&row)
        .await
        .map_err(|e| store_error("store the token", &e))?;
    tracing::info!(who = %who.name(), token = %row.id, name = %row.name, "API token created");
    let detail = json!({
        "name": row.name,
        "permissions": row.permissions,
        "expiresAt": row.expires_ms.map(rfc3339),
        "expiresInDays": days,
    });
    crate::audit::record(&state.stores.audit, who, "token.create", &row.id, detail).await;
    Ok(Created { row, secret })
}

/// Revokes the live token `id` and records `token.revoke`; 404 when no live
/// token has that id.
pub async fn revoke_token(state: &AdminApi, who: &Identity, id: &str) -> Result<(), ApiError> {
    let tokens = &state.stores.tokens;
    // The name, for the audit log (best effort: the listing is bounded).
    let name = tokens
        .list_tokens(MAX_LISTED)
        .await
        .ok()
        .and_then(|rows| rows.into_iter().find(|r| r.id == id).map(|r| r.name));
    let revoked = tokens
        .revoke_token(id, crate::auth::now_ms())
        .await
        .map_err(|e| store_error("revoke the token", &e))?;
    if !revoked {
        return Err(ApiError::not_found(format!(
            "no live token has the id \"{}\"",
            crate::permissions::shown(id)
        )));
    }
    tracing::info!(who = %who.name(), token = id, "API token revoked");
    let detail = json!({ "id": id, "name": name });
    crate::audit::record(&state.stores.audit, who, "token.revoke", id, detail).await;
    Ok(())
}

/// Every token, newest first (at most [`MAX_LISTED`]).
pub async fn list_tokens(state: &AdminApi) -> Result<Vec<TokenRow>, ApiError> {
    state
        .stores
        .tokens
        .list_tokens(MAX_LISTED)
        .await
        .map_err(|e| store_error("list the tokens", &e))
}

/// A token's state at `now_ms`: `revoked`, `expired` or `live`.
pub fn state_of(row: &TokenRow, now_ms: i64) -> &'static str {
    if row.revoked_ms.is_some() {
        "revoked"
    } else if row.live(now_ms) {
        "live"
    } else {
        "expired"
    }
}

/// A token as the API lists it: never its secret or digest.
pub fn describe(row: &TokenRow, now_ms: i64) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "permissions": row.permissions,
        "createdBy": row.created_by,
        "createdAt": rfc3339(row.created_ms),
        "expiresAt": row.expires_ms.map(rfc3339),
        "lastUsedAt": row.last_used_ms.map(rfc3339),
        "revokedAt": row.revoked_ms.map(rfc3339),
        "state": state_of(row, now_ms),
    })
}

/// Refuses a name that is not 1 to [`MAX_NAME`] characters of
/// `[A-Za-z0-9._-]`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars {
        return Err(ApiError::input(format!(
            "the token name \"{}\" must be 1 to {MAX_NAME} characters of [A-Za-z0-9._-]",
            crate::permissions::shown(name)
        )));
    }
    Ok(())
}

async fn create(
    State(state): State<AdminApi>,
    Extension(identity): Extension<Identity>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewToken = serde_json::from_slice(&body).map_err(|e| {
        ApiError::input(format!(
            "the body must be JSON {{\"name\", \"expiresInDays\"?, \"permissions\"?}}: {e}"
        ))
    })?;
    let created = create_token(&state, &identity, new).await?;
    let row = &created.row;
    let body = json!({
        "id": row.id,
        "name": row.name,
        "token": created.secret,
        "expiresAt": row.expires_ms.map(rfc3339),
        "permissions": row.permissions,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(state): State<AdminApi>) -> Result<Json<Value>, ApiError> {
    let now = crate::auth::now_ms();
    let rows = list_tokens(&state).await?;
    let items: Vec<Value> = rows.iter().map(|r| describe(r, now)).collect();
    Ok(Json(json!({ "items": items })))
}

async fn revoke(
    State(state): State<AdminApi>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke_token(&state, &identity, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
