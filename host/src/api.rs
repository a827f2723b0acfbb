//! The REST API's routers. Each area has its own `router(...)`; [`router`]
//! mounts them all. The root ([`crate::server::app`]) merges this with the
//! portal's pages and puts the layers every route shares around both.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod error;
pub mod plugins;
pub mod policy;
pub mod search;
pub mod techdocs;
pub mod views;

use axum::Router;

use crate::server::AppState;

/// Every REST route: health, `/api/...` and the permission API.
pub fn router(state: &AppState) -> Router {
    let max_body = state
        .config
        .plugins
        .overrides
        .values()
        .filter_map(|o| o.max_request_body)
        .fold(state.config.plugins.limits.max_request_body, usize::max);
    let access = auth::CatalogAccess::new(state.access.clone());
    Router::new()
        .merge(crate::health::router(state))
        .nest(
            "/api/catalog",
            catalog::router(state.catalog.clone(), access),
        )
        .nest("/api/admin", admin::router(state))
        .nest("/api/views", views::router(state.clone()))
        .nest("/api/techdocs", techdocs::router(state.clone()))
        .nest(
            "/api/search",
            search::router(crate::search::Search::new(
                state.stores.search.clone(),
                state.access.clone(),
            )),
        )
        .nest(
            "/api/plugins",
            plugins::router(
                state.plugins.clone(),
                state.access.clone(),
                state.callers.clone(),
                state.config.auth.anonymous,
                max_body,
            ),
        )
        .merge(policy::router(state))
}
