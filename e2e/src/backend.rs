//! A real HTTP backend for data-plane tests: answers every request with its own name and the
//! path it was asked for (`<name> <path>`), so a test can tell which service answered.
//!
//! It can misbehave on demand: answer every request with another status
//! ([`Backend::set_status`]), fail its health path `/health` on its own
//! ([`Backend::set_health`]), and answer `/slow/<ms>` only after that many milliseconds.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

pub struct Backend {
    pub name: String,
    pub port: u16,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    behaviour: Arc<Behaviour>,
    /// Connects to the listener once, so a blocked accept sees the stop flag.
    wake: Box<dyn Fn() + Send + Sync>,
}

/// What the backend answers, changeable while it runs.
struct Behaviour {
    /// Requests whose head has arrived, answered or not yet.
    received: AtomicU64,
    /// The status of every answer but `/health`'s.
    status: AtomicU16,
    /// The status of `/health`.
    health: AtomicU16,
}

impl Backend {
    /// Starts on a free loopback port; stops when dropped.
    pub fn start(name: &str) -> anyhow::Result<Backend> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a backend")?;
        let port = listener.local_addr()?.port();
        Self::serve(
            name,
            listener,
            Box::new(move || {
                let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
            }),
        )
    }

    /// Serves on `listener` (bound wherever the caller chose, e.g. in another network
    /// namespace); `wake` must connect to it.
    pub fn serve(
        name: &str,
        listener: TcpListener,
        wake: Box<dyn Fn() + Send + Sync>,
    ) -> anyhow::Result<Backend> {
        let port = listener.local_addr()?.port();
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let behaviour = Arc::new(Behaviour {
            received: AtomicU64::new(0),
            status: AtomicU16::new(200),
            health: AtomicU16::new(200),
        });
        let (n, s, st, b) = (
            name.to_string(),
            served.clone(),
            stop.clone(),
            behaviour.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (n, s, b) = (n.clone(), s.clone(), b.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &n, &s, &b);
                });
            }
        });
        Ok(Backend {
            name: name.to_string(),
            port,
            served,
            stop,
            behaviour,
            wake,
        })
    }

    /// Answers every request but `/health` with `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.behaviour.status.store(status, Ordering::Relaxed);
    }

    /// Answers `/health` with `status` from now on.
    pub fn set_health(&self, status: u16) {
        self.behaviour.health.store(status, Ordering::Relaxed);
    }

    /// Requests that have arrived so far, including those still being answered.
    pub fn received(&self) -> u64 {
        self.behaviour.received.load(Ordering::Relaxed)
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        (self.wake)();
    }
}

/// Serves keep-alive HTTP/1.1 requests (bodies are not expected) until the peer closes.
fn serve(
    stream: TcpStream,
    name: &str,
    served: &AtomicU64,
    behaviour: &Behaviour,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
        }
        behaviour.received.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = path.strip_prefix("/slow/").and_then(|ms| ms.parse().ok()) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let status = if path == "/health" {
            behaviour.health.load(Ordering::Relaxed)
        } else {
            behaviour.status.load(Ordering::Relaxed)
        };
        let body = format!("{name} {path}");
        write!(
            writer,
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            reason(status),
            body.len()
        )?;
        served.fetch_add(1, Ordering::Relaxed);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
