//! Feeding a separate ingress process: the zone's DP server streams the routing table as JSON
//! lines (`GET /ingress/table`), a new line on every change plus a heartbeat; the ingress keeps
//! its last table when the stream breaks (a zone CP restart does not stop cross-zone traffic)
//! and reconnects. The request names the address other zones should use, which the zone then
//! advertises in its ZoneIngress.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{IntervalStream, WatchStream};

use super::registry::Advertisement;
use super::table::Table;

/// How often an idle stream carries a heartbeat, and how long a follower waits for one.
const HEARTBEAT: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct StreamState {
    tables: watch::Receiver<Arc<Table>>,
    advertise: watch::Sender<Option<Advertisement>>,
}

#[derive(Debug, Deserialize)]
struct TableQuery {
    address: Option<String>,
    port: Option<u32>,
}

pub fn router(
    tables: watch::Receiver<Arc<Table>>,
    advertise: watch::Sender<Option<Advertisement>>,
) -> axum::Router {
    axum::Router::new()
        .route("/ingress/table", get(table))
        .with_state(StreamState { tables, advertise })
}

fn line(table: &Table) -> Bytes {
    let mut text = serde_json::json!({ "routes": table }).to_string();
    text.push('\n');
    Bytes::from(text)
}

async fn table(State(state): State<StreamState>, Query(query): Query<TableQuery>) -> Response {
    if let (Some(address), Some(port)) = (query.address, query.port) {
        let ad = Advertisement { address, port };
        tracing::info!(address = %ad.address, port = ad.port, "an ingress follows this zone");
        state.advertise.send_if_modified(|current| {
            let changed = current.as_ref() != Some(&ad);
            *current = Some(ad);
            changed
        });
    }
    let tables = WatchStream::new(state.tables.clone()).map(|t| line(&t));
    let beats = IntervalStream::new(tokio::time::interval(HEARTBEAT)).map(|_| Bytes::from("{}\n"));
    let body = tables.merge(beats).map(Ok::<_, Infallible>);
    (
        [("content-type", "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Follows the zone's table at `base` (`https://HOST:5678`) until `stop`, publishing each
/// table on `tables`; keeps the last one across disconnects.
pub async fn follow(
    client: reqwest::Client,
    base: String,
    advertised: Advertisement,
    tables: watch::Sender<Arc<Table>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        let session = follow_once(&client, &base, &advertised, &tables);
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            outcome = session => {
                if let Err(err) = outcome {
                    tracing::warn!(error = %format!("{err:#}"), "lost the zone's table stream; serving the last table and reconnecting");
                    metrics::counter!("atoll_ingress_feed_reconnects_total").increment(1);
                }
            }
        }
        let jitter = Duration::from_millis(fastrand::u64(0..=delay.as_millis() as u64 / 2));
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(delay + jitter) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

async fn follow_once(
    client: &reqwest::Client,
    base: &str,
    advertised: &Advertisement,
    tables: &watch::Sender<Arc<Table>>,
) -> anyhow::Result<()> {
    let url = format!(
        "{base}/ingress/table?address={}&port={}",
        advertised.address, advertised.port
    );
    let mut response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("connecting to {base}"))?;
    if !response.status().is_success() {
        bail!("{url}: {}", response.status());
    }
    tracing::info!(%base, "following the zone's routing table");
    let mut pending = Vec::new();
    loop {
        let chunk = tokio::time::timeout(SILENCE, response.chunk())
            .await
            .map_err(|_| anyhow::anyhow!("no heartbeat for {SILENCE:?}"))??;
        let Some(chunk) = chunk else {
            bail!("the zone closed the stream");
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let value: serde_json::Value =
                serde_json::from_slice(&line).context("a table line that is not JSON")?;
            if let Some(routes) = value.get("routes") {
                let table: HashMap<String, Vec<SocketAddr>> =
                    serde_json::from_value(routes.clone()).context("a malformed table")?;
                tracing::debug!(services = table.len(), "new routing table");
                tables.send_replace(Arc::new(table));
            }
        }
    }
}
