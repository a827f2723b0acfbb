//! Health probes (anyone may call them; they say nothing about the
//! catalog's content):
//!
//! - `GET /api/health` (Backstage's): 200 while the database answers, 503
//!   naming it while it does not.
//! - `GET /api/health/live`: the process answers. Touches nothing else, so
//!   an orchestrator never restarts a replica for a database outage.
//! - `GET /api/health/ready`: this replica should get traffic: the database
//!   answers, its schema is this build's, the catalog's start-up load has
//!   finished, and (several replicas) the database's plugin files were
//!   applied. 503 with the checks that are not ready, by name.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use callboard_store::Admin;
use serde_json::{Value, json};

/// How long a probe waits for the database.
const DATABASE_WAIT: Duration = Duration::from_secs(2);

/// The probes' routes.
pub fn router(ready: Ready) -> Router {
    let admin = ready.admin.clone();
    Router::new()
        .route("/api/health", get(move || health(admin.clone())))
        .route(
            "/api/health/live",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route(
            "/api/health/ready",
            get(move || {
                let ready = ready.clone();
                async move { ready.check().await }
            }),
        )
}

/// `GET /api/health`: 200 while the database answers, 503 naming it while
/// it does not, so a load balancer takes the replica out.
async fn health(admin: Arc<dyn Admin>) -> Response {
    let database = |status: &str, error: Option<String>| json!({"backend": admin.backend(), "status": status, "error": error});
    match ping(&*admin).await {
        Ok(()) => Json(json!({"status": "ok", "database": database("ok", None)})).into_response(),
        Err(e) => {
            let database = database("unavailable", Some(e));
            tracing::warn!(database = %database, "health: the database is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": database})),
            )
                .into_response()
        }
    }
}

async fn ping(admin: &dyn Admin) -> Result<(), String> {
    match tokio::time::timeout(DATABASE_WAIT, admin.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the database did not answer within {} s",
            DATABASE_WAIT.as_secs()
        )),
    }
}

/// What the probes look at (the root projects it from its state).
#[derive(Clone)]
pub struct Ready {
    /// The database.
    pub admin: Arc<dyn Admin>,
    /// The catalog's start-up load.
    pub catalog: callboard_catalog::Catalog,
    /// The plugin files' sync (several replicas).
    pub plugins: crate::plugins::PluginHost,
}

impl Ready {
    async fn check(&self) -> Response {
        let mut checks = serde_json::Map::new();
        let mut not_ready = Vec::new();
        let mut record = |name: &str, outcome: Result<Value, String>| match outcome {
            Ok(detail) => {
                checks.insert(name.into(), json!({"ready": true, "detail": detail}));
            }
            Err(why) => {
                not_ready.push(format!("{name}: {why}"));
                checks.insert(name.into(), json!({"ready": false, "detail": why}));
            }
        };
        let database = ping(&*self.admin).await;
        let reachable = database.is_ok();
        record(
            "database",
            database.map(|()| Value::String(self.admin.backend().into())),
        );
        if reachable {
            record("migrations", self.migrations().await);
        } else {
            record(
                "migrations",
                Err("unknown: the database does not answer".into()),
            );
        }
        record(
            "catalog",
            if self.catalog.first_load_done() {
                Ok(Value::String("the start-up load has finished".into()))
            } else {
                Err("the start-up load has not finished".into())
            },
        );
        record(
            "plugins",
            if self.plugins.plugins_synced() {
                Ok(json!({ "loaded": self.plugins.list().len() }))
            } else {
                Err("the database's plugin files have not been applied yet".into())
            },
        );
        let ready = not_ready.is_empty();
        let body = json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": checks,
            "not_ready": not_ready,
        });
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(body)).into_response()
    }

    /// Every store's schema is the version this build knows.
    async fn migrations(&self) -> Result<Value, String> {
        let schema = tokio::time::timeout(DATABASE_WAIT, self.admin.schema())
            .await
            .map_err(|_| "the database did not answer within 2 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let behind: Vec<String> = schema
            .iter()
            .filter(|s| s.version != s.supported)
            .map(|s| {
                format!(
                    "{} at version {} (this build: {})",
                    s.store, s.version, s.supported
                )
            })
            .collect();
        if behind.is_empty() {
            Ok(json!(schema.len()))
        } else {
            Err(behind.join("; "))
        }
    }
}
