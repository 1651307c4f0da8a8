//! The diagnostics server (port 5680): `/healthy`, `/ready`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Whether the process can take work; checked on every `/ready`.
pub type ReadinessCheck = Arc<dyn Fn() -> futures_ready::BoxReady + Send + Sync>;

/// Boxed readiness future: `Err(reason)` when not ready.
pub mod futures_ready {
    pub type BoxReady =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
}

/// Installs the global Prometheus recorder once per process and returns its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (tests in one process): keep ours for rendering.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(Clone)]
struct Diag {
    metrics: PrometheusHandle,
    ready: ReadinessCheck,
}

pub fn router(metrics: PrometheusHandle, ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthy", get(|| async { "ok" }))
        .route("/ready", get(readiness))
        .route(
            "/metrics",
            get(|State(d): State<Diag>| async move { d.metrics.render() }),
        )
        .with_state(Diag { metrics, ready })
}

async fn readiness(State(d): State<Diag>) -> (StatusCode, String) {
    match (d.ready)().await {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}
