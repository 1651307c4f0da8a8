//! Logging and tracing set-up for every Atoll binary.
//!
//! Owns the `tracing` subscriber: human-readable or JSON logs on stderr, filtered by
//! `RUST_LOG` (default `info`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported
//! over OTLP/gRPC. It must not hold business metrics: each component registers its own.
#![forbid(unsafe_code)]

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `ATOLL_LOG_FORMAT=json` selects JSON; anything else is text.
    pub fn from_env() -> Self {
        match std::env::var("ATOLL_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot set up the OTLP exporter for {endpoint}: {source}")]
    Otlp {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot start the OTLP exporter's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps exporters alive; dropping it flushes pending spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Drives the exporter's gRPC connection. Its own, so that telemetry can start before the
    /// binary's runtime and outlive it, and so a slow collector never takes a worker from it.
    exporter_runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Best effort: a collector that is gone must not block shutdown.
            let _ = provider.shutdown();
        }
        if let Some(runtime) = self.exporter_runtime.take() {
            // Not a blocking shutdown: this may run inside another runtime.
            runtime.shutdown_background();
        }
    }
}

/// Installs the global subscriber for the binary `service`.
pub fn init(service: &'static str, format: LogFormat) -> Result<Telemetry, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(spec)?,
        _ => EnvFilter::new("info"),
    };
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (provider, exporter_runtime) = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-export")
                .enable_all()
                .build()
                .map_err(TelemetryError::Runtime)?;
            let provider = {
                let _entered = runtime.enter();
                otlp_provider(service, &endpoint)?
            };
            (Some(provider), Some(runtime))
        }
        _ => (None, None),
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(Telemetry {
        provider,
        exporter_runtime,
    })
}

fn otlp_provider(
    service: &'static str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Otlp {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Carrying a trace across processes and through the store (docs/observability.md, "Traces").
///
/// A W3C `traceparent` string is the only form that leaves a process: it is what the store
/// keeps with a change and what KDS carries with a resource, so neither needs OpenTelemetry.
pub mod propagation {
    use opentelemetry::Context;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The `traceparent` of `span`, when spans are exported and `span` is sampled.
    pub fn traceparent(span: &tracing::Span) -> Option<String> {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        })
    }

    /// The `traceparent` of the current span.
    pub fn current() -> Option<String> {
        traceparent(&tracing::Span::current())
    }

    /// Makes `span` a child of the remote span `traceparent` names. Ignores a malformed value
    /// (it comes from the network or the database) and does nothing when spans are not exported.
    pub fn continue_from(span: &tracing::Span, traceparent: &str) {
        if let Some(sc) = parse(traceparent) {
            let _ = span.set_parent(Context::new().with_remote_span_context(sc));
        }
    }

    fn parse(traceparent: &str) -> Option<SpanContext> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
            return None;
        }
        let sc = SpanContext::new(
            TraceId::from_hex(trace).ok()?,
            SpanId::from_hex(span).ok()?,
            TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
            true,
            TraceState::default(),
        );
        sc.is_valid().then_some(sc)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_only_well_formed_traceparents() {
            let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let sc = parse(good).expect("valid");
            assert_eq!(
                sc.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
            assert!(sc.is_sampled());
            for bad in [
                "",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ] {
                assert!(parse(bad).is_none(), "{bad:?} accepted");
            }
        }

        #[test]
        fn without_an_exporter_there_is_nothing_to_carry() {
            let span = tracing::info_span!("untraced");
            continue_from(
                &span,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            );
            assert_eq!(traceparent(&span), None);
        }
    }
}
