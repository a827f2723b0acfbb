//! `/api/catalog`: Backstage's catalog REST API. (Owned by the catalog work; stub.)

use axum::Router;

/// The catalog router, mounted at `/api/catalog`.
pub fn router() -> Router {
    Router::new()
}
