//! A TCP proxy for link faults this kernel cannot make (no `tc netem`): per-direction delay,
//! loss, and moving where it forwards to (a failover's moved address).
//!
//! Loss on a TCP link never reaches the application as missing bytes: the kernel retransmits,
//! and what the application sees is the stream stalling for a retransmission timeout, and on
//! bad links the connection breaking. So "loss" here is: each chunk read is, with probability
//! `loss`, held back for `stall` (and everything behind it with it, bytes stay in order), and
//! with probability `reset` the connection is closed. Reordering is invisible above TCP (the
//! receiver's kernel puts segments back in order) and is modelled by the same stalls.
//!
//! Targets are tried in order for each new connection, the first that accepts wins: a list
//! of replicas behind one address, as a load balancer with health checks would present them.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// How one direction of the link misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFault {
    /// Added to every chunk.
    pub delay: Duration,
    /// Probability that a chunk stalls for `stall` (a lost segment's retransmission).
    pub loss: f64,
    pub stall: Duration,
    /// Probability that a chunk breaks the connection instead.
    pub reset: f64,
}

impl LinkFault {
    /// `loss` of segments and `delay` each way, a lost segment costing a 1 s retransmission
    /// (Linux's minimum RTO is 200 ms, its initial one 1 s).
    pub fn lossy(loss: f64, delay: Duration) -> LinkFault {
        LinkFault {
            delay,
            loss,
            stall: Duration::from_secs(1),
            reset: 0.0,
        }
    }
}

#[derive(Default)]
struct Faults {
    /// Client to target.
    up: LinkFault,
    /// Target to client.
    down: LinkFault,
}

struct State {
    targets: Mutex<Vec<SocketAddr>>,
    faults: Mutex<Faults>,
    /// Connections accepted before this number forward nothing (half-open).
    frozen_before: AtomicU64,
    accepted: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
    closed: AtomicBool,
    /// Chunks forwarded, stalled and connections reset: the fault did something.
    chunks: AtomicU64,
    stalls: AtomicU64,
    resets: AtomicU64,
    seed: AtomicU64,
}

/// Connects to the proxy's port where it listens, so its accept loop sees that it closed.
type Wake = Box<dyn Fn(u16) + Send + Sync>;

/// The proxy, listening on 127.0.0.1:`port`, stopped on drop.
pub struct LinkProxy {
    pub port: u16,
    state: Arc<State>,
    wake: Wake,
}

impl LinkProxy {
    /// On the test's own loopback.
    pub fn start(targets: &[SocketAddr]) -> anyhow::Result<LinkProxy> {
        Self::start_woken_by(
            targets,
            Box::new(|port| {
                let _ = TcpStream::connect(("127.0.0.1", port));
            }),
        )
    }

