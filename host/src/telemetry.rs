//! OpenTelemetry traces over OTLP/HTTP, configured by the standard
//! environment (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` turns them on; `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` as the SDK reads them).
//!
//! Each call is a `call` span — a child of the caller's W3C `traceparent`
//! when it sent one — with a span per pipeline stage under it (the
//! [`crate::metrics`] stage timers open them). Upstream MCP servers and
//! model providers get a `traceparent` naming the call's `run` stage, so
//! their spans sit under Warden's; with traces off they get the caller's.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::trace::TraceParent;

/// The exporter of this process, while traces are on.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts exporting when the environment names an OTLP endpoint;
    /// `Ok(None)` when it names none.
    pub fn from_env() -> Result<Option<Telemetry>, String> {
        let configured = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
        if !configured {
            return Ok(None);
        }
        // The exporter's HTTP client builds a TLS stack even for http://.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("OTLP trace exporter: {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("warden");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Telemetry { provider }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("warden"))
    }

    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: exporting the last traces failed: {e}");
        }
    }
}

/// Makes `span` a child of the caller's trace context. Without traces on
/// (no OpenTelemetry layer) this does nothing.
pub fn adopt(span: &tracing::Span, caller: Option<&TraceParent>) {
    let Some(caller) = caller else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_string(), caller.as_str().to_string())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The trace context to pass on from `span`: the span itself when traces
/// are on, else the caller's, unchanged.
pub fn outgoing(span: &tracing::Span, caller: Option<&TraceParent>) -> Option<TraceParent> {
    let context = span.context();
    let own = context.span().span_context().clone();
    if !own.is_valid() {
        return caller.cloned();
    }
    TraceParent::parse(&format!(
        "00-{}-{}-{:02x}",
        own.trace_id(),
        own.span_id(),
        own.trace_flags().to_u8()
    ))
    .or_else(|| caller.cloned())
}
