//! `/api/permission` and `/api/admin/policy` (being written).

use axum::Router;

use crate::server::AppState;

/// The routes, mounted at the root.
pub fn router(_state: &AppState) -> Router {
    Router::new()
}
