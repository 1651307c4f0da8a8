//! MADS over HTTP as Kuma serves it (`GET` on the same path gives the targets in Prometheus'
//! HTTP service discovery format; the gRPC variant shares the port, see `grpc`): `POST /v3/discovery:monitoringassignments` with a
//! protojson DiscoveryRequest. A request whose `version_info` is the current one waits (up to
//! `?fetch-timeout`, default 30 s) for the assignments to change and is answered 304 when
//! they do not; otherwise the whole set comes back at once with its version. Kuma leaves
//! MADS unauthenticated (it names scrape addresses, nothing secret); so does Atoll, behind
//! the same connection cap and timeouts as every server.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use atoll_store::Store;

use super::assignments::{self, TYPE_URL};

/// The path Prometheus posts to.
pub const PATH: &str = "/v3/discovery:monitoringassignments";
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer holds are cut to this, so a connection is never held for ever.
const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub(super) struct Mads {
    store: Arc<dyn Store>,
    zone: String,
    /// The control plane's own targets (the in-process ingress and egress).
    own: Arc<assignments::Assignments>,
}

/// MADS for zone `zone`; `own` are targets of the control plane itself, listed with the
/// proxies'.
pub fn router(store: Arc<dyn Store>, zone: String, own: assignments::Assignments) -> Router {
    let mads = Mads {
        store,
        zone,
        own: Arc::new(own),
    };
    Router::new()
        .route(PATH, post(fetch).get(http_sd))
        .route_service(super::grpc::FETCH_PATH, super::grpc::service(mads.clone()))
        .with_state(mads)
}

impl Mads {
    pub(super) async fn assignments(
        &self,
    ) -> Result<assignments::Assignments, atoll_store::StoreError> {
        let mut all = assignments::compute(self.store.as_ref(), &self.zone).await?;
        // Added to, not replacing: Envoy egresses share `zone-egress` with the in-process one.
        for (key, targets) in self.own.iter() {
            let listed = all.entry(key.clone()).or_default();
            listed.extend(targets.iter().cloned());
            listed.sort();
        }
        Ok(all)
    }
}

/// `GET` on the same path: the targets in Prometheus' HTTP service discovery format
/// (`http_sd_configs`), for the Prometheus builds that leave `kuma_sd_configs` out;
/// `?client_id=` selects like a MADS node id.
#[tracing::instrument(name = "mads.http_sd", skip_all)]
async fn http_sd(
    State(mads): State<Mads>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match mads.assignments().await {
        Ok(a) => {
            let client = query
                .get("client_id")
                .map(String::as_str)
                .unwrap_or_default();
            metrics::counter!("atoll_mads_responses_total", "status" => "http_sd").increment(1);
            axum::Json(Value::Array(assignments::http_sd(&a, client))).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

fn bad_request(why: String) -> Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

/// A field of the request in protojson's snake_case or camelCase spelling.
fn field<'a>(body: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    body.get(snake).or_else(|| body.get(camel))
}

#[tracing::instrument(name = "mads.fetch", skip_all, fields(client, wait_ms))]
async fn fetch(
    State(mads): State<Mads>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("the body is not a JSON DiscoveryRequest: {e}")),
        }
    };
    if let Some(url) = field(&request, "type_url", "typeUrl").and_then(Value::as_str)
        && !url.is_empty()
        && url != TYPE_URL
    {
        return bad_request(format!(
            "type_url {url:?} is not served here; use {TYPE_URL}"
        ));
    }
    let client = request
        .get("node")
        .and_then(|n| n.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let known = field(&request, "version_info", "versionInfo")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let wait = match query.get("fetch-timeout") {
        None => DEFAULT_FETCH_TIMEOUT,
        Some(text) => match atoll_model::duration::parse(text) {
            Ok(d) => d.min(MAX_FETCH_TIMEOUT),
            Err(e) => return bad_request(format!("fetch-timeout {text:?} is not a duration: {e}")),
        },
    };
    tracing::Span::current()
        .record("client", client.as_str())
        .record("wait_ms", wait.as_millis() as u64);
    // Subscribed before reading, so no change between the read and the wait is missed.
    let mut changes = mads.store.watch();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let assignments = match mads.assignments().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the monitoring assignments");
                return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
            }
        };
        let resources = assignments::resources(&assignments, &client);
        let version = version_of(&resources);
        if version != known {
            metrics::counter!("atoll_mads_responses_total", "status" => "200").increment(1);
            return axum::Json(json!({
                "version_info": version,
                "resources": resources,
                "type_url": TYPE_URL,
            }))
            .into_response();
        }
        // Wait for a change that can matter (a Dataplane, a MeshMetric or a ZoneEgress), not
        // for the many that cannot (insights, other policies).
        loop {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) => {
                    metrics::counter!("atoll_mads_responses_total", "status" => "304").increment(1);
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return (StatusCode::SERVICE_UNAVAILABLE, "the store is closing")
                        .into_response();
                }
                Ok(event) if relevant(&event) => break,
                Ok(_) => {}
            }
        }
        // One read for a burst of changes.
        while changes.try_recv().is_ok() {}
    }
}

/// Whether a store event can change the assignments. A lagging or closed feed counts: the
/// assignments are read again rather than missed.
fn relevant(event: &Result<atoll_store::Event, tokio::sync::broadcast::error::RecvError>) -> bool {
    use atoll_model::Kind;
    use atoll_store::Event;
    match event {
        Ok(Event::Put { key, .. } | Event::Deleted { key, .. }) => {
            matches!(
                key.kind,
                Kind::Dataplane | Kind::MeshMetric | Kind::ZoneEgress
            )
        }
        Ok(Event::Resync) | Err(_) => true,
    }
}

/// A version that changes exactly when the answer does.
pub(super) fn version_of(resources: &[Value]) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    Value::Array(resources.to_vec())
        .to_string()
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
