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

use axum::{Router, extract::FromRef};
use callboard_catalog::Catalog;

/// Every REST route: health, `/api/...` and the permission API. Each area
/// takes only its own sub-state, projected from the root's state `S` with
/// axum's [`FromRef`]; the REST layer never names the root's state.
pub fn router<S>(state: &S) -> Router
where
    crate::health::Ready: FromRef<S>,
    Catalog: FromRef<S>,
    auth::CatalogAccess: FromRef<S>,
    admin::AdminApi: FromRef<S>,
    views::ViewsApi: FromRef<S>,
    techdocs::TechdocsApi: FromRef<S>,
    crate::search::Search: FromRef<S>,
    plugins::PluginRoutes: FromRef<S>,
    policy::PolicyApi: FromRef<S>,
{
    Router::new()
        .merge(crate::health::router(FromRef::from_ref(state)))
        .nest(
            "/api/catalog",
            catalog::router(FromRef::from_ref(state), FromRef::from_ref(state)),
        )
        .nest("/api/admin", admin::router(&FromRef::from_ref(state)))
        .nest("/api/views", views::router(FromRef::from_ref(state)))
        .nest("/api/techdocs", techdocs::router(FromRef::from_ref(state)))
        .nest("/api/search", search::router(FromRef::from_ref(state)))
        .nest("/api/plugins", plugins::router(FromRef::from_ref(state)))
        .merge(policy::router(&FromRef::from_ref(state)))
}
