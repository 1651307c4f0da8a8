//! `GET /zones/_overview`: each Zone with its KDS insight — online or not, since when, what it
//! acknowledged, what it last rejected.

use atoll_model::{Kind, Spec, encode_value};
use atoll_store::ListQuery;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{ApiState, body};

/// A connected insight not refreshed for this long belongs to a global replica that died.
const STALE_AFTER_SECONDS: i64 = 15;

/// Whether a ZoneInsight says its zone is connected to a live global replica.
pub(super) fn zone_online(spec: &atoll_model::types::ZoneInsightSpec) -> bool {
    let fresh = spec
        .last_seen
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| (chrono::Utc::now() - t.to_utc()).num_seconds() < STALE_AFTER_SECONDS);
    spec.connected && fresh
}

pub(super) async fn zones(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zones = state
        .store
        .list(&ListQuery {
            kind: Some(Kind::Zone),
            ..Default::default()
        })
        .await?;
    // Two reads however many zones there are, not one more per zone.
    let insights: std::collections::HashMap<String, atoll_store::Stored> = state
        .store
        .list(&ListQuery {
            kind: Some(Kind::ZoneInsight),
            ..Default::default()
        })
        .await?
        .items
        .into_iter()
        .map(|s| (s.resource.name().to_string(), s))
        .collect();
    let mut items = Vec::new();
    for zone in &zones.items {
        let name = zone.resource.name();
        let enabled = matches!(&zone.resource.spec, Spec::Zone(z) if z.is_enabled());
        let insight = insights.get(name);
        let (online, detail) = match insight.map(|s| &s.resource.spec) {
            Some(Spec::ZoneInsight(spec)) => {
                let insight = insight
                    .map(|s| encode_value(&s.resource))
                    .unwrap_or(Value::Null);
                (zone_online(spec), insight)
            }
            _ => (false, Value::Null),
        };
        items.push(json!({
            "name": name,
            "enabled": enabled,
            "online": online,
            "insight": detail,
        }));
    }
    let value = json!({ "total": items.len(), "items": items });
    Ok(body::render(&headers, StatusCode::OK, &value, None))
}
