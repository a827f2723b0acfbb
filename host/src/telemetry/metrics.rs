//! Prometheus metrics: the recorder, the names the host emits, what is read
//! at scrape time, and the `/metrics` routes.
//!
//! Everything emits through the `metrics` facade (the catalog and the stores
//! too, with names from their own crates); without an installed recorder
//! (`telemetry.metrics.enabled = false`) every emission is a no-op. Label
//! values are bounded: route templates (never paths), methods, status codes,
//! plugin ids (installed plugins), error kinds, configured locations; never
//! entity names or user ids.

use std::{sync::OnceLock, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered, by method, route template and status.
pub const HTTP_REQUESTS: &str = "callboard_http_requests_total";
/// How long requests took, by method and route template.
pub const HTTP_DURATION: &str = "callboard_http_request_duration_seconds";
/// Plugin calls started, by plugin and kind (request, view, events, tick).
pub const PLUGIN_CALLS: &str = "callboard_plugin_calls_total";
/// Plugin calls that failed, and host calls refused, by plugin and error.
pub const PLUGIN_ERRORS: &str = "callboard_plugin_call_errors_total";
/// How long plugin calls took, by plugin and kind.
pub const PLUGIN_DURATION: &str = "callboard_plugin_call_duration_seconds";
/// Calls refused before they ran, by plugin and reason.
pub const PLUGIN_REJECTED: &str = "callboard_plugin_calls_rejected_total";

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of long operations (a catalog refresh, an ingestion): 10 ms to 30 min.
const LONG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0,
];

/// The process's recorder, installed by the first server that wants
/// metrics (one per process: the facade has one global recorder).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and starts its upkeep; `None`
/// when another recorder holds the facade.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("callboard_catalog_".into()),
                        LONG_BUCKETS,
                    )
                });
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!("metrics: cannot install the recorder: {e}");
                    return None;
                }
            };
            describe();
            let upkeep = handle.clone();
            // Histograms are folded into their buckets here, so memory stays
            // bounded between scrapes.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The help text of every series (promtool wants one per family).
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response headers, by method and route template."
    );
    describe_counter!(
        PLUGIN_CALLS,
        "Plugin calls started, by plugin id and kind (request, view, events, tick)."
    );
    describe_counter!(
        PLUGIN_ERRORS,
        "Plugin calls that failed (trap, deadline, memory, busy, invalid_response, too_large), \
         and calls or host calls refused for want of a grant or licence (denied), by plugin id."
    );
    describe_histogram!(
        PLUGIN_DURATION,
        metrics::Unit::Seconds,
        "Time plugin calls ran, admission included, by plugin id and kind (tick: scheduled tasks)."
    );
    describe_counter!(
        PLUGIN_REJECTED,
        "Plugin calls refused before they ran, by plugin id and reason (plugin_full, pool_full, files_spent)."
    );
    describe_gauge!(
        "callboard_plugin_instances_in_use",
        "Plugin instances running now, by plugin id."
    );
    describe_gauge!(
        "callboard_plugin_instances_max",
        "Most instances of one plugin that may run at once, by plugin id."
    );
    describe_gauge!(
        "callboard_plugin_calls_queued",
        "Plugin calls waiting for one of the plugin's slots, by plugin id."
    );
    describe_gauge!(
        "callboard_plugin_event_queue_depth",
        "Events queued for a subscribed plugin and not yet delivered, by plugin id."
    );
    describe_counter!(
        "callboard_plugin_events_delivered_total",
        "Events this replica delivered to a plugin in batches that completed, by plugin id."
    );
    describe_counter!(
        "callboard_plugin_events_dropped_total",
        "Events this replica dropped (queue full, plugin disabled), by plugin id."
    );
    describe_counter!(
        "callboard_plugin_event_batches_failed_total",
        "Event batches whose call failed, by plugin id."
    );
    describe_gauge!("callboard_plugins_loaded", "Plugins loaded and serving.");
    describe_gauge!(
        "callboard_catalog_entities",
        "Entities in the catalog, by kind (the 50 most common kinds; the rest as kind=\"other\")."
    );
    describe_gauge!(
        "callboard_db_pool_connections",
        "Database connections open in this replica's pool."
    );
    describe_gauge!(
        "callboard_db_pool_connections_idle",
        "Database connections open and idle in this replica's pool."
    );
    describe_gauge!(
        "callboard_db_pool_connections_max",
        "Most database connections this replica's pool opens."
    );
    describe_gauge!(
        "callboard_db_pool_waiting",
        "Database calls waiting for a pooled connection."
    );
    describe_gauge!(
        "callboard_feed_head",
        "Sequence number of the newest event on the change feed."
    );
    callboard_catalog::metrics::describe();
    callboard_store::metrics::describe();
}

