//! Serving an axum router on a listener, over plain TCP or TLS, until shutdown, within the
//! server's [`Limits`]: connection cap and handshake deadline ([`crate::listen`]), a
//! request-header deadline that also closes idle HTTP/1 connections, HTTP/2 keep-alive pings,
//! a body limit, and a bounded drain.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::listen::{self, Conn, Limits};

/// What a handler may know about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Connection {
    pub remote: SocketAddr,
    pub tls: bool,
    /// The pinned client certificate the peer presented (its subject's common name, or its
    /// serial when it has none), on TLS servers that ask for one.
    pub client_certificate: Option<String>,
}

impl Connection {
    /// Plain HTTP from this machine: trusted as the admin by default, as Kuma trusts
    /// localhost.
    pub fn is_local_plaintext(&self) -> bool {
        !self.tls && self.remote.ip().is_loopback()
    }
}

fn client_certificate(tls: &tokio_rustls::server::TlsStream<listen::Slotted>) -> Option<String> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    Some(atoll_tls::describe_certificate(leaf.as_ref()))
}

/// Accepts connections until `stop` turns true, then lets in-flight requests finish for at
/// most the drain timeout.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    stop: watch::Receiver<bool>,
    limits: Limits,
) {
    // Every connection task holds a clone of `open`; when the last is gone, all have ended.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let (drain, draining) = watch::channel(false);
    let local = listener.local_addr().ok();
    let router = router.layer(DefaultBodyLimit::max(limits.body_limit));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let handle = move |conn: Conn, remote: SocketAddr| {
        let (connection, io) = match conn {
            Conn::Plain(io) => (
                Connection {
                    remote,
                    tls: false,
                    client_certificate: None,
                },
                Io::Plain(io),
            ),
            Conn::Tls(io) => (
                Connection {
                    remote,
                    tls: true,
                    client_certificate: client_certificate(&io),
                },
                Io::Tls(io),
            ),
        };
        // The connection goes into each request's extensions (what `Extension` reads), not
        // into a router layered per connection: layering rebuilds the router's tables, about
        // 4 kB per connection held for its life, which 10,000 proxies' ADS connections pay.
        let app = router.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(connection.clone());
                app.clone().oneshot(req)
            });
        let (builder, open, mut draining) = (builder.clone(), open.clone(), draining.clone());
        tokio::spawn(async move {
            let result = match io {
                Io::Plain(io) => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    until_drained(conn, &mut draining).await
                }
                Io::Tls(io) => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(*io), service);
                    until_drained(conn, &mut draining).await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%remote, %err, "connection ended with an error");
            }
            drop(open);
        });
    };
    listen::accept(listener, tls, &limits, stop, handle).await;
    tracing::info!(?local, server = limits.name, "server draining");
    let _ = drain.send(true);
    if tokio::time::timeout(limits.drain_timeout, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!(?local, server = limits.name, drain = ?limits.drain_timeout, "connections still open after the drain time; closing them");
    }
}

/// Serves `conn` until it ends; once draining starts, lets its in-flight requests finish and
/// closes it (HTTP/1: after the current response; HTTP/2: GOAWAY).
async fn until_drained<C>(conn: C, draining: &mut watch::Receiver<bool>) -> Result<(), C::Error>
where
    C: hyper_util::server::graceful::GracefulConnection,
{
    tokio::pin!(conn);
    let finished = tokio::select! {
        result = conn.as_mut() => Some(result),
        _ = async { let _ = draining.wait_for(|d| *d).await; } => None,
    };
    match finished {
        Some(result) => result,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

enum Io {
    Plain(listen::Slotted),
    Tls(Box<tokio_rustls::server::TlsStream<listen::Slotted>>),
}
