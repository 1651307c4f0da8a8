//! The DP server on 5678: Envoy ADS (state of the world and delta; SDS travels on the same
//! stream), the bootstrap endpoint `atoll-dp` registers through, and the routing-table stream
//! separate zone proxies follow. One TLS port for gRPC and HTTP/1.1 alike; every entry point
//! authenticates its caller ([`authn`]).

pub mod ads;
pub mod ads_grpc;
pub mod authn;
pub mod bootstrap;
pub mod insight;
pub mod inspect;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use atoll_store::Store;
use tokio::sync::watch;

use crate::proxy::hub::Hub;

/// What the DP server serves.
pub struct DpServer {
    pub tls: Arc<rustls::ServerConfig>,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub auth: authn::Authenticator,
    pub tables: crate::crosszone::stream::TableServer,
    pub limits: atoll_api::Limits,
    /// The zone's start hold, for proxies that reconnect with configuration (see
    /// [`ads::Ads::start_hold`]).
    pub start_hold: Option<(
        std::sync::Arc<crate::initial_sync::InitialSync>,
        atoll_kds::sender::Hold,
    )>,
}

/// Binds `addr` and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    server: DpServer,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the DP server on {addr}"))?;
    let http = bootstrap::router(server.store, server.hub.clone(), server.auth.clone());
    let ads = ads_grpc::AdsServer::new(
        ads::Ads {
            hub: server.hub,
            auth: server.auth,
            start_hold: server.start_hold,
            stop: stop.clone(),
        },
        16 * 1024 * 1024,
    );
    let router = tonic::service::Routes::from(http)
        .add_service(ads)
        .add_service(server.tables.into_service())
        .into_axum_router();
    tracing::info!(%addr, "DP server listening (ADS, SDS, bootstrap, zone proxy tables)");
    Ok(tokio::spawn(atoll_api::serve(
        listener,
        Some(server.tls),
        router,
        stop,
        server.limits,
    )))
}
