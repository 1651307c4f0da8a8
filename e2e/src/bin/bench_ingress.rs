//! Zone-ingress benchmark: Atoll's SNI router against Envoy (tls_inspector + tcp_proxy) and
//! nginx (stream `ssl_preread`), side by side in one run, each with one worker, on loopback, in
//! front of the same in-process TLS backend. Run with
//! `cargo run --release -p atoll-e2e --bin bench-ingress` (a release build of the harness builds
//! and starts a release `atoll-zone`).
//!
//! For each router, one after another, with identical load:
//! 1. New connections: C tasks for D seconds, each cycle = TCP connect through the router, a
//!    full TLS handshake with the backend (no resumption), one request with `Connection: close`,
//!    the response, and the close (the backend closes, so no TIME_WAIT piles up on the
//!    generator's ephemeral ports). Reported: cycles per second and the cycle's p99.
//! 2. Keep-alive: C persistent TLS sessions through the router sending requests back to back for
//!    D seconds. Reported: requests per second and the per-request p99.
//! 3. Memory: the router's resident set (summed over its process tree: nginx's master and
//!    worker) idle after start, peak while loaded (sampled every 50 ms) and after the load;
//!    PSS after the load, which counts pages shared by nginx's two processes once (and splits
//!    an executable's pages with any other process running it, such as other tests' Envoys).
//! 4. CPU: the router's own CPU time (user + system) per cycle and per request, which the load
//!    generator and the backend sharing the machine's cores do not distort as much.
//!
//! Each phase is preceded by a discarded warm-up. A direct-to-backend row is the baseline.
//!
//! Environment: `ATOLL_BENCH_SECONDS` (5, per phase), `ATOLL_BENCH_CONCURRENCY` (32),
//! `ATOLL_BENCH_WARMUP` (1 second), `ATOLL_BENCH_ROUNDS` (1: with more, the routers take turns
//! round after round and the table shows each figure's median), `ATOLL_BENCH_ONLY` (comma-separated subset of
//! `direct,atoll,envoy,nginx`), `ATOLL_BENCH_ZONE_BIN` (an `atoll-zone` to use instead of
//! building one). nginx needs the Debian packages `nginx` and `libnginx-mod-stream`; without
//! them its row is skipped.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use atoll_e2e::free_port;
use atoll_e2e::process::{Process, Spec};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, client::Resumption};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The routed name: the backend's certificate names it, every router maps it to the backend.
const SNI: &str = "backend.bench.atoll";
const REQUEST_KEEPALIVE: &[u8] = b"GET / HTTP/1.1\r\nHost: backend.bench.atoll\r\n\r\n";
const REQUEST_CLOSE: &[u8] =
    b"GET / HTTP/1.1\r\nHost: backend.bench.atoll\r\nConnection: close\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const RESPONSE_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const NGINX_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Longest a single cycle, request or connect may take before it counts as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Time for a router to settle before its idle and after-load memory are read.
const SETTLE: Duration = Duration::from_millis(500);
/// Linux's USER_HZ on every architecture this runs on: the unit of utime/stime in /proc.
const TICKS_PER_SECOND: f64 = 100.0;

/// Set by Ctrl-C: phases end early and everything is torn down.
static STOP: AtomicBool = AtomicBool::new(false);

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

struct Settings {
    seconds: f64,
    warmup: f64,
    concurrency: usize,
    rounds: usize,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Settings {
        fn number<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        }
        Settings {
            seconds: number("ATOLL_BENCH_SECONDS", 5.0_f64).max(0.1),
            warmup: number("ATOLL_BENCH_WARMUP", 1.0_f64).max(0.0),
            concurrency: number("ATOLL_BENCH_CONCURRENCY", 32_usize).max(1),
            rounds: number("ATOLL_BENCH_ROUNDS", 1_usize).max(1),
            only: std::env::var("ATOLL_BENCH_ONLY").ok().map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        }
    }

    fn measure(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    fn wants(&self, kind: Kind) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == kind.name()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Atoll,
    Envoy,
    Nginx,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Direct, Kind::Atoll, Kind::Envoy, Kind::Nginx];

    fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Atoll => "atoll",
            Kind::Envoy => "envoy",
            Kind::Nginx => "nginx",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The TLS backend and the client side of the load generator.

