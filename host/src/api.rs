//! HTTP routers. Each area has its own `router(...)`; [`router`] mounts them
//! all, so tests can call it without a socket.

pub mod admin;
pub mod catalog;
pub mod error;
pub mod plugins;
pub mod views;

use axum::{Json, Router, routing::get};
use serde_json::json;

use crate::server::AppState;

/// Every route Callboard serves.
pub fn router(state: &AppState) -> Router {
    let max_body = state
        .config
        .plugins
        .overrides
        .values()
        .filter_map(|o| o.max_request_body)
        .fold(state.config.plugins.limits.max_request_body, usize::max);
    Router::new()
        .route(
            "/api/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .nest("/api/catalog", catalog::router(state.catalog.clone()))
        .nest("/api/admin", admin::router(state))
        .nest("/api/views", views::router(state.clone()))
        .nest(
            "/api/plugins",
            plugins::router(state.plugins.clone(), max_body),
        )
        .merge(crate::web::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.plugins.clone(),
            crate::usage::track,
        ))
}
