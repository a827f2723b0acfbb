//! `/api/admin`: plugins, API tokens and the audit log, for administrators.
//!
//! Every route names the permission it needs, checked by a route layer
//! before the body is read (401 for an anonymous caller, 403
//! `NotAllowedError` naming the caller and the permission otherwise); the
//! admin token (`<data_dir>/admin-token`, written at first start) is always
//! allowed.
//!
//! - `callboard.plugins.manage`:
//!   - `GET    /plugins`                  live plugins, requested vs granted, and refusals
//!   - `POST   /plugins[?force=true]`     multipart: `plugin` (the file), optional `license`;
//!     `force` accepts a downgrade or a change of signer (a refusal lists what
//!     would change; the answer's `changes` lists what did)
//!   - `PUT    /plugins/{id}/license`     body: a licence file
//!   - `DELETE /plugins/{id}[?purge=true]` unload and delete; `purge` drops its key-value data
//! - `callboard.tokens.manage`: `/tokens` ([`tokens`]);
//! - `callboard.audit.read`: `/audit` ([`audit`]).
//!
//! Plugin changes are recorded in the audit log once they succeeded
//! (`plugin.install`, `plugin.license`, `plugin.remove`), as the admin
//! pages record theirs.

pub mod audit;
pub mod tokens;

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{Multipart, Path, Query, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, backstage_errors};
use crate::{
    identity::{Identity, access::Access},
    permissions::{CALLBOARD_AUDIT_READ, CALLBOARD_PLUGINS_MANAGE, CALLBOARD_TOKENS_MANAGE},
    plugins::{InstallOptions, LoadError, PluginInfo},
};

/// What the admin API needs (the root projects it from its state; the
/// portal's admin pages use the same functions).
#[derive(Clone)]
pub struct AdminApi {
    /// The plugin runtime (install, remove, licences).
    pub plugins: crate::plugins::PluginHost,
    /// Tokens and the audit log.
    pub stores: callboard_store::Stores,
    /// The published policy.
    pub access: Arc<Access>,
    /// Largest plugin upload, in bytes.
    pub max_upload_body: usize,
}

/// The router mounted at `/api/admin`.
pub fn router(state: &AdminApi) -> Router {
    let plugins = Router::new()
        .route("/plugins", get(list).post(install))
        .route("/plugins/{id}", axum::routing::delete(remove).get(show))
        .route("/plugins/{id}/license", put(install_license))
        .layer(axum::extract::DefaultBodyLimit::max(state.max_upload_body))
        .route_layer(middleware::from_fn_with_state(
            (state.access.clone(), CALLBOARD_PLUGINS_MANAGE),
            require,
        ));
    let tokens = tokens::routes().route_layer(middleware::from_fn_with_state(
        (state.access.clone(), CALLBOARD_TOKENS_MANAGE),
        require,
    ));
    let audit = audit::routes().route_layer(middleware::from_fn_with_state(
        (state.access.clone(), CALLBOARD_AUDIT_READ),
        require,
    ));
    plugins
        .merge(tokens)
        .merge(audit)
        .layer(middleware::from_fn(backstage_errors))
        .with_state(state.clone())
}

/// Refuses a caller the policy does not allow `permission` (a basic
/// permission), before any extractor runs; passes the caller's
/// [`Identity`] on to the handler.
async fn require(
    State((access, permission)): State<(Arc<Access>, &'static str)>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = super::auth::identity_of(&request);
    if !access.allows(&identity, permission) {
        tracing::info!(who = %identity.name(), permission, path = %request.uri().path(), "admin API: refused");
        return super::auth::refuse(&identity, permission).into_response();
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

async fn list(State(state): State<AdminApi>) -> Json<Value> {
    let host = &state.plugins;
    Json(json!({ "plugins": host.list(), "failures": host.failures() }))
}

async fn show(
    State(state): State<AdminApi>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = state
        .plugins
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no plugin named \"{id}\" is installed")))?;
    Ok(Json(json!(info)))
}

#[derive(Deserialize)]
struct InstallQuery {
    #[serde(default)]
    force: bool,
}