async fn start_backend(config: Arc<rustls::ServerConfig>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the backend")?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let _ = serve(acceptor, tcp).await;
                    });
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    });
    Ok(addr)
}

/// Minimal HTTP/1.1 keep-alive over TLS: answers every request head with `200 ok`, closing
/// after a request that says `Connection: close`.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    let mut tls = acceptor.accept(tcp).await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            ensure!(buf.len() <= 16 * 1024, "request head too large");
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let close = buf[..end]
            .to_ascii_lowercase()
            .windows(b"connection: close".len())
            .any(|w| w == b"connection: close");
        buf.drain(..end);
        if close {
            tls.write_all(RESPONSE_CLOSE).await?;
            tls.shutdown().await?;
            return Ok(());
        }
        tls.write_all(RESPONSE).await?;
        tls.flush().await?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Clone)]
struct Client {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Client {
    async fn connect(
        &self,
        target: SocketAddr,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(target).await?;
        tcp.set_nodelay(true)?;
        Ok(self.connector.connect(self.name.clone(), tcp).await?)
    }

    /// Connect, handshake, one request, the response, and the server's close.
    async fn cycle(&self, target: SocketAddr, buf: &mut Vec<u8>) -> anyhow::Result<()> {
        let mut tls = self.connect(target).await?;
        tls.write_all(REQUEST_CLOSE).await?;
        tls.flush().await?;
        read_response(&mut tls, buf).await?;
        let mut rest = [0u8; 256];
        match tls.read(&mut rest).await {
            Ok(0) => Ok(()),
            Ok(_) => bail!("bytes after the response"),
            // The peer closed without close_notify: still the end of the cycle.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads one response (head and `Content-Length` body) and checks it is a 200.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> anyhow::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    let mut need: Option<usize> = None;
    loop {
        if need.is_none()
            && let Some(i) = find(buf, b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            ensure!(
                head.starts_with("http/1.1 200"),
                "unexpected response: {head:?}"
            );
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .context("response without Content-Length")?;
            need = Some(i + 4 + length);
        }
        if let Some(need) = need
            && buf.len() >= need
        {
            ensure!(buf.len() == need, "more bytes than one response");
            return Ok(());
        }
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "connection closed before the whole response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

// ---------------------------------------------------------------------------------------------
// Load phases.

#[derive(Default)]
struct Phase {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Microseconds, sorted.
    latencies: Vec<u32>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn p99_ms(&self) -> Option<f64> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = (0.99 * self.latencies.len() as f64).ceil() as usize;
        Some(f64::from(self.latencies[rank.clamp(1, self.latencies.len()) - 1]) / 1000.0)
    }

    fn merge(&mut self, other: Phase) {
        self.ops += other.ops;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }

    fn error(&mut self, err: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(err.to_string());
        }
    }

    fn summary(&self, unit: &str) -> String {
        let mut line = format!(
            "{:.0} {unit}/s, p99 {} ms, {} ok, {} errors",
            self.rate(),
            self.p99_ms().map_or("-".into(), |p| format!("{p:.2}")),
            self.ops,
            self.errors
        );
        if let Some(err) = &self.first_error {
            line.push_str(&format!(" (first: {err})"));
        }
        line
    }
}

fn elapsed_us(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// `concurrency` tasks doing new-connection cycles until `duration` has passed.
async fn connection_phase(
    client: &Client,
    target: SocketAddr,
    concurrency: usize,
    duration: Duration,
) -> Phase {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let mut buf = Vec::with_capacity(256);
            while Instant::now() < deadline && !stopped() {
                let t = Instant::now();
                match tokio::time::timeout(OP_TIMEOUT, client.cycle(target, &mut buf)).await {
                    Ok(Ok(())) => {
                        phase.ops += 1;
                        phase.latencies.push(elapsed_us(t));
                    }
                    Ok(Err(err)) => {
                        phase.error(format!("{err:#}"));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(_) => phase.error("cycle timed out"),
                }
            }
            phase
        }));
    }
    collect(tasks, start).await
}

/// `concurrency` persistent TLS sessions sending requests back to back until `duration` has
/// passed. A broken session counts as an error and is replaced (its reconnect is not timed).
async fn keepalive_phase(
    client: &Client,
    target: SocketAddr,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let mut sessions = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let session = tokio::time::timeout(OP_TIMEOUT, client.connect(target))
            .await
            .context("opening a keep-alive session timed out")??;
        sessions.push(session);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for session in sessions {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let mut buf = Vec::with_capacity(256);
            let mut session = Some(session);
            while Instant::now() < deadline && !stopped() {
                let Some(tls) = session.as_mut() else {
                    match tokio::time::timeout(OP_TIMEOUT, client.connect(target)).await {
                        Ok(Ok(tls)) => session = Some(tls),
                        Ok(Err(err)) => {
                            phase.error(format!("reconnecting: {err:#}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(_) => phase.error("reconnecting timed out"),
                    }
                    continue;
                };
                let t = Instant::now();
                let exchange = async {
                    tls.write_all(REQUEST_KEEPALIVE).await?;
                    tls.flush().await?;
                    read_response(tls, &mut buf).await
                };
                match tokio::time::timeout(OP_TIMEOUT, exchange).await {
                    Ok(Ok(())) => {
                        phase.ops += 1;
                        phase.latencies.push(elapsed_us(t));
                    }
                    Ok(Err(err)) => {
                        phase.error(format!("{err:#}"));
                        session = None;
                    }
                    Err(_) => {
                        phase.error("request timed out");
                        session = None;
                    }
                }
            }
            phase
        }));
    }
    Ok(collect(tasks, start).await)
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Phase>>, start: Instant) -> Phase {
    let mut total = Phase::default();
    for task in tasks {
        match task.await {
            Ok(phase) => total.merge(phase),
            Err(err) => total.error(format!("load task failed: {err}")),
        }
    }
    total.elapsed = start.elapsed();
    total.latencies.sort_unstable();
    total
}

/// One cycle and one keep-alive exchange through `target`, retried until they work: the
/// router routes before anything is measured.
async fn probe(client: &Client, target: SocketAddr) -> anyhow::Result<()> {
    let until = Instant::now() + READY_DEADLINE;
    let mut buf = Vec::new();
    loop {
        let attempt = async {
            client.cycle(target, &mut buf).await?;
            let mut tls = client.connect(target).await?;
            for _ in 0..2 {
                tls.write_all(REQUEST_KEEPALIVE).await?;
                tls.flush().await?;
                read_response(&mut tls, &mut buf).await?;
            }
            anyhow::Ok(())
        };
        let err = match tokio::time::timeout(OP_TIMEOUT, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => format!("{err:#}"),
            Err(_) => "timed out".to_string(),
        };
        if Instant::now() >= until || stopped() {
            bail!("no answer through {target} within {READY_DEADLINE:?}: {err}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// /proc: memory and CPU of a router's process tree.

/// `root` and its descendants (nginx: the master and its worker).
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids);
        }
        i += 1;
    }
    tree
}

/// The fields of /proc/PID/stat after the command name: index 0 is field 3 (state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A `Key:  N kB` line of a /proc file, summed over `pids`.
fn sum_kib(pids: &[u32], file: &str, key: &str) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())?;
    }
    Some(total)
}

