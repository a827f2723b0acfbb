//! HTTP routers. Each area has its own `router(...)`; [`router`] mounts them
//! all, so tests can call it without a socket.

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

/// Every route Callboard serves.
pub fn router(state: &AppState) -> Router {
    let max_body = state
        .config
        .plugins
        .overrides
        .values()
        .filter_map(|o| o.max_request_body)
        .fold(state.config.plugins.limits.max_request_body, usize::max);
    let server = &state.config.server;
    let access = auth::CatalogAccess::new(state.access.clone());
    let hosts = auth::AllowedHosts::new(server, state.config.bind);
    let app = Router::new()
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
        .merge(crate::web::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.plugins.clone(),
            crate::usage::track,
        ))
        // Who the request is from, before anything else reads it.
        .layer(axum::middleware::from_fn_with_state(
            state.identities.clone(),
            crate::identity::resolve,
        ))
        // A client that stops sending its body mid-way holds a connection
        // and a handler until this fires.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            server.body_timeout(),
        ));
    // Scrapers name themselves with the metrics token, which is no identity:
    // `/metrics` checks its own tokens, outside `resolve`. (Merged into, not
    // merged: the merged router's fallback is the one kept, and `app`'s
    // carries the layers above.)
    crate::telemetry::metrics::router(state)
        .merge(app)
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            auth::check_host,
        ))
        // Outermost: every response, refusals included, carries the request
        // id, and everything below runs in the request's span.
        .layer(axum::middleware::from_fn(crate::telemetry::request::track))
}
