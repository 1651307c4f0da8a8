//! `GET /meshes/{mesh}/dataplanes+insights[/{name}]`: each Dataplane with its insight, as
//! Kuma's DataplaneOverview. A zone has its own proxies' insights; the global has every zone's,
//! synced up (the zone's live per-proxy view stays on the zone's own route).

use atoll_model::{Kind, Spec, encode_value};
use atoll_store::{Key, ListQuery};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{ApiState, body};

async fn overview(state: &ApiState, mesh: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let Some(dataplane) = state
        .store
        .get(&Key::new(Kind::Dataplane, Some(mesh), name))
        .await?
    else {
        return Ok(None);
    };
    let insight = state
        .store
        .get(&Key::new(Kind::DataplaneInsight, Some(mesh), name))
        .await?;
    // On the global, a data plane of a zone that went away is not online, whatever its last
    // insight said.
    let zone_up = match (
        &state.mode,
        dataplane.resource.meta.labels.get("kuma.io/zone"),
    ) {
        (super::Mode::Global, Some(zone)) => matches!(
            state
                .store
                .get(&Key::new(Kind::ZoneInsight, None, zone))
                .await?
                .map(|s| s.resource.spec),
            Some(Spec::ZoneInsight(z)) if super::overview::zone_online(&z)
        ),
        _ => true,
    };
    let (online, insight) = match insight.map(|s| s.resource) {
        Some(resource) => {
            let online =
                zone_up && matches!(&resource.spec, Spec::DataplaneInsight(s) if s.connected);
            let mut value = encode_value(&resource);
            if let Value::Object(map) = &mut value {
                for envelope in ["type", "mesh", "name"] {
                    map.remove(envelope);
                }
            }
            (online, value)
        }
        None => (false, json!({})),
    };
    let mut dataplane_value = encode_value(&dataplane.resource);
    let labels = dataplane_value
        .get("labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut dataplane_value {
        for envelope in [
            "type",
            "mesh",
            "name",
            "labels",
            "creationTime",
            "modificationTime",
        ] {
            map.remove(envelope);
        }
    }
    Ok(Some(json!({
        "type": "DataplaneOverview",
        "mesh": mesh,
        "name": name,
        "labels": labels,
        "online": online,
        "dataplane": dataplane_value,
        "dataplaneInsight": insight,
    })))
}

pub(super) async fn list(
    State(state): State<ApiState>,
    Path(mesh): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let page = state
        .store
        .list(&ListQuery {
            kind: Some(Kind::Dataplane),
            mesh: Some(mesh.clone()),
            ..Default::default()
        })
        .await?;
    let mut items = Vec::new();
    for stored in &page.items {
        if let Some(item) = overview(&state, &mesh, stored.resource.name()).await? {
            items.push(item);
        }
    }
    let value = json!({"total": items.len(), "items": items, "next": null});
    Ok(body::render(&headers, StatusCode::OK, &value, None))
}

pub(super) async fn get(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match overview(&state, &mesh, &name).await? {
        Some(value) => Ok(body::render(&headers, StatusCode::OK, &value, None)),
        None => Err(ApiError::not_found(format!(
            "Dataplane {mesh}.{name} not found"
        ))),
    }
}
