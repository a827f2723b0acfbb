//! `/api/views`: plugin views rendered by the host, as JSON (each with its
//! status, its safe HTML and any error; never the plugin's raw view data),
//! for scripts, tests and the portal.

use crate::identity::Identity;
use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::Uri,
    routing::get,
};
use callboard_catalog::EntityRef;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, backstage_errors};
use crate::{plugins::manifest::SlotKind, views};

/// What the views API needs (the root projects it from its state).
#[derive(Clone)]
pub struct ViewsApi {
    /// The runtime that renders views.
    pub plugins: crate::plugins::PluginHost,
    /// The catalog entities are read from (as the caller).
    pub catalog: callboard_catalog::Catalog,
    /// The published policy.
    pub access: std::sync::Arc<crate::identity::access::Access>,
    /// Who each view call runs for.
    pub callers: crate::identity::callers::Callers,
    /// How long a request waits for its views.
    pub deadline: Duration,
}

type Shared = std::sync::Arc<ViewsApi>;

/// The router mounted at `/api/views`.
pub fn router(state: ViewsApi) -> Router {
    let state = Shared::new(state);
    Router::new()
        .route("/entity/{kind}/{namespace}/{name}", get(entity))
        .route("/pages", get(pages))
        .route("/pages/{plugin}", get(page_root))
        .route("/pages/{plugin}/{*path}", get(page))
        .layer(axum::middleware::from_fn(backstage_errors))
        .with_state(state)
}

fn deadline(state: &ViewsApi) -> Duration {
    state.deadline
}

#[derive(Deserialize)]
struct SlotQuery {
    slot: Option<String>,
}

async fn entity(
    State(state): State<Shared>,
    identity: Option<axum::Extension<Identity>>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    axum::extract::Query(q): axum::extract::Query<SlotQuery>,
) -> Result<Json<Value>, ApiError> {
    let slot = match q.slot.as_deref() {
        None | Some("") => None,
        Some("entity-card") => Some(SlotKind::EntityCard),
        Some("entity-tab") => Some(SlotKind::EntityTab),
        Some(other) => {
            return Err(ApiError::input(format!(
                "slot must be entity-card or entity-tab, not {other:?}"
            )));
        }
    };
    let r = EntityRef::new(&kind, &namespace, &name);
    let identity = identity.map_or_else(Identity::anonymous, |axum::Extension(i)| i);
    let reader = state.access.reader(&identity);
    if identity.is_anonymous() && matches!(reader, crate::plugins::CatalogReader::Only(_)) {
        return Err(crate::api::auth::refuse(
            &identity,
            crate::permissions::CATALOG_ENTITY_READ,
        ));
    }
    // Only an entity the caller may read (404 otherwise, as for an unknown one).
    let entity = state
        .catalog
        .get_by_refs(&[r.to_string()], reader.narrow(None).as_ref())
        .await
        .map_err(crate::api::catalog::api_error)?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| ApiError::not_found(format!("No entity named '{}' found", r.key())))?;
    let viewer = views::Viewer::of(&state.callers, &identity);
    let views = views::entity_views(&state.plugins, &entity, slot, &viewer, deadline(&state)).await;
    Ok(Json(json!({ "entity": r.key(), "views": views })))
}

async fn pages(State(state): State<Shared>) -> Json<Value> {
    Json(json!({ "pages": views::pages(&state.plugins) }))
}

async fn page_root(
    state: State<Shared>,
    identity: Option<axum::Extension<Identity>>,
    uri: Uri,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    render_page(state, identity, uri, query).await
}

async fn page(
    state: State<Shared>,
    identity: Option<axum::Extension<Identity>>,
    uri: Uri,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    render_page(state, identity, uri, query).await
}

/// The plugin id and the path come from the URI as sent, so the page path
/// is normalised once, like a route's.
async fn render_page(
    State(state): State<Shared>,
    identity: Option<axum::Extension<Identity>>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let below = uri.path().strip_prefix("/pages").unwrap_or(uri.path());
    let (plugin, raw_path) = views::split_page_path(below);
    let view = views::page_view(
        &state.plugins,
        &plugin,
        raw_path,
        query.as_deref().unwrap_or_default(),
        &views::Viewer::of(
            &state.callers,
            &identity.map_or_else(Identity::anonymous, |axum::Extension(i)| i),
        ),
        deadline(&state),
    )
    .await
    .map_err(|e| ApiError::input(e.to_string()))?
    .ok_or_else(|| ApiError::not_found(format!("plugin \"{plugin}\" has no pages")))?;
    Ok(Json(
        serde_json::to_value(view).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}
