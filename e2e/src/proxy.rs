//! A TCP proxy on loopback that tests use to break a connection in controlled ways: freeze it
//! (bytes stop flowing but the sockets stay open, like a stalled stream behind a healthy load
//! balancer) or cut it (every open connection is closed). New connections always pass.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::Context;

/// A forwarding proxy to `target`, stopped on drop.
pub struct FaultProxy {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    target: SocketAddr,
    /// Connections accepted before this generation number are frozen.
    frozen_before: AtomicU64,
    generation: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
    closed: AtomicBool,
}

impl FaultProxy {
    pub fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding the fault proxy")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            target,
            frozen_before: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let accept_state = state.clone();
        thread::spawn(move || accept_loop(listener, accept_state));
        Ok(FaultProxy { port, state })
    }

    /// Existing connections stop forwarding but stay open; later ones work normally.
    pub fn freeze_existing(&self) {
        let current = self.state.generation.load(Ordering::SeqCst);
        self.state
            .frozen_before
            .store(current + 1, Ordering::SeqCst);
    }

    /// Closes every open connection.
    pub fn cut_existing(&self) {
        let open = std::mem::take(
            &mut *self
                .state
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for stream in open {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.generation.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.cut_existing();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for client in listener.incoming() {
        if state.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(state.target) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let generation = state.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
            let mut open = state.open.lock().unwrap_or_else(PoisonError::into_inner);
            open.push(c);
            open.push(s);
        }
        for (from, to) in [
            (client.try_clone(), server.try_clone()),
            (server.try_clone(), client.try_clone()),
        ] {
            if let (Ok(from), Ok(to)) = (from, to) {
                let state = state.clone();
                thread::spawn(move || pump(from, to, generation, state));
            }
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, generation: u64, state: Arc<State>) {
    let mut buffer = [0u8; 16 * 1024];
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    loop {
        if state.closed.load(Ordering::SeqCst) {
            break;
        }
        if generation < state.frozen_before.load(Ordering::SeqCst) {
            // Frozen: hold the sockets open, move nothing.
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes read just as the freeze began are held back too.
                while generation < state.frozen_before.load(Ordering::SeqCst)
                    && !state.closed.load(Ordering::SeqCst)
                {
                    thread::sleep(Duration::from_millis(50));
                }
                if to.write_all(&buffer[..n]).is_err() {
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
    let _ = to.shutdown(Shutdown::Write);
}
