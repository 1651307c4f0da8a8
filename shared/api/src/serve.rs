//! Serving an axum router on a listener, over plain TCP or TLS, until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// What a handler may know about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub remote: SocketAddr,
    pub tls: bool,
}

impl Connection {
    /// Plain HTTP from this machine: trusted for writes, as Kuma trusts localhost.
    pub fn is_local_plaintext(&self) -> bool {
        !self.tls && self.remote.ip().is_loopback()
    }
}

/// Accepts connections until `shutdown` turns true, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let local = listener.local_addr().ok();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: keep serving the connections we have.
                    tracing::warn!(?local, %err, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        // Small responses (ADS pushes, API answers) must leave at once, not wait for Nagle
        // to meet the peer's delayed ACK (a fixed ~40 ms per exchange otherwise).
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            remote,
            tls: acceptor.is_some(),
        };
        let app = router.clone().layer(axum::Extension(connection));
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let builder = auto::Builder::new(TokioExecutor::new());
        match &acceptor {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(err) = watched.await {
                        tracing::debug!(%remote, %err, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let graceful_watch = graceful.watcher();
                tokio::spawn(async move {
                    let tls_stream = match acceptor.accept(stream).await {
                        Ok(s) => s,
                        Err(err) => {
                            tracing::debug!(%remote, %err, "TLS handshake failed");
                            return;
                        }
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(tls_stream), service)
                        .into_owned();
                    if let Err(err) = graceful_watch.watch(conn).await {
                        tracing::debug!(%remote, %err, "connection ended with an error");
                    }
                });
            }
        }
    }
    tracing::info!(?local, "server draining");
    graceful.shutdown().await;
}
