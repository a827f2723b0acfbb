//! Operations: logs (text or JSON lines), Prometheus metrics, OpenTelemetry
//! traces, and the request id every response carries.
//!
//! - [`init`] installs the process's `tracing` subscriber: the log layer
//!   (filtered by `RUST_LOG`) and, when `telemetry.traces.otlp_endpoint` is
//!   set, the OTLP layer (the host's own spans only).
//! - [`request::track`] wraps every request: id, span, HTTP metrics.
//! - [`metrics`] installs the recorder and serves `/metrics`.
//!
//! Spans the host opens, and so what a trace shows: `request` (one per
//! HTTP request), `plugin_call` (plugin `id@version`, kind), `host_call`
//! (a plugin's kv, catalog or http call, inside its `plugin_call`) and
//! `db` (one database batch: a SQLite transaction or read, a PostgreSQL
//! connection's use). Logs name no secrets and no person beyond the user ref.

pub mod config;
pub mod metrics;
pub mod request;
pub mod traces;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{FilterExt as _, Targets, filter_fn},
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use config::LogFormat;

/// The default log filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,wasmtime_cranelift=warn,cranelift=warn";

/// What must live as long as the process logs and traces; [`Telemetry::shutdown`]
/// flushes the spans still batched.
#[must_use]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still batched (within the export timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("traces: the last spans were not exported: {e}");
        }
    }
}

/// Whether log lines are JSON (set by [`init`]).
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`init`] set up JSON log lines (a failing command then reports
/// its error as one).
pub fn json_logs() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Installs the subscriber: logs in `format` on standard error, and spans
/// to `traces` when given.
pub fn init(format: LogFormat, traces: Option<SdkTracerProvider>) -> Telemetry {
    init_filtered(format, traces, DEFAULT_FILTER)
}

/// [`init`] with `default_filter` when `RUST_LOG` is not set (`callboard
/// plugin dev` shows the plugin's own lines and the host's warnings only).
pub fn init_filtered(
    format: LogFormat,
    traces: Option<SdkTracerProvider>,
    default_filter: &str,
) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // Only the host's own spans become trace spans: a dependency's debug
    // spans would cost on every request and say nothing to an operator.
    let own = Targets::new()
        .with_target("callboard", tracing::Level::INFO)
        .with_target("callboard_catalog", tracing::Level::INFO)
        .with_target("callboard_store", tracing::Level::INFO)
        .with_target("callboard_store_sqlite", tracing::Level::INFO)
        .with_target("callboard_store_postgres", tracing::Level::INFO);
    let spans = traces
        .as_ref()
        .map(|provider| traces::layer(provider).with_filter(own));
    // The host's spans stay on whatever `RUST_LOG` says, so a warning still
    // names its request id and plugin (a span prints nothing by itself).
    let own_spans = filter_fn(|meta| meta.is_span() && meta.target().starts_with("callboard"));
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter.or(own_spans)))
        .with(spans)
        .try_init();
    match installed {
        Ok(()) => JSON.store(
            format == LogFormat::Json,
            std::sync::atomic::Ordering::Relaxed,
        ),
        Err(e) => eprintln!("logging was already set up: {e}"),
    }
    Telemetry { traces }
}
