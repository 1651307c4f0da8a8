//! The REST API on Kuma's paths (SPEC.md, "REST API").

mod body;
mod certificates;
mod dataplane_overview;
mod errors;
mod list;
pub mod openapi;
mod overview;
mod resources;
mod target;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use atoll_store::Store;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument;

pub use certificates::{CsrError, IssuedCertificate, IssuerSlot, ZoneCertificateIssuer};
pub use errors::{ApiError, Cause, ErrorBody};

use crate::auth::ApiAuth;

/// Which control plane serves the API: decides which types may be written here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Global,
    Zone { name: String },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Zone { .. } => "zone",
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub mode: Mode,
    pub auth: ApiAuth,
    /// Set on the global once its KDS CA is ready.
    pub zone_certificates: IssuerSlot,
    /// Fills in server-computed `status` (a zone's MeshExternalService hostnames and VIP).
    pub status: Option<StatusFn>,
}

/// Computes a resource's `status` as it is read; `None` leaves the stored one.
pub type StatusFn = Arc<dyn Fn(&atoll_model::Resource) -> Option<serde_json::Value> + Send + Sync>;

pub fn router(state: ApiState) -> Router {
    // A zone answers one proxy's overview from its live streams (its own extra route).
    let one_overview = match state.mode {
        Mode::Global => Router::new()
            .route(
                "/meshes/{mesh}/dataplanes+insights/{name}",
                get(dataplane_overview::get),
            )
            .route(
                "/meshes/{mesh}/dataplanes/{name}/_overview",
                get(dataplane_overview::get),
            ),
        Mode::Zone { .. } => Router::new(),
    };
    Router::new()
        .merge(one_overview)
        .route(
            "/meshes/{mesh}/dataplanes+insights",
            get(dataplane_overview::list),
        )
        // Kuma's other spelling of the same overview.
        .route(
            "/meshes/{mesh}/dataplanes/_overview",
            get(dataplane_overview::list),
        )
        .route("/", get(index))
        .route("/tokens/dataplane", axum::routing::post(tokens::dataplane))
        .route("/tokens/zone", axum::routing::post(tokens::zone))
        .route("/tokens/user", axum::routing::post(tokens::user))
        .route("/openapi.json", get(openapi::serve))
        .route("/zones/_overview", get(overview::zones))
        .route(
            "/zones/{name}/certificate",
            axum::routing::post(certificates::issue),
        )
        .route("/{plural}", get(list::list_all))
        .route(
            "/{plural}/{name}",
            get(resources::get_global)
                .put(resources::put_global)
                .delete(resources::delete_global),
        )
        .route("/meshes/{mesh}/{plural}", get(list::list_in_mesh))
        .route(
            "/meshes/{mesh}/{plural}/{name}",
            get(resources::get_in_mesh)
                .put(resources::put_in_mesh)
                .delete(resources::delete_in_mesh),
        )
        .fallback(|| async { ApiError::not_found("no such path") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        // The page holds no data: it reads the API above with the browser's credentials.
        .merge(crate::gui::router())
        .layer(axum::middleware::from_fn(observe))
        .with_state(state)
}

/// `resource` as `user` may read it: with private keys redacted unless they may see secrets.
fn readable(
    state: &ApiState,
    user: &atoll_auth::User,
    mut resource: atoll_model::Resource,
) -> atoll_model::Resource {
    if !state.auth.may_view_secrets(user) {
        atoll_model::redact::redact_key_material(&mut resource);
    }
    if let Some(status) = state.status.as_ref().and_then(|f| f(&resource)) {
        resource.status = Some(status);
    }
    resource
}

async fn index(State(state): State<ApiState>) -> Response {
    let zone = match &state.mode {
        Mode::Zone { name } => Some(name.clone()),
        Mode::Global => None,
    };
    axum::Json(serde_json::json!({
        "tagline": "Atoll",
        "product": "Atoll",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.mode.name(),
        "zone": zone,
    }))
    .into_response()
}

/// A span and metrics for every request.
async fn observe(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let span = tracing::info_span!("api", %method, path = %request.uri().path(), user = tracing::field::Empty, status = tracing::field::Empty);
    // A caller that traces its own work (W3C Trace Context) sees the write continue its trace.
    if let Some(parent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        atoll_telemetry::propagation::continue_from(&span, parent);
    }
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("atoll_api_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("atoll_api_request_duration_seconds", "method" => method.to_string(), "route" => route).record(elapsed);
    if status >= 500 {
        tracing::warn!(parent: &span, status, elapsed, "request failed");
    } else {
        tracing::debug!(parent: &span, status, elapsed, "request served");
    }
    response
}
