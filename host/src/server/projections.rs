//! How the root's [`AppState`] is projected onto each router's sub-state
//! (axum's [`FromRef`]): the only place that knows both. Routers and
//! middleware name their own state type, never `AppState`.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use callboard_catalog::Catalog;

use super::AppState;
use crate::api::{
    admin::AdminApi, auth::CatalogAccess, plugins::PluginRoutes, policy::PolicyApi,
    techdocs::TechdocsApi, views::ViewsApi,
};

impl FromRef<AppState> for Catalog {
    fn from_ref(app: &AppState) -> Self {
        app.catalog.clone()
    }
}

impl FromRef<AppState> for CatalogAccess {
    fn from_ref(app: &AppState) -> Self {
        CatalogAccess::new(app.access.clone())
    }
}

impl FromRef<AppState> for crate::health::Ready {
    fn from_ref(app: &AppState) -> Self {
        Self {
            admin: app.stores.admin.clone(),
            catalog: app.catalog.clone(),
            plugins: app.plugins.clone(),
        }
    }
}

impl FromRef<AppState> for AdminApi {
    fn from_ref(app: &AppState) -> Self {
        Self {
            plugins: app.plugins.clone(),
            stores: app.stores.clone(),
            access: app.access.clone(),
            max_upload_body: app.config.server.max_upload_body,
        }
    }
}

impl FromRef<AppState> for PolicyApi {
    fn from_ref(app: &AppState) -> Self {
        Self {
            stores: app.stores.clone(),
            catalog: app.catalog.clone(),
            access: app.access.clone(),
            anonymous: app.config.auth.anonymous,
        }
    }
}

impl FromRef<AppState> for ViewsApi {
    fn from_ref(app: &AppState) -> Self {
        Self {
            plugins: app.plugins.clone(),
            catalog: app.catalog.clone(),
            access: app.access.clone(),
            callers: app.callers.clone(),
            deadline: Duration::from_millis(app.config.plugins.view_deadline_ms),
        }
    }
}

impl FromRef<AppState> for TechdocsApi {
    fn from_ref(app: &AppState) -> Self {
        Self {
            techdocs: app.techdocs.clone(),
            catalog: app.catalog.clone(),
            access: app.access.clone(),
        }
    }
}

impl FromRef<AppState> for crate::search::Search {
    fn from_ref(app: &AppState) -> Self {
        Self::new(app.stores.search.clone(), app.access.clone())
    }
}

impl FromRef<AppState> for PluginRoutes {
    fn from_ref(app: &AppState) -> Self {
        let plugins = &app.config.plugins;
        // The largest body any plugin accepts; each plugin's own cap is
        // checked again inside the runtime.
        let max_request_body = plugins
            .overrides
            .values()
            .filter_map(|o| o.max_request_body)
            .fold(plugins.limits.max_request_body, usize::max);
        Self {
            host: app.plugins.clone(),
            access: app.access.clone(),
            callers: app.callers.clone(),
            anonymous: app.config.auth.anonymous,
            max_request_body,
            response_headers: crate::api::plugins::headers::Caps {
                count: plugins.max_response_headers,
                bytes: plugins.max_response_header_bytes,
            },
            proxy: Arc::new(app.config.proxy.clone()),
        }
    }
}

impl FromRef<AppState> for crate::usage::Tracking {
    fn from_ref(app: &AppState) -> Self {
        Self {
            plugins: app.plugins.clone(),
            proxy: Arc::new(app.config.proxy.clone()),
        }
    }
}

impl FromRef<AppState> for crate::telemetry::metrics::Scrape {
    fn from_ref(app: &AppState) -> Self {
        Self {
            plugins: app.plugins.clone(),
            catalog: app.catalog.clone(),
            stores: app.stores.clone(),
            handle: app.metrics.clone(),
            tokens: app.tokens.clone(),
            token_sha256: app.config.telemetry.metrics.token_sha256.clone(),
        }
    }
}
