//! The REST API on each store, side by side: the memory store and a real PostgreSQL.
//!
//! For each store it serves the API with [`atoll_api::serve`] on 127.0.0.1 (plain HTTP from
//! loopback needs no token) and measures, through real HTTP requests:
//!
//! 1. PUT throughput: `clients` concurrent clients create distinct MeshGateways in mesh
//!    `default`;
//! 2. GET throughput: the same clients read those MeshGateways back;
//! 3. write-to-watch latency: sequential PUTs, each timed from just before the request is sent
//!    until a watcher's change feed yields the matching `Event::Put`. The memory store is
//!    watched through itself; PostgreSQL through a second `PostgresStore` on the same database,
//!    as another control-plane replica would see the write.
//!
//! Every phase stops at its count or its time limit, whichever comes first. The counts and the
//! limit can be lowered for a smoke run:
//!
//! | variable                   | default | meaning                                   |
//! |----------------------------|---------|-------------------------------------------|
//! | `ATOLL_BENCH_PUTS`         | 2000    | PUTs per store in the throughput phase    |
//! | `ATOLL_BENCH_GETS`         | 2000    | GETs per store in the throughput phase    |
//! | `ATOLL_BENCH_CLIENTS`      | 16      | concurrent clients in the throughput phases |
//! | `ATOLL_BENCH_WATCH_WRITES` | 500     | sequential PUTs timed to the watch        |
//! | `ATOLL_BENCH_PHASE_SECS`   | 60      | time limit of each phase                  |
//!
//! The temporary PostgreSQL runs with durability off (`fsync`, `synchronous_commit`; see
//! `atoll_e2e::postgres`), so its figures are an upper bound for a durable server.
//!
//! Run with `cargo bench -p atoll-api --bench api_store`.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atoll_api::{ApiAuth, ApiState, Mode};
use atoll_e2e::postgres::TempPostgres;
use atoll_store::{Event, MemoryStore, PostgresConfig, PostgresStore, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const MESH: &str = "default";
/// Bounds every single request, so a stuck server cannot stall a phase past its limit for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one write may take to reach the watcher before the benchmark gives up.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the API server may take to drain after the benchmark of a store.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The sizes of the run, from the environment (see the module docs).
struct Params {
    puts: usize,
    gets: usize,
    clients: usize,
    watch_writes: usize,
    phase_limit: Duration,
}

impl Params {
    fn from_env() -> Params {
        Params {
            puts: env_count("ATOLL_BENCH_PUTS", 2000),
            gets: env_count("ATOLL_BENCH_GETS", 2000),
            clients: env_count("ATOLL_BENCH_CLIENTS", 16).max(1),
            watch_writes: env_count("ATOLL_BENCH_WATCH_WRITES", 500),
            phase_limit: Duration::from_secs(env_count("ATOLL_BENCH_PHASE_SECS", 60) as u64),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} PUTs and {} GETs per store over {} concurrent clients, {} sequential writes \
             timed to the watch, each phase limited to {} s; HTTP/1.1 on 127.0.0.1, mode global",
            self.puts,
            self.gets,
            self.clients,
            self.watch_writes,
            self.phase_limit.as_secs()
        )
    }
}

fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a count")),
        Err(_) => default,
    }
}

