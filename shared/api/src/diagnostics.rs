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
/// Histogram buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Real histograms (`_bucket` series Prometheus can aggregate across replicas), from
            // half a millisecond to ten seconds.
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (tests in one process): keep ours for rendering.
            let _ = metrics::set_global_recorder(recorder);
            // Kept current even when nobody scrapes, so memory stays bounded.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
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
