//! A real gRPC server and client for data-plane tests: the standard health service
//! (`grpc.health.v1`), which answers a status per service name, so a test can tell instances
//! apart and make one look unhealthy.

use std::time::Duration;

pub use tonic_health::ServingStatus;

/// Serves `grpc.health.v1.Health` on a free loopback port on `runtime`, reporting `service`
/// as `status`; returns the port.
pub fn health_server(
    runtime: &tokio::runtime::Runtime,
    service: &str,
    status: ServingStatus,
) -> anyhow::Result<u16> {
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let service = service.to_string();
    runtime.spawn(async move {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status(service, status).await;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
            .await;
    });
    Ok(port)
}

/// `Health/Check` for `service` through 127.0.0.1:`port` (plain HTTP/2): the status number
/// (1 SERVING, 2 NOT_SERVING), or why the call failed.
pub fn health_check(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    service: &str,
) -> Result<i32, String> {
    let service = service.to_string();
    runtime.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let reply = client
            .check(tonic_health::pb::HealthCheckRequest { service })
            .await
            .map_err(|e| e.to_string())?;
        Ok(reply.into_inner().status)
    })
}