/// The API served on an ephemeral loopback port until [`Server::stop`].
struct Server {
    base: String,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(store: Arc<dyn Store>) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("binding the API on 127.0.0.1");
        let address = listener.local_addr().expect("the API listener's address");
        let state = ApiState {
            store,
            mode: Mode::Global,
            // Writes over plain HTTP from loopback act as the admin: no token to verify.
            auth: ApiAuth {
                credentials: atoll_auth::Credentials::fixed(atoll_auth::Keyring::default()),
                access: atoll_auth::StaticAccess::default(),
                localhost_is_admin: true,
            },
            zone_certificates: Default::default(),
            status: None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(atoll_api::serve(
            listener,
            None,
            atoll_api::router(state),
            shutdown_rx,
            atoll_api::Limits::new("api-bench"),
        ));
        Server {
            base: format!("http://{address}"),
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        // The receiver lives in the server task; if it is gone the server has stopped already.
        let _ = self.shutdown.send(true);
        match tokio::time::timeout(DRAIN_TIMEOUT, self.task).await {
            Ok(result) => result.expect("the API server panicked"),
            Err(_) => eprintln!("warning: the API server did not drain within {DRAIN_TIMEOUT:?}"),
        }
    }
}

/// A plain-HTTP client of one server; clones share the connection pool.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("building the HTTP client");
        Api {
            client,
            base: base.to_string(),
        }
    }

    fn gateway_url(&self, name: &str) -> String {
        format!("{}/meshes/{MESH}/meshgateways/{name}", self.base)
    }

    async fn create_mesh(&self) {
        let url = format!("{}/meshes/{MESH}", self.base);
        let body = json!({"type": "Mesh", "name": MESH});
        self.put(&url, &body, StatusCode::CREATED).await;
    }

    async fn create_gateway(&self, name: &str) {
        self.put(&self.gateway_url(name), &gateway(name), StatusCode::CREATED)
            .await;
    }

    async fn read_gateway(&self, name: &str) {
        let url = self.gateway_url(name);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {url}: {err}"));
        expect_status("GET", &url, response, StatusCode::OK).await;
    }

    async fn put(&self, url: &str, body: &Value, expected: StatusCode) {
        let response = self
            .client
            .put(url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("PUT {url}: {err}"));
        expect_status("PUT", url, response, expected).await;
    }
}

/// Reads the whole body (so the connection is reused) and fails loudly on an unexpected status.
async fn expect_status(method: &str, url: &str, response: reqwest::Response, expected: StatusCode) {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|err| panic!("{method} {url}: reading the body: {err}"));
    assert_eq!(
        status,
        expected,
        "{method} {url}: {}",
        String::from_utf8_lossy(&body)
    );
}

fn gateway(name: &str) -> Value {
    json!({
        "type": "MeshGateway", "mesh": MESH, "name": name,
        "selectors": [{"match": {"kuma.io/service": "edge"}}],
        "conf": {"listeners": [{"port": 8080, "protocol": "HTTP", "hostname": "foo.example.com"}]}
    })
}

fn throughput_name(i: usize) -> String {
    format!("gw-{i}")
}

/// How many operations of a phase completed, and in how long.
struct Throughput {
    done: usize,
    elapsed: Duration,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs `op(0..count)` on `clients` concurrent tasks until all ran or `limit` passed.
async fn throughput<F, Fut>(count: usize, clients: usize, limit: Duration, op: F) -> Throughput
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let workers: Vec<JoinHandle<usize>> = (0..clients)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let mut done = 0;
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    op(i).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for worker in workers {
        done += worker.await.expect("a benchmark client panicked");
    }
    Throughput {
        done,
        elapsed: started.elapsed(),
    }
}

async fn put_phase(api: &Api, params: &Params) -> Throughput {
    let api = api.clone();
    throughput(params.puts, params.clients, params.phase_limit, move |i| {
        let api = api.clone();
        async move { api.create_gateway(&throughput_name(i)).await }
    })
    .await
}

/// Reads back the `existing` gateways the PUT phase created, round-robin.
async fn get_phase(api: &Api, params: &Params, existing: usize) -> Throughput {
    assert!(existing > 0, "the PUT phase created nothing to read");
    let api = api.clone();
    throughput(params.gets, params.clients, params.phase_limit, move |i| {
        let api = api.clone();
        async move { api.read_gateway(&throughput_name(i % existing)).await }
    })
    .await
}

/// Sequential writes, each timed until `feed` yields its `Event::Put`. Sorted ascending.
async fn watch_phase(
    api: &Api,
    mut feed: broadcast::Receiver<Event>,
    params: &Params,
) -> Vec<Duration> {
    let deadline = Instant::now() + params.phase_limit;
    let mut samples = Vec::with_capacity(params.watch_writes);
    for i in 0..params.watch_writes {
        if Instant::now() >= deadline {
            break;
        }
        let name = format!("watch-{i}");
        let started = Instant::now();
        let ((), seen) = tokio::join!(api.create_gateway(&name), next_put_of(&mut feed, &name));
        samples.push(seen - started);
    }
    samples.sort_unstable();
    samples
}

