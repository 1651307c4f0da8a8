//! A proxy's insight over HTTP: whether it is connected, what it ACKed, its last NACK and
//! why parts of its configuration are missing.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use atoll_api::rest::ApiError;

use crate::proxy::hub::Hub;

/// Served on the DP server and on the zone's REST API, at Kuma's
/// `/meshes/{mesh}/dataplanes+insights/{name}`.
pub fn router(hub: Arc<Hub>) -> axum::Router {
    axum::Router::new()
        .route("/meshes/{mesh}/dataplanes+insights/{name}", get(insight))
        .route("/meshes/{mesh}/dataplanes/{name}/_overview", get(insight))
        .with_state(hub)
}

async fn insight(
    State(hub): State<Arc<Hub>>,
    Path((mesh, name)): Path<(String, String)>,
) -> Response {
    match hub.insight(&(mesh.clone(), name.clone())) {
        Some(insight) => Json(json!({
            "type": "DataplaneInsight",
            "mesh": mesh,
            "name": name,
            "subscription": insight,
        }))
        .into_response(),
        None => ApiError::not_found(format!(
            "no proxy {mesh}.{name} has connected to this zone control plane"
        ))
        .into_response(),
    }
}