/// Counts one plugin call of `kind` and how it ended (`error`: the
/// [`crate::plugins::call::CallError`] kind, `None` on success).
pub fn plugin_call(plugin: &str, kind: &'static str, error: Option<&'static str>, took: Duration) {
    let plugin = id_of(plugin).to_owned();
    counter!(PLUGIN_CALLS, "plugin" => plugin.clone(), "kind" => kind).increment(1);
    histogram!(PLUGIN_DURATION, "plugin" => plugin.clone(), "kind" => kind)
        .record(took.as_secs_f64());
    if let Some(error) = error {
        counter!(PLUGIN_ERRORS, "plugin" => plugin, "error" => error).increment(1);
    }
}

/// Counts a call of `plugin` refused before it started (licence, size).
pub fn plugin_refused(plugin: &str, kind: &'static str, error: &'static str) {
    let plugin = id_of(plugin).to_owned();
    counter!(PLUGIN_CALLS, "plugin" => plugin.clone(), "kind" => kind).increment(1);
    counter!(PLUGIN_ERRORS, "plugin" => plugin, "error" => error).increment(1);
}

/// Counts an error of a call already counted (its answer was invalid).
pub fn plugin_error(plugin: &str, error: &'static str) {
    counter!(PLUGIN_ERRORS, "plugin" => id_of(plugin).to_owned(), "error" => error).increment(1);
}

/// Counts a call or host call of `plugin` refused for want of a grant.
pub fn plugin_denied(plugin: &str) {
    counter!(PLUGIN_ERRORS, "plugin" => id_of(plugin).to_owned(), "error" => "denied").increment(1);
}

/// Counts a call of `plugin` refused before it ran.
pub fn plugin_rejected(plugin: &str, reason: &'static str) {
    counter!(PLUGIN_REJECTED, "plugin" => id_of(plugin).to_owned(), "reason" => reason)
        .increment(1);
}

/// `id` of `id@version` (labels stay the same across a plugin's updates).
fn id_of(label: &str) -> &str {
    label.split_once('@').map_or(label, |(id, _)| id)
}

/// Most kinds `callboard_catalog_entities` has a series for.
const MAX_KINDS: usize = 50;

/// What the metrics endpoints read (the root projects it from its state).
#[derive(Clone)]
pub struct Scrape {
    /// Plugin instances, queues and failures.
    pub plugins: crate::plugins::PluginHost,
    /// Entities by kind.
    pub catalog: callboard_catalog::Catalog,
    /// The database pool and the change feed.
    pub stores: callboard_store::Stores,
    /// The recorder (`None`: metrics are off).
    pub handle: Option<PrometheusHandle>,
    /// The admin token may scrape.
    pub tokens: std::sync::Arc<crate::auth::Tokens>,
    /// The metrics token's digest (`telemetry.metrics.token_sha256`).
    pub token_sha256: Option<String>,
}

