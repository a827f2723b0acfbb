//! OpenTelemetry traces over OTLP/HTTP (protobuf): the spans the host opens
//! (a request, each plugin call and its host calls, each database batch)
//! become OTLP spans, batched and posted to `<otlp_endpoint>/v1/traces` by
//! the SDK's own thread, through the host's reqwest client.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context as _;
use opentelemetry::{propagation::TextMapPropagator as _, trace::TracerProvider as _};
use opentelemetry_http::{Bytes, HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::config::TracesConfig;

/// Whether spans are exported (the request path skips reading
/// `traceparent` otherwise).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Largest response read from the collector.
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// The exporter's HTTP client: the host's reqwest, run on the host's tokio
/// runtime (the SDK exports from a thread of its own, outside the runtime).
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = sent.await??;
        Ok(Response::builder().status(status).body(Bytes::from(body))?)
    }
}

/// The tracer provider, when `otlp_endpoint` is set; flushes what is
/// batched when shut down.
pub fn provider(
    config: &TracesConfig,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<Option<SdkTracerProvider>> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let timeout = Duration::from_millis(config.export_timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("telemetry.traces: cannot build the HTTP client")?;
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(timeout)
        .with_http_client(Client { http, runtime })
        .build()
        .with_context(|| format!("telemetry.traces.otlp_endpoint: cannot export to {url}"))?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .with_max_queue_size(8192)
                .with_max_export_batch_size(2048)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder_empty()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Some(provider))
}

/// The `tracing` layer that turns spans into OTLP spans.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("callboard"))
        // Source locations (three attributes on every span) and busy/idle
        // times say nothing to an operator and cost on every span.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
}

/// Continues the caller's trace when the request carries a W3C
/// `traceparent` (a proxy or another service traced it first).
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}
