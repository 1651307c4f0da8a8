//! The KDS gRPC service: authenticates each stream's zone by its client certificate, admits it
//! (creating its Zone resource on first contact, refusing disabled zones and revoked
//! certificates, see [`super::access`]) and runs the KDS sender or receiver over the stream
//! until it ends or is cut.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use atoll_kds::receiver::{Receiver, ReceiverConfig};
use atoll_kds::scope::{GlobalExport, GlobalImport};
use atoll_kds::sender::{Sender, SenderConfig};
use atoll_kds::shared_reads::SharedReads;
use atoll_proto::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, KdsSyncService, KdsSyncServiceServer,
};
use atoll_store::Store;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::Insights;
use super::access::ZoneAccess;

type Outbound<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Messages buffered per direction of a stream; the state machines never queue beyond this.
const CHANNEL: usize = 16;

pub struct KdsServer {
    pub store: Arc<dyn Store>,
    /// Full sets are listed once per type for the zones that (re)connect together.
    pub reads: Arc<SharedReads>,
    pub insights: Arc<Insights>,
    pub access: Arc<ZoneAccess>,
    pub sender: SenderConfig,
    pub receiver: ReceiverConfig,
    pub stop: watch::Receiver<bool>,
}

/// Serves KDS on `addr` with `cert`/`key`, accepting only clients whose certificate chains to
/// `client_ca`, within `limits`, until `stop`.
pub async fn serve(
    addr: SocketAddr,
    server: KdsServer,
    (cert, key): (String, String),
    client_ca: String,
    limits: atoll_api::Limits,
) -> anyhow::Result<()> {
    let mut stop = server.stop.clone();
    let tls = atoll_tls::mutual_tls_server_config(&cert, &key, &client_ca, "the KDS certificate")?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let incoming = atoll_api::listen::tls_incoming(listener, tls, limits.clone(), stop.clone());
    tracing::info!(%addr, "KDS server listening (mutual TLS)");
    tokio::spawn(server.access.clone().run(stop.clone()));
    Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .add_service(KdsSyncServiceServer::new(server))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

impl KdsServer {
    /// The zone named by the client certificate, which must equal the `client-id` metadata,
    /// and the certificate's serial.
    fn authenticate<T>(request: &Request<T>) -> Result<(String, String), Status> {
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
        let serial = atoll_tls::certificate_serial(leaf.as_ref())
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
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
        Ok((zone, serial))
    }
}

/// The stream's messages, then, if the stream was cut, a status saying why.
fn outbound_until_cut<T: Send + 'static>(
    rx: mpsc::Receiver<Box<T>>,
    cut: oneshot::Receiver<Status>,
) -> Outbound<T> {
    let reason = tokio_stream::once(cut)
        .then(|cut| async move { cut.await.ok() })
        .filter_map(|status| status.map(Err));
    Box::pin(ReceiverStream::new(rx).map(|m| Ok(*m)).chain(reason))
}

/// Forwards a gRPC inbound stream into a channel; ends (closing the channel) on error or EOF.
fn forward<T: Send + 'static>(mut inbound: Streaming<T>, zone: String) -> mpsc::Receiver<Box<T>> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::spawn(async move {
        loop {
            match inbound.message().await {
                Ok(Some(message)) => {
                    if tx.send(Box::new(message)).await.is_err() {
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

#[tonic::async_trait]
impl KdsSyncService for KdsServer {
    type GlobalToZoneSyncStream = Outbound<DeltaDiscoveryResponse>;
    type ZoneToGlobalSyncStream = Outbound<DeltaDiscoveryRequest>;

    async fn global_to_zone_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneSyncStream>, Status> {
        let (zone, serial) = Self::authenticate(&request)?;
        let admission = self.access.admit(&zone, &serial).await?;
        tracing::info!(%zone, "zone connected: global-to-zone stream");
        let requests = forward(request.into_inner(), zone.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (cut_tx, cut_rx) = oneshot::channel();
        let link = self.insights.connect(&zone);
        let sender = Sender::new(
            self.store.clone(),
            Arc::new(GlobalExport { zone: zone.clone() }),
            link.clone(),
            self.sender.clone(),
        )
        .sharing(self.reads.clone());
        let insights = self.insights.clone();
        let stop = admission.stop(self.stop.clone());
        tokio::spawn(async move {
            let span = tracing::info_span!("kds", zone = %zone, stream = "global-to-zone");
            let result = sender.run(requests, tx, stop).instrument(span).await;
            tracing::info!(%zone, ?result, "global-to-zone stream closed");
            if let Some(reason) = admission.reason() {
                let _ = cut_tx.send(Status::permission_denied(reason));
            }
            insights.disconnect(&link);
        });
        Ok(Response::new(outbound_until_cut(rx, cut_rx)))
    }

    async fn zone_to_global_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalSyncStream>, Status> {
        let (zone, serial) = Self::authenticate(&request)?;
        let admission = self.access.admit(&zone, &serial).await?;
        tracing::info!(%zone, "zone connected: zone-to-global stream");
        let responses = forward(request.into_inner(), zone.clone());
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (cut_tx, cut_rx) = oneshot::channel();
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
        let insights = self.insights.clone();
        let stop = admission.stop(self.stop.clone());
        tokio::spawn(async move {
            let span = tracing::info_span!("kds", zone = %zone, stream = "zone-to-global");
            let result = receiver.run(responses, tx, stop).instrument(span).await;
            tracing::info!(%zone, ?result, "zone-to-global stream closed");
            if let Some(reason) = admission.reason() {
                let _ = cut_tx.send(Status::permission_denied(reason));
            }
            insights.disconnect(&link);
        });
        Ok(Response::new(outbound_until_cut(rx, cut_rx)))
    }
}