/// Reads what is only known at scrape time into gauges.
async fn collect(state: &Scrape) {
    let plugins = &state.plugins;
    let live = plugins.list();
    gauge!("callboard_plugins_loaded").set(live.len() as f64);
    for usage in plugins.usage() {
        let id = usage.id;
        gauge!("callboard_plugin_instances_in_use", "plugin" => id.clone())
            .set(usage.in_use as f64);
        gauge!("callboard_plugin_instances_max", "plugin" => id.clone()).set(usage.max as f64);
        gauge!("callboard_plugin_calls_queued", "plugin" => id.clone()).set(usage.queued as f64);
        if let Some(events) = usage.events {
            gauge!("callboard_plugin_event_queue_depth", "plugin" => id.clone())
                .set(events.queued as f64);
            counter!("callboard_plugin_events_delivered_total", "plugin" => id.clone())
                .absolute(events.counts.delivered);
            counter!("callboard_plugin_events_dropped_total", "plugin" => id.clone())
                .absolute(events.counts.dropped);
            counter!("callboard_plugin_event_batches_failed_total", "plugin" => id)
                .absolute(events.counts.failed_batches);
        }
    }
    match state.catalog.facets(&["kind".to_owned()], None).await {
        Ok(facets) => {
            let mut kinds = facets.get("kind").cloned().unwrap_or_default();
            kinds.sort_by_key(|k| std::cmp::Reverse(k.count));
            let other: u64 = kinds.iter().skip(MAX_KINDS).map(|k| k.count).sum();
            for kind in kinds.iter().take(MAX_KINDS) {
                gauge!("callboard_catalog_entities", "kind" => kind.value.to_ascii_lowercase())
                    .set(kind.count as f64);
            }
            if kinds.len() > MAX_KINDS {
                gauge!("callboard_catalog_entities", "kind" => "other").set(other as f64);
            }
        }
        Err(e) => tracing::debug!("metrics: counting entities by kind: {e}"),
    }
    let pool = state.stores.admin.pool();
    gauge!("callboard_db_pool_connections").set(pool.open as f64);
    gauge!("callboard_db_pool_connections_idle").set(pool.idle as f64);
    gauge!("callboard_db_pool_connections_max").set(pool.max as f64);
    gauge!("callboard_db_pool_waiting").set(pool.waiting as f64);
    if let Ok(Ok(head)) =
        tokio::time::timeout(Duration::from_secs(2), state.stores.feed.head()).await
    {
        gauge!("callboard_feed_head").set(head as f64);
        for (follower, seq) in callboard_store::metrics::feed_positions() {
            gauge!(callboard_store::metrics::FEED_LAG, "follower" => follower)
                .set(head.saturating_sub(seq).max(0) as f64);
        }
    }
}

/// The exposition, after reading the scrape-time gauges.
async fn render(state: &Scrape, handle: &PrometheusHandle) -> Response {
    collect(state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// `GET /metrics` on the main address: the admin token or the metrics token
/// (`telemetry.metrics.token_sha256`) as a bearer token; anyone else 401.
pub fn router(state: &Scrape) -> Router {
    let Some(handle) = state.handle.clone() else {
        return Router::new();
    };
    Router::new()
        .route(
            "/metrics",
            get(move |State(state): State<Scrape>, headers: HeaderMap| {
                let handle = handle.clone();
                async move {
                    if !may_scrape(&state, &headers) {
                        return (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Bearer")],
                            "metrics need the admin token or the metrics token as a bearer token\n",
                        )
                            .into_response();
                    }
                    render(&state, &handle).await
                }
            }),
        )
        .with_state(state.clone())
}

fn may_scrape(state: &Scrape, headers: &HeaderMap) -> bool {
    let Some(offered) = crate::auth::bearer(headers) else {
        return false;
    };
    if state.tokens.is_admin(offered) {
        return true;
    }
    state
        .token_sha256
        .as_deref()
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .is_some_and(|digest| digest == crate::auth::digest(offered))
}

/// Serves `GET /metrics` (nothing else, no token) on
/// `telemetry.metrics.bind`, until the process ends.
pub async fn serve_separately(
    state: Scrape,
    handle: PrometheusHandle,
    listener: tokio::net::TcpListener,
) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let state = state.clone();
            let handle = handle.clone();
            async move { render(&state, &handle).await }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("metrics listener stopped: {e}");
    }
}