/// When `feed` yields the `Event::Put` of the gateway `name`, skipping other events.
async fn next_put_of(feed: &mut broadcast::Receiver<Event>, name: &str) -> Instant {
    let wait = async {
        loop {
            match feed.recv().await {
                Ok(Event::Put { key, .. }) if key.name == name => return Instant::now(),
                Ok(Event::Put { .. } | Event::Deleted { .. }) => {}
                Ok(Event::Resync) => panic!("the watch asked for a resync: events were lost"),
                Err(RecvError::Lagged(skipped)) => panic!("the watch lagged by {skipped} events"),
                Err(RecvError::Closed) => panic!("the change feed closed"),
            }
        }
    };
    tokio::time::timeout(WATCH_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no Put event for {name} within {WATCH_TIMEOUT:?}"))
}

/// What one store measured.
struct Figures {
    put: Throughput,
    get: Throughput,
    /// Write-to-watch latencies, ascending.
    watch: Vec<Duration>,
}

/// Serves `store`, runs the three phases, and watches writes through `watcher`.
async fn bench(
    label: &str,
    params: &Params,
    store: Arc<dyn Store>,
    watcher: Arc<dyn Store>,
) -> Figures {
    let server = Server::start(store).await;
    let api = Api::new(&server.base);
    api.create_mesh().await;
    eprintln!("{label}: PUT phase");
    let put = put_phase(&api, params).await;
    eprintln!("{label}: GET phase");
    let get = get_phase(&api, params, put.done).await;
    eprintln!("{label}: watch phase");
    // Subscribed only now: the throughput phases' events would fill the receiver's buffer.
    let watch = watch_phase(&api, watcher.watch(), params).await;
    drop(api);
    server.stop().await;
    Figures { put, get, watch }
}

async fn bench_memory(params: &Params) -> Figures {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    bench("memory", params, store.clone(), store).await
}

/// The API writes through one `PostgresStore`; a second one on the same database (a replica)
/// watches.
async fn bench_postgres(params: &Params, pg: &TempPostgres) -> Figures {
    let primary = connect(pg).await;
    let replica = connect(pg).await;
    bench("postgres", params, Arc::new(primary), Arc::new(replica)).await
}

async fn connect(pg: &TempPostgres) -> PostgresStore {
    PostgresStore::connect(PostgresConfig::new(pg.url()))
        .await
        .unwrap_or_else(|err| {
            panic!(
                "connecting to the temporary PostgreSQL: {err}\nserver log:\n{}",
                pg.log()
            )
        })
}

/// The nearest-rank percentile `p` (0 to 100) of ascending `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_string(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

fn print_table(params: &Params, rows: &[(&str, &Figures)]) {
    println!(
        "{:<9} {:>8} {:>8} {:>11} {:>11} {:>11}",
        "store", "put/s", "get/s", "watch p50", "watch p99", "watch max"
    );
    for (label, figures) in rows {
        println!(
            "{:<9} {:>8.0} {:>8.0} {:>11} {:>11} {:>11}",
            label,
            figures.put.per_second(),
            figures.get.per_second(),
            millis(percentile(&figures.watch, 50.0)),
            millis(percentile(&figures.watch, 99.0)),
            millis(figures.watch.last().copied()),
        );
    }
    for (label, figures) in rows {
        let completed = [
            ("PUTs", figures.put.done, params.puts),
            ("GETs", figures.get.done, params.gets),
            ("watched writes", figures.watch.len(), params.watch_writes),
        ];
        for (what, done, wanted) in completed {
            if done < wanted {
                println!("{label}: time limit reached after {done} of {wanted} {what}");
            }
        }
    }
    println!("parameters: {}", params.describe());
}

fn main() {
    let params = Params::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the Tokio runtime");
    let memory = runtime.block_on(bench_memory(&params));
    // Started only now, so the memory figures are not taken beside an idle PostgreSQL.
    let pg = TempPostgres::start()
        .expect("starting a temporary PostgreSQL (apt-get install -y postgresql)");
    let postgres = runtime.block_on(bench_postgres(&params, &pg));
    drop(pg);
    print_table(&params, &[("memory", &memory), ("postgres", &postgres)]);
}
