//! `/api/techdocs`: Backstage's TechDocs backend routes
//! (`plugins/techdocs-backend/src/service/router.ts`), over the sites
//! Callboard built itself, for existing clients:
//!
//! - `GET /metadata/techdocs/{namespace}/{kind}/{name}`: the site's
//!   `techdocs_metadata.json` (`site_name`, `site_description`,
//!   `build_timestamp`, `files`, `etag`);
//! - `GET /metadata/entity/{namespace}/{kind}/{name}`: the entity with
//!   `locationMetadata` (where its docs are read from);
//! - `GET /static/docs/{namespace}/{kind}/{name}/{*path}`: the built site:
//!   `<page>/index.html` per page, its files, `techdocs_metadata.json`;
//! - `GET /sync/{namespace}/{kind}/{name}`: builds the site now (only what
//!   changed) and reports as `text/event-stream` events `log`, `error` and
//!   `finish` (`{"updated": bool}`).
//!
//! Both `catalog.entity.read` and `techdocs.entity.read` must reach the
//! entity; otherwise it does not exist (404), or an anonymous caller must
//! sign in (401).

use axum::{
    Extension, Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use callboard_catalog::EntityRef;
use serde_json::{Value, json};

use crate::api::error::{ApiError, backstage_errors};
use crate::identity::Identity;
use crate::techdocs::{DocsError, Techdocs};

/// The router, mounted at `/api/techdocs`.
/// What the TechDocs API needs (the root projects it from its state).
#[derive(Clone)]
pub struct TechdocsApi {
    /// Builds and stored sites.
    pub techdocs: crate::techdocs::Techdocs,
    /// The catalog (a site is readable when its entity is).
    pub catalog: callboard_catalog::Catalog,
    /// The published policy.
    pub access: std::sync::Arc<crate::identity::access::Access>,
}

pub fn router(state: TechdocsApi) -> Router {
    Router::new()
        .route(
            "/metadata/techdocs/{namespace}/{kind}/{name}",
            get(metadata),
        )
        .route(
            "/metadata/entity/{namespace}/{kind}/{name}",
            get(entity_metadata),
        )
        .route(
            "/static/docs/{namespace}/{kind}/{name}/{*path}",
            get(static_file),
        )
        .route("/sync/{namespace}/{kind}/{name}", get(sync))
        .layer(axum::middleware::from_fn(backstage_errors))
        .with_state(state)
}

type Ref = Path<(String, String, String)>;

fn store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("techdocs: {e}");
    ApiError::unavailable("The docs store is unavailable; try again shortly")
}

/// The entity, if `who` may read its docs.
async fn reachable(state: &TechdocsApi, who: &Identity, r: &EntityRef) -> Result<Value, ApiError> {
    let missing = || ApiError::not_found(format!("No entity named {r} with docs"));
    let readable = crate::techdocs::readable(&state.access, &state.catalog, who, r)
        .await
        .map_err(store_error)?;
    if !readable {
        if who.is_anonymous() {
            return Err(ApiError::unauthenticated(
                "Reading docs needs a signed-in user or `Authorization: Bearer <token>`",
            ));
        }
        return Err(missing());
    }
    state
        .catalog
        .get_by_ref(r)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)
}

async fn metadata(
    State(state): State<TechdocsApi>,
    Extension(who): Extension<Identity>,
    Path((namespace, kind, name)): Ref,
) -> Result<Response, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    reachable(&state, &who, &r).await?;
    Ok(Json(site_metadata(&state.techdocs, &r).await?).into_response())
}

async fn site_metadata(techdocs: &Techdocs, r: &EntityRef) -> Result<Value, ApiError> {
    let store = techdocs.store();
    let site = store
        .site(&r.key(), false)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("{r} has no docs built")))?;
    let mut files: Vec<String> = store
        .page_titles(&r.key())
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(path, _)| format!("{path}index.html"))
        .collect();
    files.extend(
        store
            .asset_hashes(&r.key())
            .await
            .map_err(store_error)?
            .into_keys(),
    );
    Ok(json!({
        "site_name": site.meta.get("name").cloned().unwrap_or(Value::Null),
        "site_description": site.meta.get("description").cloned().unwrap_or(Value::Null),
        "build_timestamp": site.built_at,
        "files": files,
        "etag": site.etag,
    }))
}

