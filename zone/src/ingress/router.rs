//! The accept loop and the life of one connection: read the ClientHello, pick an endpoint,
//! splice bytes both ways until both sides are done, idle, or the drain runs out.
//!
//! Owns connection limits, timeouts and graceful drain. Must not terminate TLS or hold key
//! material (bytes are forwarded exactly as read, the ClientHello included), must not panic or
//! stop serving on anything a peer sends, and must not let one connection's trouble reach
//! another: every connection is its own task, bounded in time and memory.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tracing::Instrument;

use super::clienthello::{Parsed, Reader};
use super::stats::{Active, Rejection, SniCounters, Stats};
use super::table::{Picker, Table};

/// Splice buffer per direction: a TLS record is at most ~16 KiB, half of one per read keeps
/// memory per connection small with no measurable cost in throughput on loopback.
const SPLICE_BUFFER: usize = 8 * 1024;

/// Growth step of the ClientHello buffer.
const HELLO_READ: usize = 4 * 1024;

/// Pause after a failed accept (typically out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Limits of one ingress.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Connections held at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time for the whole ClientHello to arrive (slow-loris bound).
    pub handshake_timeout: Duration,
    /// A spliced connection where neither side sent anything for this long is closed.
    pub idle_timeout: Duration,
    /// After stop, how long open connections may run before they are cut.
    pub drain_timeout: Duration,
    /// Per endpoint attempt.
    pub connect_timeout: Duration,
    /// A second name to look up when the SNI is not in the table (the egress maps every port
    /// form of a service to its `any` name); `None` for the ingress, which serves exact names.
    pub fallback: Option<fn(&str) -> Option<String>>,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(3600),
            drain_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            fallback: None,
        }
    }
}

/// What every connection task shares.
struct Shared {
    config: IngressConfig,
    table: watch::Receiver<Arc<Table>>,
    picker: Picker,
    stats: Arc<Stats>,
}

/// Serves `listener` with the routes of `table` (latest value at each connection) until `stop`
/// turns true or its sender is dropped (nobody could stop it any more), then closes the
/// listener, so new connections are refused, and lets open connections finish for up to
/// `config.drain_timeout` before cutting them.
pub async fn serve(
    listener: TcpListener,
    config: IngressConfig,
    table: watch::Receiver<Arc<Table>>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
) {
    let drain_timeout = config.drain_timeout;
    let limit = Arc::new(Semaphore::new(
        config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut table_changes = table.clone();
    let mut table_open = true;
    let shared = Arc::new(Shared {
        config,
        table,
        picker: Picker::default(),
        stats,
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            // The `Ref` the wait returns is not `Send`: drop it inside.
            () = async { drop(stop.wait_for(|stop| *stop).await) } => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => reaped(joined),
            changed = table_changes.changed(), if table_open => match changed {
                Ok(()) => {
                    let table = table_changes.borrow_and_update().clone();
                    shared.picker.retain(&table);
                    shared.stats.retain(&table);
                }
                Err(_) => table_open = false,
            },
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.stats.accepted();
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        // Closing at once is the cheapest answer; the client's retry or its
                        // other endpoints take it from there.
                        shared.stats.reject(Rejection::OverLimit);
                        tracing::debug!(%peer, "connection limit reached: closing");
                        drop(stream);
                        continue;
                    };
                    let span = tracing::debug_span!("ingress", %peer, sni = tracing::field::Empty);
                    connections.spawn(connection(stream, shared.clone(), permit).instrument(span));
                }
                Err(err) => {
                    tracing::warn!(%err, "zone ingress: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        ?drain_timeout,
        "zone ingress draining"
    );
    let deadline = tokio::time::sleep(drain_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = connections.join_next() => match joined {
                Some(joined) => reaped(joined),
                None => break,
            },
            () = &mut deadline => {
                tracing::info!(cut = connections.len(), "zone ingress drain timed out");
                break;
            }
        }
    }
    connections.shutdown().await;
}

fn reaped(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined
        && err.is_panic()
    {
        tracing::error!(%err, "zone ingress connection task panicked");
    }
}

/// Why a connection ended before it could be spliced.
#[derive(Debug)]
enum HelloError {
    /// Closed before sending anything: load-balancer health checks do this; not an error.
    Empty,
    Truncated,
    Malformed(&'static str),
    NoSni,
    Io(io::Error),
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::Empty => f.write_str("closed before sending anything"),
            HelloError::Truncated => f.write_str("closed in the middle of its ClientHello"),
            HelloError::Malformed(reason) => write!(f, "malformed ClientHello: {reason}"),
            HelloError::NoSni => f.write_str("ClientHello without server_name"),
            HelloError::Io(err) => write!(f, "reading the ClientHello: {err}"),
        }
    }
}

async fn connection(mut client: TcpStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    let stats = &shared.stats;
    let _active = Active::new(stats);
    let config = &shared.config;
    let hello = timeout(config.handshake_timeout, read_hello(&mut client)).await;
    let (buffered, sni) = match hello {
        Ok(Ok(hello)) => hello,
        Err(_elapsed) => {
            stats.reject(Rejection::Timeout);
            tracing::debug!(timeout = ?config.handshake_timeout, "no complete ClientHello in time: closing");
            return;
        }
        Ok(Err(err)) => {
            match &err {
                HelloError::Truncated | HelloError::Malformed(_) => {
                    stats.reject(Rejection::Malformed)
                }
                HelloError::NoSni => stats.reject(Rejection::NoSni),
                HelloError::Empty | HelloError::Io(_) => {}
            }
            tracing::debug!(%err, "closing");
            return;
        }
    };
    tracing::Span::current().record("sni", sni.as_str());
    // Cloned out so the table's lock is not held across the connects below. `sni` becomes the
    // table's key when the fallback name matched instead (an egress routes every port form).
    let (sni, endpoints) = {
        let table = shared.table.borrow();
        match table.get(&sni) {
            Some(found) => (sni, found.clone()),
            None => match shared.config.fallback.and_then(|f| f(&sni)) {
                Some(key) => {
                    let found = table.get(&key).cloned().unwrap_or_default();
                    (key, found)
                }
                None => (sni, Vec::new()),
            },
        }
    };
    if endpoints.is_empty() {
        stats.reject(Rejection::UnknownSni);
        tracing::debug!("unknown SNI: closing");
        return;
    }
    let counters = stats.connection_for(&sni);
    let Some((upstream, endpoint)) = connect(&shared, &sni, &endpoints).await else {
        stats.reject(Rejection::Upstream);
        tracing::warn!(%sni, endpoints = endpoints.len(), "no endpoint accepted the connection: closing");
        return;
    };
    stats.routed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%endpoint, "spliced");
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    match splice(client, upstream, buffered, config.idle_timeout, &counters).await {
        Ok(Ended::Closed) => tracing::debug!(%endpoint, "closed"),
        Ok(Ended::Idle) => {
            stats.idle_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%endpoint, timeout = ?config.idle_timeout, "idle: closed");
        }
        Err(err) => tracing::debug!(%endpoint, %err, "connection error: closed"),
    }
}

