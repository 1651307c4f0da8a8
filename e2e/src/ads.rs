//! A light ADS client standing in for one Envoy in load benchmarks and scale tests: its own TLS
//! connection to the DP server, one state-of-the-world stream subscribing to clusters,
//! listeners, routes and secrets (SDS over ADS, as Envoy does), then to the endpoints of the
//! clusters it was given, ACKing every response. It records what arrived and when.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// What one client received; times are nanoseconds since the benchmark's epoch.
#[derive(Default)]
pub struct Seen {
    pub responses: AtomicU64,
    pub listeners: AtomicU64,
    pub endpoints: AtomicU64,
    pub secrets: AtomicU64,
    pub last_nanos: AtomicU64,
    pub last_eds_nanos: AtomicU64,
    /// The stream ended (refused, or the server went away).
    pub ended: AtomicU64,
    /// Encoded size of the newest response of each type, summed: the size of the proxy's
    /// configuration as the server holds it.
    pub config_bytes: [AtomicU64; 5],
}

impl Seen {
    /// Bytes of configuration the proxy holds now.
    pub fn config_size(&self) -> u64 {
        self.config_bytes
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// Listeners, endpoints and a certificate arrived: the proxy could serve mesh traffic.
    pub fn configured(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0
            && self.endpoints.load(Ordering::Relaxed) > 0
            && self.secrets.load(Ordering::Relaxed) > 0
    }
}

/// A new TLS connection to the DP server at `127.0.0.1:port`, verified against `ca_pem` for
/// the name `localhost`.
pub async fn connect(port: u16, ca_pem: &[u8]) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("https://localhost:{port}"))?
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .domain_name("localhost"),
        )?
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await?)
}

/// Runs the stream of proxy `node_id` (`<mesh>.<name>`) until the server ends it.
pub async fn run(
    channel: Channel,
    node_id: String,
    token: Option<String>,
    seen: Arc<Seen>,
    epoch: Instant,
) {
    let (tx, rx) = mpsc::channel(16);
    let node = Node {
        id: node_id,
        ..Default::default()
    };
    for (i, type_url) in [CLUSTER, LISTENER, ROUTE, SECRET].into_iter().enumerate() {
        let _ = tx
            .send(DiscoveryRequest {
                node: (i == 0).then(|| node.clone()),
                type_url: type_url.into(),
                ..Default::default()
            })
            .await;
    }
    let mut ads = AggregatedDiscoveryServiceClient::new(channel);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    let Ok(response) = ads.stream_aggregated_resources(request).await else {
        seen.ended.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut inbound = response.into_inner();
    let mut eds_names: Vec<String> = Vec::new();
    while let Ok(Some(r)) = inbound.message().await {
        let now = epoch.elapsed().as_nanos() as u64;
        seen.responses.fetch_add(1, Ordering::Relaxed);
        seen.last_nanos.store(now, Ordering::Relaxed);
        let slot = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]
            .iter()
            .position(|t| *t == r.type_url);
        if let Some(slot) = slot {
            let bytes: usize = r.resources.iter().map(|a| a.value.len()).sum();
            seen.config_bytes[slot].store(bytes as u64, Ordering::Relaxed);
        }
        let counter = match r.type_url.as_str() {
            ENDPOINT => {
                seen.last_eds_nanos.store(now, Ordering::Relaxed);
                Some(&seen.endpoints)
            }
            LISTENER => Some(&seen.listeners),
            SECRET => Some(&seen.secrets),
            _ => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        // A new cluster set: subscribe to exactly its endpoints, as Envoy does.
        let names = (r.type_url == CLUSTER).then(|| {
            r.resources
                .iter()
                .filter_map(|a| {
                    <envoy_types::pb::envoy::config::cluster::v3::Cluster as prost::Message>::decode(
                        a.value.as_slice(),
                    )
                    .ok()
                    .map(|c| c.name)
                })
                .collect::<Vec<_>>()
        });
        // State of the world: every request repeats the whole subscription, ACKs included.
        let _ = tx
            .send(DiscoveryRequest {
                type_url: r.type_url.clone(),
                version_info: r.version_info.clone(),
                response_nonce: r.nonce.clone(),
                resource_names: if r.type_url == ENDPOINT {
                    eds_names.clone()
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .await;
        if let Some(names) = names
            && names != eds_names
        {
            eds_names = names.clone();
            let _ = tx
                .send(DiscoveryRequest {
                    type_url: ENDPOINT.into(),
                    resource_names: names,
                    ..Default::default()
                })
                .await;
        }
    }
    seen.ended.fetch_add(1, Ordering::Relaxed);
}