async fn entity_metadata(
    State(state): State<TechdocsApi>,
    Extension(who): Extension<Identity>,
    Path((namespace, kind, name)): Ref,
) -> Result<Response, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let mut entity = reachable(&state, &who, &r).await?;
    let source = state
        .techdocs
        .source(&entity)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    let (kind, target) = source.location_metadata();
    entity["locationMetadata"] = json!({"type": kind, "target": target});
    Ok(Json(entity).into_response())
}

async fn static_file(
    State(state): State<TechdocsApi>,
    Extension(who): Extension<Identity>,
    Path((namespace, kind, name, path)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    reachable(&state, &who, &r).await?;
    let missing = || ApiError::not_found(format!("No file {path} in the docs of {r}"));
    if path.split('/').any(|s| s == ".." || s == ".") || path.contains('\\') {
        return Err(missing());
    }
    let store = state.techdocs.store();
    if path == "techdocs_metadata.json" {
        return Ok(Json(site_metadata(&state.techdocs, &r).await?).into_response());
    }
    if let Some(page_path) = path
        .strip_suffix("index.html")
        .filter(|p| p.is_empty() || p.ends_with('/'))
    {
        let page = store
            .page(&r.key(), page_path)
            .await
            .map_err(store_error)?
            .ok_or_else(missing)?;
        let html = maud::html! {
            (maud::DOCTYPE)
            html {
                head { meta charset="utf-8"; title { (page.title) } }
                body {
                    div.md-container { main.md-main { div.md-content data-md-component="content" {
                        article.md-content__inner.md-typeset { (maud::PreEscaped(&page.html)) }
                    } } }
                }
            }
        };
        let mut response = html.into_string().into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; img-src 'self' data:; style-src 'self'; sandbox",
            ),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        return Ok(response);
    }
    let asset = store
        .asset(&r.key(), &path)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    Ok(crate::web::asset_response(
        &asset.content_type,
        asset.bytes,
        &asset.hash,
    ))
}

/// One server-sent event; `data` is JSON, as Backstage's router writes it.
fn event(name: &str, data: &Value) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
}

async fn sync(
    State(state): State<TechdocsApi>,
    Extension(who): Extension<Identity>,
    Path((namespace, kind, name)): Ref,
) -> Result<Response, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let entity = reachable(&state, &who, &r).await?;
    // An entity without docs has nothing to sync; any other problem with
    // its source is the build's error, reported in the stream.
    if let Err(e @ crate::techdocs::SourceError::NotAnnotated) = state.techdocs.source(&entity) {
        return Err(ApiError::not_found(e.to_string()));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let techdocs = state.techdocs.clone();
    tokio::spawn(async move {
        let _ = tx
            .send(event(
                "log",
                &Value::from(format!("Checking the docs of {r} for changes")),
            ))
            .await;
        match techdocs.build_now(&r).await {
            Ok(report) => {
                let _ = tx
                    .send(event(
                        "log",
                        &Value::from(format!(
                            "Rendered {} page(s), {} unchanged, {} removed, {} file(s) stored, {} problem(s), in {} ms",
                            report.rendered,
                            report.unchanged,
                            report.removed,
                            report.files,
                            report.problems.len(),
                            report.took.as_millis()
                        )),
                    ))
                    .await;
                for p in report.problems.iter().take(100) {
                    let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                    let _ = tx
                        .send(event(
                            "log",
                            &Value::from(format!("{}{at}: {}", p.file, p.message)),
                        ))
                        .await;
                }
                let _ = tx
                    .send(event("finish", &json!({"updated": report.updated})))
                    .await;
            }
            Err(DocsError::Busy(_)) => {
                let _ = tx
                    .send(event(
                        "log",
                        &Value::from("A build of this site is under way on another replica"),
                    ))
                    .await;
                let _ = tx.send(event("finish", &json!({"updated": false}))).await;
            }
            Err(e) => {
                let _ = tx.send(event("error", &Value::from(e.to_string()))).await;
            }
        }
    });
    let mut response = Response::new(Body::new(crate::api::admin::audit::Channel(rx)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