/// Reads until the ClientHello is complete; returns every byte read (the hello and whatever
/// followed it in the same reads, e.g. TLS 1.3 early data) and the SNI.
async fn read_hello(client: &mut TcpStream) -> Result<(Vec<u8>, String), HelloError> {
    let mut reader = Reader::new();
    let mut buffered = Vec::new();
    // Bounded without a check here: the reader answers before MAX_INPUT bytes of records plus
    // one record, so the buffer never holds more than that plus one read.
    loop {
        buffered.reserve(HELLO_READ);
        let before = buffered.len();
        let read = client
            .read_buf(&mut buffered)
            .await
            .map_err(HelloError::Io)?;
        if read == 0 {
            return Err(if before == 0 {
                HelloError::Empty
            } else {
                HelloError::Truncated
            });
        }
        match reader.push(buffered.get(before..).unwrap_or_default()) {
            Parsed::NeedMore => {}
            Parsed::Sni(sni) => return Ok((buffered, sni)),
            Parsed::NoSni => return Err(HelloError::NoSni),
            Parsed::Invalid(reason) => return Err(HelloError::Malformed(reason)),
        }
    }
}

/// Connects to the first endpoint that accepts, in the picker's order.
async fn connect(
    shared: &Shared,
    sni: &str,
    endpoints: &[SocketAddr],
) -> Option<(TcpStream, SocketAddr)> {
    for endpoint in shared.picker.candidates(sni, endpoints) {
        match timeout(shared.config.connect_timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(stream)) => {
                shared.picker.mark_ok(endpoint);
                return Some((stream, endpoint));
            }
            Ok(Err(err)) => {
                tracing::warn!(%endpoint, %sni, %err, "cannot connect to endpoint; trying the next");
            }
            Err(_) => {
                tracing::warn!(%endpoint, %sni, timeout = ?shared.config.connect_timeout, "connect to endpoint timed out; trying the next");
            }
        }
        shared.picker.mark_failed(endpoint);
    }
    None
}

enum Ended {
    /// Both sides closed (or one failed).
    Closed,
    /// Nothing moved either way for the idle timeout.
    Idle,
}

/// Copies both ways, `first` (the bytes already read from the client) to the endpoint first.
///
/// Each direction ends on its own: EOF from one side becomes a FIN to the other (half-close),
/// and the other direction goes on until its own EOF. An error in either direction ends both.
async fn splice(
    client: TcpStream,
    upstream: TcpStream,
    first: Vec<u8>,
    idle: Duration,
    counters: &SniCounters,
) -> io::Result<Ended> {
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let activity = Activity::new();
    let inbound = Count {
        local: &counters.bytes_in,
        metric: &counters.bytes_in_metric,
    };
    let outbound = Count {
        local: &counters.bytes_out,
        metric: &counters.bytes_out_metric,
    };
    let up = pump(client_read, upstream_write, first, &activity, &inbound);
    let down = pump(
        upstream_read,
        client_write,
        Vec::new(),
        &activity,
        &outbound,
    );
    tokio::select! {
        done = async { tokio::try_join!(up, down) } => done.map(|_| Ended::Closed),
        () = activity.idle_for(idle) => Ok(Ended::Idle),
    }
}

struct Count<'a> {
    local: &'a AtomicU64,
    metric: &'a metrics::Counter,
}

impl Count<'_> {
    fn add(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.local.fetch_add(n, Ordering::Relaxed);
        self.metric.increment(n);
    }
}

async fn pump<R, W>(
    mut from: R,
    mut to: W,
    first: Vec<u8>,
    activity: &Activity,
    count: &Count<'_>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !first.is_empty() {
        to.write_all(&first).await?;
        count.add(first.len());
        activity.touch();
    }
    drop(first);
    let mut buf = vec![0u8; SPLICE_BUFFER];
    loop {
        let read = from.read(&mut buf).await?;
        if read == 0 {
            // Pass the half-close on; if the other side is already gone there is nothing
            // left to tell it, and the other direction ends on its own error.
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(buf.get(..read).unwrap_or_default()).await?;
        count.add(read);
        // Once per chunk, after the write: a write that blocks longer than the idle timeout
        // is stuck anyway.
        activity.touch();
    }
}

/// When bytes last moved on a connection, shared by its two directions.
struct Activity {
    start: Instant,
    /// Milliseconds since `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = Instant::now().saturating_duration_since(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}
