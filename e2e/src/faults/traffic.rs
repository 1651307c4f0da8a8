//! Load that runs through a fault: requests through an Envoy outbound ([`Traffic`]) and
//! writes to the global's API ([`Writer`]), each outcome recorded with its time so a test
//! can count failures inside the fault's window. Both reach their server through a [`Dial`]:
//! the test's own loopback, or a lab host's (`crate::lab::Host::dial`).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::http_exchange;

/// One request: when it started, and whether it succeeded.
type Outcome = (Instant, bool);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens a new connection to one server, from wherever the caller must be (a lab host's
/// network namespace, say).
pub type Dial = Arc<dyn Fn() -> std::io::Result<TcpStream> + Send + Sync>;

/// Connections to 127.0.0.1:`port` of the test's own namespace.
pub fn loopback(port: u16) -> Dial {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    Arc::new(move || TcpStream::connect_timeout(&address, Duration::from_secs(2)))
}

/// The status of one request (host header `host`, extra `headers`), if any answer came.
fn call(
    dial: &Dial,
    host: &str,
    (method, path, json): (&str, &str, Option<&str>),
    headers: &[(String, String)],
) -> Option<u16> {
    let stream = dial().ok()?;
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http_exchange(stream, host, method, path, json, &headers)
        .ok()
        .map(|(code, _)| code)
}

/// Requests every `interval` to `host` through an Envoy outbound, until dropped.
pub struct Traffic {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Traffic {
    /// Through 127.0.0.1:`port` of the test's namespace.
    pub fn start(port: u16, host: &str, interval: Duration) -> Traffic {
        Self::start_via(loopback(port), host, interval)
    }

    /// Through connections `dial` opens.
    pub fn start_via(dial: Dial, host: &str, interval: Duration) -> Traffic {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (o, s, host) = (outcomes.clone(), stop.clone(), host.to_string());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let started = Instant::now();
                let ok = call(&dial, &host, ("GET", "/traffic", None), &[]) == Some(200);
                lock(&o).push((started, ok));
                thread::sleep(interval.saturating_sub(started.elapsed()));
            }
        });
        Traffic {
            outcomes,
            stop,
            thread: Some(thread),
        }
    }

    /// (failed, sent) among requests started in `[from, to)`.
    pub fn window(&self, from: Instant, to: Instant) -> (usize, usize) {
        let outcomes = lock(&self.outcomes);
        let inside: Vec<&Outcome> = outcomes
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .collect();
        (inside.iter().filter(|(_, ok)| !ok).count(), inside.len())
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a write got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 2xx: the write must survive every fault.
    Acknowledged,
    /// No answer, or 5xx / 429: the client may retry.
    Retryable,
    /// Anything else: a write refused for a reason retrying cannot fix.
    Refused(u16),
}

/// Writes MeshGateways `<prefix>-<n>` in mesh `mesh` one after another to the first of
/// the API replicas that answers (a client with a list of replicas), retrying a write that
/// got a retryable answer, until dropped.
pub struct Writer {
    acked: Arc<Mutex<Vec<String>>>,
    outcomes: Arc<Mutex<Vec<(Instant, WriteOutcome)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The API path and body of the `n`th write.
pub fn gateway(mesh: &str, prefix: &str, n: usize) -> (String, String) {
    let name = format!("{prefix}-{n}");
    let body = serde_json::json!({
        "type": "MeshGateway", "mesh": mesh, "name": name,
        "selectors": [{"match": {"kuma.io/service": name}}],
        "conf": {"listeners": [{"port": 8080 + (n % 1000) as u16, "protocol": "HTTP"}]},
    });
    (
        format!("/meshes/{mesh}/meshgateways/{name}"),
        body.to_string(),
    )
}

/// The `n`th write of a writer over `names` names: `<prefix>-<n % names>`, its listener port
/// following `n`.
fn cycled_gateway(mesh: &str, prefix: &str, n: usize, names: usize) -> (String, String) {
    let (path, body) = gateway(mesh, prefix, n % names.max(1));
    let mut value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    value["conf"]["listeners"][0]["port"] = (8080 + (n % 1000) as u16).into();
    (path, value.to_string())
}

impl Writer {
    /// To the APIs on 127.0.0.1:`api_ports` of the test's namespace.
    pub fn start(api_ports: Vec<u16>, mesh: &str, prefix: &str, interval: Duration) -> Writer {
        let apis = api_ports.into_iter().map(loopback).collect();
        Self::start_via(apis, Vec::new(), mesh, prefix, interval)
    }

    /// [`Writer::start`] over `names` names only: the `n`th write updates `<prefix>-<n %
    /// names>` (with content that changes each round), so a long run keeps the store's size
    /// bounded.
    pub fn start_cycling(
        api_ports: Vec<u16>,
        mesh: &str,
        prefix: &str,
        interval: Duration,
        names: usize,
    ) -> Writer {
        let apis = api_ports.into_iter().map(loopback).collect();
        Self::run(apis, Vec::new(), mesh, prefix, interval, names)
    }

    /// To the APIs `apis` dial, each request carrying `headers` (e.g. a token).
    pub fn start_via(
        apis: Vec<Dial>,
        headers: Vec<(String, String)>,
        mesh: &str,
        prefix: &str,
        interval: Duration,
    ) -> Writer {
        Self::run(apis, headers, mesh, prefix, interval, usize::MAX)
    }

    fn run(
        apis: Vec<Dial>,
        headers: Vec<(String, String)>,
        mesh: &str,
        prefix: &str,
        interval: Duration,
        names: usize,
    ) -> Writer {
        assert!(
            !apis.is_empty(),
            "a writer needs at least one API to write to"
        );
        let acked = Arc::new(Mutex::new(Vec::new()));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, o, s) = (acked.clone(), outcomes.clone(), stop.clone());
        let (mesh, prefix) = (mesh.to_string(), prefix.to_string());
        let thread = thread::spawn(move || {
            let mut n = 0;
            let mut replica = 0;
            while !s.load(Ordering::SeqCst) {
                let started = Instant::now();
                let (path, body) = cycled_gateway(&mesh, &prefix, n, names);
                let api = &apis[replica % apis.len()];
                let request = ("PUT", path.as_str(), Some(body.as_str()));
                let outcome = match call(api, "127.0.0.1", request, &headers) {
                    Some(code) if (200..300).contains(&code) => WriteOutcome::Acknowledged,
                    None | Some(429) | Some(500..=599) => WriteOutcome::Retryable,
                    Some(code) => WriteOutcome::Refused(code),
                };
                if outcome == WriteOutcome::Acknowledged {
                    lock(&a).push(path);
                    n += 1;
                } else {
                    // The next replica in the list, as a client with several addresses would.
                    replica += 1;
                }
                lock(&o).push((started, outcome));
                thread::sleep(interval.saturating_sub(started.elapsed()));
            }
        });
        Writer {
            acked,
            outcomes,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops writing and returns (acknowledged paths, every outcome).
    pub fn finish(mut self) -> (Vec<String>, Vec<(Instant, WriteOutcome)>) {
        self.halt();
        (lock(&self.acked).clone(), lock(&self.outcomes).clone())
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> usize {
        lock(&self.acked).len()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.halt();
    }
}