    /// On the loopback of the calling thread's network namespace (its threads inherit it,
    /// so they dial the targets from there too), `wake` reaching it there when dropped
    /// (e.g. from inside a lab host: `crate::lab::Host::link_proxy`).
    pub fn start_woken_by(targets: &[SocketAddr], wake: Wake) -> anyhow::Result<LinkProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding the link proxy")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            targets: Mutex::new(targets.to_vec()),
            faults: Mutex::new(Faults::default()),
            frozen_before: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            chunks: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(port)),
        });
        let accept_state = state.clone();
        thread::spawn(move || accept_loop(listener, accept_state));
        Ok(LinkProxy { port, state, wake })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sets both directions' faults; `LinkFault::default()` heals the link.
    pub fn set_faults(&self, up: LinkFault, down: LinkFault) {
        *lock(&self.state.faults) = Faults { up, down };
    }

    /// New connections go to `targets` (tried in order); open ones are not touched.
    pub fn set_targets(&self, targets: &[SocketAddr]) {
        *lock(&self.state.targets) = targets.to_vec();
    }

    /// Open connections stop forwarding but stay open (a half-open link); new ones work.
    pub fn freeze_existing(&self) {
        let accepted = self.state.accepted.load(Ordering::SeqCst);
        self.state
            .frozen_before
            .store(accepted + 1, Ordering::SeqCst);
    }

    /// Closes every open connection.
    pub fn cut_existing(&self) {
        for stream in std::mem::take(&mut *lock(&self.state.open)) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// (chunks forwarded, chunks stalled, connections reset) so far.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.state.chunks.load(Ordering::Relaxed),
            self.state.stalls.load(Ordering::Relaxed),
            self.state.resets.load(Ordering::Relaxed),
        )
    }

    pub fn connections(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.cut_existing();
        (self.wake)(self.port);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A uniform number in [0, 1) (xorshift; the proxy needs no cryptographic randomness).
fn random(state: &State) -> f64 {
    let mut x = state.seed.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.seed.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for client in listener.incoming() {
        if state.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let targets = lock(&state.targets).clone();
        let server = targets
            .iter()
            .find_map(|t| TcpStream::connect_timeout(t, Duration::from_secs(1)).ok());
        let Some(server) = server else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let id = state.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
            let mut open = lock(&state.open);
            open.push(c);
            open.push(s);
        }
        for (from, to, up) in [
            (client.try_clone(), server.try_clone(), true),
            (server.try_clone(), client.try_clone(), false),
        ] {
            if let (Ok(from), Ok(to)) = (from, to) {
                let state = state.clone();
                thread::spawn(move || direction(from, to, id, up, state));
            }
        }
    }
}

/// One direction: a reader stamping each chunk with when it may leave, a writer sending it
/// then, so delay does not slow the reading (and the link's throughput) down.
fn direction(mut from: TcpStream, to: TcpStream, id: u64, up: bool, state: Arc<State>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer_state = state.clone();
    let writer_to = to.try_clone();
    let writer = thread::spawn(move || {
        let Ok(mut to) = writer_to else { return };
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            while id < writer_state.frozen_before.load(Ordering::SeqCst)
                && !writer_state.closed.load(Ordering::SeqCst)
            {
                thread::sleep(Duration::from_millis(50));
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; 16 * 1024];
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut last_due = Instant::now();
    loop {
        if state.closed.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let fault = {
                    let faults = lock(&state.faults);
                    if up { faults.up } else { faults.down }
                };
                state.chunks.fetch_add(1, Ordering::Relaxed);
                if fault.reset > 0.0 && random(&state) < fault.reset {
                    state.resets.fetch_add(1, Ordering::Relaxed);
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    break;
                }
                let mut due = Instant::now() + fault.delay;
                if fault.loss > 0.0 && random(&state) < fault.loss {
                    state.stalls.fetch_add(1, Ordering::Relaxed);
                    due += fault.stall;
                }
                // Bytes stay in order: nothing leaves before what was read ahead of it.
                due = due.max(last_due);
                last_due = due;
                if tx.send((due, buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    drop(tx);
    let _ = writer.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    fn round_trip(port: u16) -> Duration {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = Instant::now();
        stream.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        started.elapsed()
    }

    #[test]
    fn delays_each_direction_and_fails_over_to_the_next_target() {
        let dead = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let dead_address = dead.local_addr().unwrap();
        drop(dead);
        let proxy = LinkProxy::start(&[dead_address, echo_server()]).unwrap();
        assert!(round_trip(proxy.port) < Duration::from_millis(150));
        let delay = Duration::from_millis(200);
        proxy.set_faults(
            LinkFault {
                delay,
                ..Default::default()
            },
            LinkFault {
                delay,
                ..Default::default()
            },
        );
        let took = round_trip(proxy.port);
        assert!(took >= 2 * delay, "round trip took {took:?}");
        proxy.set_faults(LinkFault::lossy(1.0, Duration::ZERO), LinkFault::default());
        assert!(round_trip(proxy.port) >= Duration::from_secs(1));
        assert!(proxy.counters().1 >= 1);
    }
}