async fn install(
    State(state): State<AdminApi>,
    Extension(identity): Extension<Identity>,
    Query(query): Query<InstallQuery>,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let mut plugin = None;
    let mut license = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::input(format!("bad upload: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::input(format!("bad upload: {e}")))?;
        match name.as_str() {
            "plugin" => plugin = Some(bytes),
            "license" => {
                license = Some(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| ApiError::input("the licence is not UTF-8 text"))?,
                );
            }
            other => {
                return Err(ApiError::input(format!(
                    "unexpected form field \"{other}\"; expected `plugin` and optionally `license`"
                )));
            }
        }
    }
    let plugin = plugin
        .ok_or_else(|| ApiError::input("missing the `plugin` form field (the plugin file)"))?;
    let options = InstallOptions {
        force: query.force,
        license,
    };
    let host = state.plugins.clone();
    // Verification and compilation are CPU work: off the async workers.
    let info = tokio::task::spawn_blocking(move || host.install(&plugin, &options))
        .await
        .map_err(|e| ApiError::internal(format!("install task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    audit_install(&state, &identity, &info, query.force).await;
    Ok((StatusCode::CREATED, Json(json!(info))).into_response())
}

async fn install_license(
    State(state): State<AdminApi>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let host = state.plugins.clone();
    let plugin = id.clone();
    let info = tokio::task::spawn_blocking(move || host.install_license(&plugin, &body))
        .await
        .map_err(|e| ApiError::internal(format!("licence task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    audit_license(&state, &identity, &id).await;
    Ok(Json(json!(info)))
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    purge: bool,
}

async fn remove(
    State(state): State<AdminApi>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    if state.plugins.get(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "no plugin named \"{id}\" is installed"
        )));
    }
    let host = state.plugins.clone();
    let plugin = id.clone();
    tokio::task::spawn_blocking(move || host.remove(&plugin, query.purge))
        .await
        .map_err(|e| ApiError::internal(format!("remove task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    // What it contributed to search goes with it (a reinstall adds it again).
    let search = crate::search::Search::new(state.stores.search.clone(), state.access.clone());
    if let Err(e) = search.remove_plugin_documents(&id).await {
        tracing::warn!(plugin = %id, "removing the plugin's search documents: {e}");
    }
    audit_remove(&state, &identity, &id, query.purge).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Records `plugin.install` (id, version, digest, forced) after an install
/// or update succeeded.
pub(crate) async fn audit_install(
    state: &AdminApi,
    who: &Identity,
    info: &PluginInfo,
    forced: bool,
) {
    let detail = json!({
        "id": info.id,
        "version": info.version,
        "digest": info.sha256,
        "forced": forced,
    });
    crate::audit::record(&state.stores.audit, who, "plugin.install", &info.id, detail).await;
}

/// Records `plugin.license` (id) after a licence was installed.
pub(crate) async fn audit_license(state: &AdminApi, who: &Identity, id: &str) {
    let detail = json!({ "id": id });
    crate::audit::record(&state.stores.audit, who, "plugin.license", id, detail).await;
}

/// Records `plugin.remove` (id, purge) after a plugin was removed.
pub(crate) async fn audit_remove(state: &AdminApi, who: &Identity, id: &str, purge: bool) {
    let detail = json!({ "id": id, "purge": purge });
    crate::audit::record(&state.stores.audit, who, "plugin.remove", id, detail).await;
}

fn refusal(error: &LoadError) -> ApiError {
    let message = error.to_string();
    match error {
        LoadError::Downgrade { .. }
        | LoadError::DuplicateId { .. }
        | LoadError::SignerChange(_) => ApiError::conflict(message),
        LoadError::Write(_) => ApiError::internal(message),
        LoadError::License(_) | LoadError::Signature(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "NotAllowedError", message)
        }
        _ => ApiError::input(message),
    }
}

/// A store failure as the caller sees it: their input, a conflict, or the
/// database being out of reach (details logged, not sent).
pub(crate) fn store_error(what: &str, e: &callboard_store::StoreError) -> ApiError {
    use callboard_store::StoreError;
    match e {
        StoreError::Input(m) => ApiError::input(m.clone()),
        StoreError::Conflict(m) => ApiError::conflict(m.clone()),
        StoreError::NotFound(m) => ApiError::not_found(m.clone()),
        StoreError::Unavailable(_) => {
            tracing::warn!("admin API: {what}: {e}");
            ApiError::unavailable(format!("cannot {what}: the database is unavailable"))
        }
        _ => {
            tracing::error!("admin API: {what}: {e}");
            ApiError::internal(format!("cannot {what}: the server log has the details"))
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
