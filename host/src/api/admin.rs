//! `/api/admin/plugins`: install, update, remove plugins and licences while
//! serving. Every request needs `Authorization: Bearer <token>`, the token
//! the server writes to `<data_dir>/admin-token` on first start.
//!
//! - `GET    /plugins`                  live plugins, requested vs granted, and refusals
//! - `POST   /plugins[?force=true]`     multipart: `plugin` (the file), optional `license`;
//!   `force` accepts a downgrade or a change of signer (a refusal lists what
//!   would change; the answer's `changes` lists what did)
//! - `PUT    /plugins/{id}/license`     body: a licence file
//! - `DELETE /plugins/{id}[?purge=true]` unload and delete; `purge` drops its key-value data

use axum::{
    Json, Router,
    extract::{Multipart, Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{ApiError, backstage_errors};
use crate::{
    plugins::{InstallOptions, LoadError, PluginHost},
    server::AppState,
};

/// The router mounted at `/api/admin`.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/plugins", get(list).post(install))
        .route("/plugins/{id}", axum::routing::delete(remove).get(show))
        .route("/plugins/{id}/license", put(install_license))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.server.max_upload_body,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.admin_token.clone(),
            authenticate,
        ))
        .layer(middleware::from_fn(backstage_errors))
        .with_state(state.plugins.clone())
}

async fn authenticate(
    State(token): State<std::sync::Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Comparing digests keeps the comparison's timing independent of how
    // much of the token a guess got right.
    let ok =
        offered.is_some_and(|o| Sha256::digest(o.as_bytes()) == Sha256::digest(token.as_bytes()));
    if !ok {
        let message = match offered {
            None => {
                "the admin API needs `Authorization: Bearer <token>`; the token is in <data_dir>/admin-token"
            }
            Some(_) => "invalid admin token",
        };
        return ApiError::unauthenticated(message).into_response();
    }
    next.run(request).await
}

async fn list(State(host): State<PluginHost>) -> Json<serde_json::Value> {
    Json(json!({ "plugins": host.list(), "failures": host.failures() }))
}

async fn show(
    State(host): State<PluginHost>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let info = host
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
    State(host): State<PluginHost>,
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
    // Verification and compilation are CPU work: off the async workers.
    let info = tokio::task::spawn_blocking(move || host.install(&plugin, &options))
        .await
        .map_err(|e| ApiError::internal(format!("install task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    Ok((StatusCode::CREATED, Json(json!(info))).into_response())
}

async fn install_license(
    State(host): State<PluginHost>,
    Path(id): Path<String>,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let info = tokio::task::spawn_blocking(move || host.install_license(&id, &body))
        .await
        .map_err(|e| ApiError::internal(format!("licence task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    Ok(Json(json!(info)))
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    purge: bool,
}

async fn remove(
    State(host): State<PluginHost>,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    if host.get(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "no plugin named \"{id}\" is installed"
        )));
    }
    tokio::task::spawn_blocking(move || host.remove(&id, query.purge))
        .await
        .map_err(|e| ApiError::internal(format!("remove task failed: {e}")))?
        .map_err(|e| refusal(&e))?;
    Ok(StatusCode::NO_CONTENT)
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
