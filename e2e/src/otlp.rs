//! A real OTLP/gRPC trace receiver: the collector service from `opentelemetry-proto`, on a free
//! loopback port, keeping every span it is sent so a test can follow one trace across the
//! processes that exported it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// One received span, with ids in lowercase hex.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The exporting process's `service.name`.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

struct Collector {
    spans: Spans,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                });
            }
        }
        self.spans
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The receiver; it stops when dropped.
pub struct OtlpReceiver {
    pub port: u16,
    spans: Spans,
    _runtime: tokio::runtime::Runtime,
}

impl OtlpReceiver {
    pub fn start() -> anyhow::Result<OtlpReceiver> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let spans = Spans::default();
        let collector = Collector {
            spans: spans.clone(),
        };
        runtime.spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector))
                .serve_with_incoming(incoming)
                .await;
        });
        Ok(OtlpReceiver {
            port,
            spans,
            _runtime: runtime,
        })
    }

    /// What a control plane needs to export here, flushing spans every 200 ms.
    pub fn env(&self) -> BTreeMap<String, String> {
        [
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Every span received so far of the trace `trace_id`.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .map(|spans| {
                spans
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls until `done` holds for the spans of `trace_id`, or fails after `deadline` with
    /// what had arrived.
    pub fn wait_trace(
        &self,
        trace_id: &str,
        deadline: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> anyhow::Result<Vec<ReceivedSpan>> {
        let end = Instant::now() + deadline;
        loop {
            let spans = self.trace(trace_id);
            if done(&spans) {
                return Ok(spans);
            }
            if Instant::now() > end {
                let seen: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{}/{}", s.service, s.name))
                    .collect();
                anyhow::bail!("trace {trace_id} incomplete after {deadline:?}; received {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
