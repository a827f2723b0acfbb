//! `[telemetry]`: log format, the metrics endpoint, OTLP traces.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[telemetry]` in `callboard.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// How log lines are written to standard error: `"text"` (one
    /// human-readable line each) or `"json"` (one JSON object per line).
    /// `--log-format` overrides it. Default `"text"`.
    pub log_format: LogFormat,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces.
    pub traces: TracesConfig,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields,
    /// and the spans it happened in (request id, plugin `id@version`).
    Json,
}

/// `[telemetry.metrics]`: `/metrics` in the Prometheus text format.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Collect metrics and serve them. Default true.
    pub enabled: bool,
    /// A second address serving only `GET /metrics`, without a token (bind
    /// it where only the scraper reaches, e.g. a private interface).
    /// Default none.
    pub bind: Option<SocketAddr>,
    /// SHA-256 (hex) of a bearer token that may read `/metrics` on the main
    /// address (`printf %s "$TOKEN" | sha256sum`); the admin token always
    /// may. Default none.
    pub token_sha256: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: None,
            token_sha256: None,
        }
    }
}

/// `[telemetry.traces]`: spans exported over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`
    /// (spans are posted to `<endpoint>/v1/traces`). Default none: no
    /// traces are exported.
    pub otlp_endpoint: Option<String>,
    /// Share of requests traced, 0.0 to 1.0 (a trace started upstream keeps
    /// its own decision). Default 1.0.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans. Default `"callboard"`.
    pub service_name: String,
    /// Longest one export may take, in milliseconds. Default 10000.
    pub export_timeout_ms: u64,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            service_name: "callboard".into(),
            export_timeout_ms: 10_000,
        }
    }
}

impl TelemetryConfig {
    /// Checks values serde cannot: `Err((field, reason))`.
    pub fn check(&self, bind: SocketAddr) -> Result<(), (String, String)> {
        let traces = &self.traces;
        if !(0.0..=1.0).contains(&traces.sample_ratio) {
            return Err((
                "telemetry.traces.sample_ratio".into(),
                format!("{} is not between 0.0 and 1.0", traces.sample_ratio),
            ));
        }
        if let Some(endpoint) = &traces.otlp_endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| {
                (
                    "telemetry.traces.otlp_endpoint".to_owned(),
                    format!("{endpoint:?} is not a URL: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err((
                    "telemetry.traces.otlp_endpoint".into(),
                    format!("{endpoint:?} is not an http or https URL"),
                ));
            }
        }
        if traces.service_name.is_empty() || traces.service_name.len() > 128 {
            return Err((
                "telemetry.traces.service_name".into(),
                "must be 1 to 128 bytes".into(),
            ));
        }
        if let Some(digest) = &self.metrics.token_sha256
            && (digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err((
                "telemetry.metrics.token_sha256".into(),
                "is not a SHA-256 digest (64 hex digits)".into(),
            ));
        }
        if let Some(metrics) = self.metrics.bind
            && metrics == bind
            && metrics.port() != 0
        {
            return Err((
                "telemetry.metrics.bind".into(),
                format!("{metrics} is the portal's own address (bind); choose another"),
            ));
        }
        Ok(())
    }
}
