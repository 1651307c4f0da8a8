//! The DP server on 5678: Envoy ADS (state of the world and delta; SDS travels on the same
//! stream), the bootstrap endpoint `atoll-dp` registers through, and proxy insights. One TLS
//! port for gRPC and HTTP/1.1 alike.

pub mod ads;
pub mod bootstrap;
pub mod insight;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use atoll_store::Store;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryServiceServer;
use tokio::sync::watch;

use crate::proxy::hub::Hub;

/// Binds `addr` and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    extra: axum::Router,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the DP server on {addr}"))?;
    let http = bootstrap::router(store, hub.clone())
        .merge(insight::router(hub.clone()))
        .merge(extra);
    let ads = AggregatedDiscoveryServiceServer::new(ads::Ads { hub })
        .max_decoding_message_size(16 * 1024 * 1024);
    let router = tonic::service::Routes::from(http)
        .add_service(ads)
        .into_axum_router();
    tracing::info!(%addr, "DP server listening (ADS, SDS, bootstrap)");
    Ok(tokio::spawn(atoll_api::serve(
        listener,
        Some(tls),
        router,
        stop,
    )))
}
