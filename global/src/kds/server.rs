//! The KDS gRPC service: authenticates each stream's zone by its client certificate, admits it
//! (creating its Zone resource on first contact, refusing disabled zones) and runs the KDS
//! sender or receiver over the stream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use atoll_kds::receiver::{Receiver, ReceiverConfig};
use atoll_kds::scope::{GlobalExport, GlobalImport};
use atoll_kds::sender::{Sender, SenderConfig};
use atoll_model::{Kind, Meta, Resource, Spec, types::ZoneSpec};
use atoll_proto::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, KdsSyncService, KdsSyncServiceServer,
};
use atoll_store::{Key, Precondition, Store, StoreError};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::Insights;

type Outbound<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Messages buffered per direction of a stream; the state machines never queue beyond this.
const CHANNEL: usize = 16;

pub struct KdsServer {
    pub store: Arc<dyn Store>,
    pub insights: Arc<Insights>,
    pub sender: SenderConfig,
    pub receiver: ReceiverConfig,
    pub stop: watch::Receiver<bool>,
}

/// Serves KDS on `addr` with `cert`/`key`, accepting only clients whose certificate chains to
/// `client_ca`, until `stop`.
pub async fn serve(
    addr: SocketAddr,
    server: KdsServer,
    (cert, key): (String, String),
    client_ca: String,
) -> anyhow::Result<()> {
    let mut stop = server.stop.clone();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(client_ca));
    tracing::info!(%addr, "KDS server listening (mutual TLS)");
    Server::builder()
        .tcp_nodelay(true)
        .tls_config(tls)?
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        .add_service(KdsSyncServiceServer::new(server))
        .serve_with_shutdown(addr, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

impl KdsServer {
    /// The zone named by the client certificate, which must equal the `client-id` metadata.
    fn authenticate<T>(request: &Request<T>) -> Result<String, Status> {
        let certs = request.peer_certs().ok_or_else(|| {
            Status::unauthenticated(
                "a client certificate issued by the global's KDS CA is required",
            )
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate presented"))?;
        let zone = atoll_tls::zone_from_certificate(leaf.as_ref()).map_err(|e| {
            Status::unauthenticated(format!("the client certificate names no zone: {e}"))
        })?;
        let client_id = request
            .metadata()
            .get("client-id")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::invalid_argument("the client-id metadata (the zone's name) is required")
            })?;
        if client_id != zone {
            tracing::warn!(%client_id, certificate_zone = %zone, "zone presented another zone's name");
            return Err(Status::permission_denied(format!(
                "client-id {client_id:?} does not match the zone {zone:?} named by the client certificate"
            )));
        }
        Ok(zone)
    }

    /// Creates the zone's Zone resource on first contact; refuses a disabled zone.
    async fn admit(&self, zone: &str) -> Result<(), Status> {
        let key = Key::new(Kind::Zone, None, zone);
        let unavailable = |e: StoreError| Status::unavailable(e.to_string());
        match self.store.get(&key).await.map_err(unavailable)? {
            Some(stored) => match &stored.resource.spec {
                Spec::Zone(spec) if !spec.is_enabled() => Err(Status::permission_denied(format!(
                    "zone {zone:?} is disabled on the global"
                ))),
                _ => Ok(()),
            },
            None => {
                let resource = Resource::new(
                    Meta {
                        name: zone.into(),
                        ..Default::default()
                    },
                    Spec::Zone(ZoneSpec::default()),
                );
                match self.store.put(resource, Precondition::Absent).await {
                    Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
                    Err(e) => Err(unavailable(e)),
                }
            }
        }
    }
}

/// Forwards a gRPC inbound stream into a channel; ends (closing the channel) on error or EOF.
fn forward<T: Send + 'static>(mut inbound: Streaming<T>, zone: String) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::spawn(async move {
        loop {
            match inbound.message().await {
                Ok(Some(message)) => {
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    tracing::info!(%zone, %status, "KDS stream from the zone ended");
                    return;
                }
            }
        }
    });
    rx
}

fn outbound<T: Send + 'static>(rx: mpsc::Receiver<T>) -> Outbound<T> {
    Box::pin(ReceiverStream::new(rx).map(Ok))
}

#[tonic::async_trait]
impl KdsSyncService for KdsServer {
    type GlobalToZoneSyncStream = Outbound<DeltaDiscoveryResponse>;
    type ZoneToGlobalSyncStream = Outbound<DeltaDiscoveryRequest>;

    async fn global_to_zone_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneSyncStream>, Status> {
        let zone = Self::authenticate(&request)?;
        self.admit(&zone).await?;
        tracing::info!(%zone, "zone connected: global-to-zone stream");
        let requests = forward(request.into_inner(), zone.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let link = self.insights.connect(&zone);
        let sender = Sender::new(
            self.store.clone(),
            Arc::new(GlobalExport { zone: zone.clone() }),
            link.clone(),
            self.sender.clone(),
        );
        let (insights, stop) = (self.insights.clone(), self.stop.clone());
        tokio::spawn(async move {
            let span = tracing::info_span!("kds", zone = %zone, stream = "global-to-zone");
            let result = sender.run(requests, tx, stop).instrument(span).await;
            tracing::info!(%zone, ?result, "global-to-zone stream closed");
            insights.disconnect(&link);
        });
        Ok(Response::new(outbound(rx)))
    }

    async fn zone_to_global_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalSyncStream>, Status> {
        let zone = Self::authenticate(&request)?;
        self.admit(&zone).await?;
        tracing::info!(%zone, "zone connected: zone-to-global stream");
        let responses = forward(request.into_inner(), zone.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let link = self.insights.connect(&zone);
        let receiver = Receiver::new(
            self.store.clone(),
            Arc::new(GlobalImport { zone: zone.clone() }),
            link.clone(),
            ReceiverConfig {
                node_id: "global".into(),
                ..self.receiver.clone()
            },
        );
        let (insights, stop) = (self.insights.clone(), self.stop.clone());
        tokio::spawn(async move {
            let span = tracing::info_span!("kds", zone = %zone, stream = "zone-to-global");
            let result = receiver.run(responses, tx, stop).instrument(span).await;
            tracing::info!(%zone, ?result, "zone-to-global stream closed");
            insights.disconnect(&link);
        });
        Ok(Response::new(outbound(rx)))
    }
}
