//! Accepting connections the way every Atoll server does: a cap on open connections (one
//! over the cap is closed at once rather than left waiting), and a deadline on the TLS
//! handshake, so neither a flood of connections nor clients that never finish their handshake
//! can exhaust a server. Used by the HTTP servers ([`crate::serve`]) and by KDS (tonic).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// For logs and the `server` label of metrics.
    pub name: &'static str,
    /// Open connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A client must finish its TLS handshake within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1 client must send a request's headers within this, also between requests on
    /// a kept-alive connection (so idle connections are closed after it).
    pub header_timeout: Duration,
    /// HTTP/2 connections are pinged this often and closed when a ping goes unanswered for
    /// [`Limits::keepalive_timeout`].
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// After shutdown is requested, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
    /// Request bodies larger than this are refused with 413.
    pub body_limit: usize,
}

impl Limits {
    /// Defaults for a control-plane server named `name`.
    pub fn new(name: &'static str) -> Self {
        Limits {
            name,
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            body_limit: 4 * 1024 * 1024,
        }
    }
}

/// A TCP connection holding one of its server's connection slots until it is dropped.
pub struct Slotted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Slotted {
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for Slotted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// tonic reads the peer's address (and, through its TLS wrapper, the client certificate)
/// from here.
impl tonic::transport::server::Connected for Slotted {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// An accepted connection, its handshake done.
pub enum Conn {
    Plain(Slotted),
    Tls(Box<TlsStream<Slotted>>),
}

/// Accepts on `listener` until `stop`, handing each connection (TLS-handshaken when `tls` is
/// set) and its peer address to `handle`. Handshakes run concurrently, each under the
/// handshake deadline.
pub async fn accept<F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(Conn, SocketAddr) + Clone + Send + 'static,
{
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let local = listener.local_addr().ok();
    let server = limits.name;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = async { let _ = stop.wait_for(|stop| *stop).await; } => return,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: keep serving the connections we have,
                // and do not spin on the error.
                tracing::warn!(?local, server, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("atoll_server_connections_refused_total", "server" => server, "reason" => "limit").increment(1);
            tracing::debug!(%remote, server, "connection limit reached; closing");
            drop(stream);
            continue;
        };
        metrics::counter!("atoll_server_connections_total", "server" => server).increment(1);
        // Small responses (ADS pushes, API answers) must leave at once, not wait for Nagle
        // to meet the peer's delayed ACK (a fixed ~40 ms per exchange otherwise).
        let _ = stream.set_nodelay(true);
        let slotted = Slotted {
            stream,
            _slot: slot,
        };
        match &acceptor {
            None => handle(Conn::Plain(slotted), remote),
            Some(acceptor) => {
                let (acceptor, handle, deadline) =
                    (acceptor.clone(), handle.clone(), limits.handshake_timeout);
                tokio::spawn(async move {
                    match tokio::time::timeout(deadline, acceptor.accept(slotted)).await {
                        Ok(Ok(tls)) => handle(Conn::Tls(Box::new(tls)), remote),
                        Ok(Err(err)) => {
                            metrics::counter!("atoll_server_connections_refused_total", "server" => server, "reason" => "handshake").increment(1);
                            tracing::debug!(%remote, server, %err, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("atoll_server_connections_refused_total", "server" => server, "reason" => "handshake_timeout").increment(1);
                            tracing::debug!(%remote, server, ?deadline, "TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }
}

/// The TLS connections [`accept`] yields, as a stream for tonic's `serve_with_incoming`.
pub fn tls_incoming(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<Slotted>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        accept(listener, Some(tls), &limits, stop, move |conn, _remote| {
            if let Conn::Tls(tls) = conn {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(*tls)).await;
                });
            }
        })
        .await;
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