fn rss_kib(pids: &[u32]) -> Option<u64> {
    sum_kib(pids, "status", "VmRSS:")
}

fn pss_kib(pids: &[u32]) -> Option<u64> {
    sum_kib(pids, "smaps_rollup", "Pss:")
}

/// User + system CPU seconds used so far by `pids`.
fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    let mut ticks = 0u64;
    for pid in pids {
        let fields = stat_fields(*pid)?;
        // utime and stime are fields 14 and 15.
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// Samples the tree's RSS in the background; [`RssSampler::peak`] stops it.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pids: Vec<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(&pids).unwrap_or(0));
                std::thread::sleep(SAMPLE_EVERY);
            }
            peak
        });
        RssSampler { stop, thread }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// The routers.

/// A router process stopped with SIGTERM (so nginx's master takes its worker along) when
/// dropped, then SIGKILL if it lingers.
struct Child(Process);

impl Drop for Child {
    fn drop(&mut self) {
        self.0.terminate(Duration::from_secs(5));
    }
}

struct Target {
    addr: SocketAddr,
    /// The router's processes; empty for the direct baseline.
    pids: Vec<u32>,
    child: Option<Child>,
    /// Holds the config and log files; dropped after `child`.
    _dir: Option<TempDir>,
}

impl Target {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut() {
            Some(child) => child.0.check_alive(),
            None => Ok(()),
        }
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `atoll-zone` in the harness's own profile, built first (a no-op when current).
fn zone_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ATOLL_BENCH_ZONE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("atoll: building atoll-zone (`{cargo} build -p atoll-zone`, a no-op when current)");
    let mut command = Command::new(&cargo);
    command.arg("build");
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let output = command
        .args(["-p", "atoll-zone", "--bin", "atoll-zone"])
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        bail!(
            "building atoll-zone failed:\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        );
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    Ok(target.join(profile).join("atoll-zone"))
}

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

fn spec(name: &str, program: PathBuf, args: &[String], env: &[(&str, &str)]) -> Spec {
    Spec {
        name: name.to_string(),
        program,
        args: args.to_vec(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

fn start_atoll(program: &Path, backend: SocketAddr) -> anyhow::Result<Target> {
    let dir = tempfile::Builder::new()
        .prefix("atoll-bench-ingress-")
        .tempdir()?;
    let routes = dir.path().join("routes.json");
    std::fs::write(
        &routes,
        serde_json::json!({ SNI: [backend.to_string()] }).to_string(),
    )?;
    let port = free_port()?;
    let diagnostics = free_port()?;
    let args = [
        "ingress".to_string(),
        "--routes-file".into(),
        path_arg(&routes),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--diagnostics-port".into(),
        diagnostics.to_string(),
    ];
    // One runtime worker, as Envoy and nginx get one worker; no per-connection logs, as
    // neither of them has an access log here.
    let env = [("TOKIO_WORKER_THREADS", "1"), ("RUST_LOG", "warn")];
    let mut process = Process::start(
        spec("atoll-zone ingress", program.to_path_buf(), &args, &env),
        dir.path().join("atoll.log"),
    )?;
    process.wait_http_ok(diagnostics, "/ready", READY_DEADLINE)?;
    process.wait_tcp(port, READY_DEADLINE)?;
    Ok(target(process, port, dir))
}

fn start_envoy(backend: SocketAddr) -> anyhow::Result<Target> {
    let program = atoll_e2e::envoy::binary()?;
    let dir = tempfile::Builder::new()
        .prefix("atoll-bench-envoy-")
        .tempdir()?;
    let port = free_port()?;
    let admin = free_port()?;
    let bootstrap = format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
  - name: sni
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
    filter_chains:
    - filter_chain_match:
        server_names: ["{SNI}"]
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: sni
          cluster: backend
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{ socket_address: {{ address: {ip}, port_value: {backend_port} }} }}
"#,
        ip = backend.ip(),
        backend_port = backend.port(),
    );
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, bootstrap)?;
    let args = [
        "-c".to_string(),
        path_arg(&config),
        "--concurrency".into(),
        "1".into(),
        "--use-dynamic-base-id".into(),
        // No hot-restart shared memory left in /dev/shm behind each run.
        "--disable-hot-restart".into(),
        "--log-level".into(),
        "warn".into(),
    ];
    let mut process = Process::start(
        spec("envoy", program, &args, &[]),
        dir.path().join("envoy.log"),
    )?;
    process.wait_http_ok(admin, "/ready", READY_DEADLINE)?;
    process.wait_tcp(port, READY_DEADLINE)?;
    Ok(target(process, port, dir))
}

/// `Ok(None)` when nginx or its stream module is not installed.
fn start_nginx(backend: SocketAddr) -> anyhow::Result<Option<Target>> {
    let Some(program) = nginx_binary() else {
        println!("nginx: SKIPPED: not installed (apt-get install -y nginx libnginx-mod-stream)");
        return Ok(None);
    };
    if !Path::new(NGINX_STREAM_MODULE).exists() {
        println!(
            "nginx: SKIPPED: {NGINX_STREAM_MODULE} missing (apt-get install -y libnginx-mod-stream)"
        );
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("atoll-bench-nginx-")
        .tempdir()?;
    let port = free_port()?;
    let prefix = dir.path();
    let config = format!(
        r#"load_module {NGINX_STREAM_MODULE};
worker_processes 1;
daemon off;
pid {pid};
error_log {log} warn;
events {{
    worker_connections 4096;
}}
stream {{
    map $ssl_preread_server_name $upstream {{
        {SNI} {backend};
    }}
    server {{
        listen 127.0.0.1:{port};
        ssl_preread on;
        proxy_pass $upstream;
    }}
}}
"#,
        pid = prefix.join("nginx.pid").display(),
        log = prefix.join("error.log").display(),
    );
    let file = prefix.join("nginx.conf");
    std::fs::write(&file, config)?;
    let args = [
        "-p".to_string(),
        path_arg(prefix),
        "-c".into(),
        path_arg(&file),
        "-e".into(),
        path_arg(&prefix.join("error.log")),
    ];
    let mut process = Process::start(spec("nginx", program, &args, &[]), prefix.join("nginx.log"))?;
    process.wait_tcp(port, READY_DEADLINE).with_context(|| {
        format!(
            "error log:\n{}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        )
    })?;
    Ok(Some(target(process, port, dir)))
}

fn target(process: Process, port: u16, dir: TempDir) -> Target {
    Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pids: Vec::new(),
        child: Some(Child(process)),
        _dir: Some(dir),
    }
}

fn version(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

// ---------------------------------------------------------------------------------------------
// One router end to end, and the report.

/// One router's figures; memory in MiB, CPU in µs per cycle or request.
#[derive(Default, Clone)]
struct Row {
    name: &'static str,
    conn_rate: Option<f64>,
    conn_p99: Option<f64>,
    ka_rate: Option<f64>,
    ka_p99: Option<f64>,
    rss_idle: Option<f64>,
    rss_peak: Option<f64>,
    rss_after: Option<f64>,
    pss_after: Option<f64>,
    cpu_per_connection: Option<f64>,
    cpu_per_request: Option<f64>,
    errors: u64,
    note: Option<String>,
}

impl Row {
    /// Per figure, the median over `rounds` (the rounds that ran; errors are summed).
    fn median(rounds: &[Row]) -> Row {
        let ran: Vec<&Row> = rounds.iter().filter(|r| r.note.is_none()).collect();
        if ran.is_empty() {
            return rounds[0].clone();
        }
        let pick = |figure: fn(&Row) -> Option<f64>| {
            let mut values: Vec<f64> = ran.iter().filter_map(|r| figure(r)).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied()
        };
        Row {
            name: ran[0].name,
            conn_rate: pick(|r| r.conn_rate),
            conn_p99: pick(|r| r.conn_p99),
            ka_rate: pick(|r| r.ka_rate),
            ka_p99: pick(|r| r.ka_p99),
            rss_idle: pick(|r| r.rss_idle),
            rss_peak: pick(|r| r.rss_peak),
            rss_after: pick(|r| r.rss_after),
            pss_after: pick(|r| r.pss_after),
            cpu_per_connection: pick(|r| r.cpu_per_connection),
            cpu_per_request: pick(|r| r.cpu_per_request),
            errors: ran.iter().map(|r| r.errors).sum(),
            note: None,
        }
    }

    /// The figures compared between routers.
    fn compared(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("conn/s", self.conn_rate),
            ("cycle p99", self.conn_p99),
            ("ka req/s", self.ka_rate),
            ("ka p99", self.ka_p99),
            ("RSS peak", self.rss_peak),
            ("CPU/conn", self.cpu_per_connection),
            ("CPU/req", self.cpu_per_request),
        ]
    }
}

fn bench(
    rt: &Runtime,
    kind: Kind,
    settings: &Settings,
    client: &Client,
    backend: SocketAddr,
    zone: Option<&Path>,
) -> anyhow::Result<Option<Row>> {
    let mut target = match kind {
        Kind::Direct => Target {
            addr: backend,
            pids: Vec::new(),
            child: None,
            _dir: None,
        },
        Kind::Atoll => start_atoll(zone.context("no atoll-zone binary")?, backend)?,
        Kind::Envoy => start_envoy(backend)?,
        Kind::Nginx => match start_nginx(backend)? {
            Some(target) => target,
            None => return Ok(None),
        },
    };
    if let Some(pid) = target.child.as_ref().and_then(|c| c.0.pid()) {
        target.pids = process_tree(pid);
    }
    let addr = target.addr;
    rt.block_on(probe(client, addr))?;
    std::thread::sleep(SETTLE);
    let pids = target.pids.clone();
    let measured = !pids.is_empty();
    let memory = |kib: Option<u64>| kib.filter(|_| measured).map(|k| k as f64 / 1024.0);
    let mut row = Row {
        name: kind.name(),
        rss_idle: memory(rss_kib(&pids)),
        ..Row::default()
    };
    let sampler = RssSampler::start(pids.clone());
    let cpu = || cpu_seconds(&pids).filter(|_| measured);
    let per_op_us = |before: Option<f64>, after: Option<f64>, ops: u64| {
        Some((after? - before?) * 1e6 / (ops.max(1) as f64))
    };

    let c = settings.concurrency;
    rt.block_on(connection_phase(client, addr, c, settings.warmup()));
    let before = cpu();
    let connections = rt.block_on(connection_phase(client, addr, c, settings.measure()));
    row.cpu_per_connection = per_op_us(before, cpu(), connections.ops);
    println!(
        "{}: new connections: {}",
        kind.name(),
        connections.summary("conn")
    );
    row.conn_rate = Some(connections.rate());
    row.conn_p99 = connections.p99_ms();
    row.errors += connections.errors;
    target.check_alive()?;
    ensure!(!stopped(), "interrupted");

    rt.block_on(keepalive_phase(client, addr, c, settings.warmup()))?;
    let before = cpu();
    let keepalive = rt.block_on(keepalive_phase(client, addr, c, settings.measure()))?;
    row.cpu_per_request = per_op_us(before, cpu(), keepalive.ops);
    println!("{}: keep-alive: {}", kind.name(), keepalive.summary("req"));
    row.ka_rate = Some(keepalive.rate());
    row.ka_p99 = keepalive.p99_ms();
    row.errors += keepalive.errors;
    target.check_alive()?;
    ensure!(!stopped(), "interrupted");

    std::thread::sleep(SETTLE);
    let peak = sampler.peak();
    let after = rss_kib(&pids);
    row.rss_after = memory(after);
    row.pss_after = memory(pss_kib(&pids));
    row.rss_peak = memory(Some(peak.max(after.unwrap_or(0))));
    target.check_alive()?;
    drop(target);
    Ok(Some(row))
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn print_report(rows: &[Row], settings: &Settings) {
    println!();
    println!(
        "{} s per phase after {} s warm-up, {} concurrent clients, {}, one worker per router, {} cores",
        settings.seconds,
        settings.warmup,
        settings.concurrency,
        if settings.rounds > 1 {
            format!("median of {} rounds", settings.rounds)
        } else {
            "1 round".to_string()
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "router",
        "conn/s",
        "cycle p99",
        "ka req/s",
        "ka p99",
        "RSS idle",
        "RSS peak",
        "RSS after",
        "PSS after",
        "CPU/conn",
        "CPU/req",
        "errors"
    );
    println!(
        "{:<8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "", "", "ms", "", "ms", "MiB", "MiB", "MiB", "MiB", "µs", "µs", ""
    );
    for row in rows {
        if let Some(note) = &row.note {
            println!("{:<8} {note}", row.name);
            continue;
        }
        println!(
            "{:<8} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            row.name,
            fmt_opt(row.conn_rate, 0),
            fmt_opt(row.conn_p99, 2),
            fmt_opt(row.ka_rate, 0),
            fmt_opt(row.ka_p99, 2),
            fmt_opt(row.rss_idle, 1),
            fmt_opt(row.rss_peak, 1),
            fmt_opt(row.rss_after, 1),
            fmt_opt(row.pss_after, 1),
            fmt_opt(row.cpu_per_connection, 1),
            fmt_opt(row.cpu_per_request, 1),
            row.errors
        );
    }

    let find = |name: &str| rows.iter().find(|r| r.name == name && r.note.is_none());
    println!();
    println!(
        "ratios, router ÷ reference (conn/s, req/s: higher is better; p99, RSS, CPU: lower is better)"
    );
    let header: Vec<String> = Row::default()
        .compared()
        .iter()
        .map(|(name, _)| format!("{name:>10}"))
        .collect();
    println!("{:<16} {}", "", header.join(" "));
    for name in ["atoll", "envoy", "nginx"] {
        let Some(row) = find(name) else { continue };
        for reference in ["nginx", "envoy"] {
            if reference == name {
                continue;
            }
            let Some(base) = find(reference) else {
                continue;
            };
            let cells: Vec<String> = row
                .compared()
                .iter()
                .zip(base.compared())
                .map(|((_, a), (_, b))| match (a, b) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:>9.2}x", a / b),
                    _ => format!("{:>10}", "-"),
                })
                .collect();
            println!(
                "{:<16} {}",
                format!("{name} vs {reference}"),
                cells.join(" ")
            );
        }
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    if cfg!(debug_assertions) {
        println!(
            "warning: a debug build; run with `cargo run --release -p atoll-e2e --bin bench-ingress`"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;

    let authority = atoll_tls::Authority::generate("atoll bench CA")?;
    let (cert, key) = authority.issue_server(&[SNI.to_string()])?;
    let server = atoll_tls::server_config(&cert, &key, "bench backend")?;
    let mut client_config = atoll_tls::client_config(authority.cert_pem().as_bytes(), "bench CA")?;
    // Every new connection is a full handshake.
    client_config.resumption = Resumption::disabled();
    let client = Client {
        connector: TlsConnector::from(Arc::new(client_config)),
        name: ServerName::try_from(SNI)?,
    };
    let backend = rt.block_on(start_backend(server))?;
    println!("backend: TLS on {backend} for {SNI}");

    // Located once, so a round never waits for a rebuild.
    let zone = if settings.wants(Kind::Atoll) {
        match zone_binary() {
            Ok(path) => {
                println!("atoll: {}", path.display());
                Some(path)
            }
            Err(err) => {
                println!("atoll: FAILED: {err:#}");
                None
            }
        }
    } else {
        None
    };
    if settings.wants(Kind::Envoy)
        && let Ok(envoy) = atoll_e2e::envoy::binary()
    {
        println!("envoy: {}", version(&envoy, "--version"));
    }
    if settings.wants(Kind::Nginx)
        && let Some(nginx) = nginx_binary()
    {
        println!("nginx: {}", version(&nginx, "-v"));
    }

    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| settings.wants(*k))
        .collect();
    let mut rounds: Vec<Vec<Row>> = vec![Vec::new(); kinds.len()];
    for round in 1..=settings.rounds {
        if settings.rounds > 1 {
            println!("-- round {round}/{}", settings.rounds);
        }
        for (kind, results) in kinds.iter().zip(rounds.iter_mut()) {
            if stopped() {
                break;
            }
            let note = |text: &str| Row {
                name: kind.name(),
                note: Some(text.into()),
                ..Row::default()
            };
            match bench(&rt, *kind, &settings, &client, backend, zone.as_deref()) {
                Ok(Some(row)) => results.push(row),
                Ok(None) => results.push(note("skipped (not installed)")),
                Err(err) => {
                    println!("{}: FAILED: {err:#}", kind.name());
                    results.push(note("failed (see above)"));
                }
            }
        }
    }
    let rows: Vec<Row> = rounds
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| Row::median(r))
        .collect();
    print_report(&rows, &settings);
    if stopped() {
        bail!("interrupted");
    }
    Ok(())
}
