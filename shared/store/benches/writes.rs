//! The PostgreSQL store's write path on a durable server (`fsync`, `synchronous_commit` and
//! full-page writes on, PostgreSQL's defaults), through `PostgresStore` itself:
//!
//! 1. changed writes: `clients` concurrent tasks each update resources of their own, every
//!    write a real change (a new revision, a row written, a NOTIFY);
//! 2. the same writes one at a time, as the store-wide lock the store used to take imposed
//!    (kept here as the reference the parallel figure is compared with);
//! 3. unchanged writes: the same clients write what is already stored, as every `atoll-dp`
//!    does when it re-registers; the WAL written and the feed events seen during the phase
//!    show whether anything was written.
//!
//! | variable              | default | meaning                               |
//! |-----------------------|---------|---------------------------------------|
//! | `ATOLL_BENCH_WRITES`  | 20000   | writes per phase                      |
//! | `ATOLL_BENCH_CLIENTS` | 16      | concurrent clients (64 resources each) |
//! | `ATOLL_BENCH_SECS`    | 60      | time limit of each phase              |
//!
//! Run with `cargo bench -p atoll-store --bench writes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atoll_e2e::postgres::TempPostgres;
use atoll_store::conformance::secret;
use atoll_store::{PostgresConfig, PostgresStore, Precondition, PutOutcome, Store};
use tokio::sync::Mutex;

/// Resources per client: writes cycle over them.
const PER_CLIENT: usize = 64;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Phase {
    done: usize,
    elapsed: Duration,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `count` writes over `clients` tasks, stopping at `limit`. `round` makes each write's
/// content (the same round rewrites the same content; `None` writes the steady content every
/// resource starts with); `serial`, when given, is held around each write.
async fn phase(
    store: &PostgresStore,
    clients: usize,
    count: usize,
    limit: Duration,
    round: Option<usize>,
    serial: Option<Arc<Mutex<()>>>,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (store, next, serial) = (store.clone(), next.clone(), serial.clone());
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || started.elapsed() > limit {
                        return done;
                    }
                    let name = format!("r{}", i % (clients * PER_CLIENT));
                    let data = match round {
                        Some(round) => {
                            format!("round {round} write {}", i / (clients * PER_CLIENT))
                        }
                        None => "steady".to_string(),
                    };
                    let _turn = match &serial {
                        Some(lock) => Some(lock.lock().await),
                        None => None,
                    };
                    match store
                        .put(secret("default", &name, data.as_bytes()), Precondition::Any)
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(err) => panic!("put {name}: {err}"),
                    }
                }
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.expect("client");
    }
    Phase {
        done,
        elapsed: started.elapsed(),
    }
}

async fn wal_lsn(store: &PostgresStore) -> i64 {
    sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
        .fetch_one(store.pool())
        .await
        .expect("WAL position")
}

#[tokio::main]
async fn main() {
    let writes = env_count("ATOLL_BENCH_WRITES", 20_000);
    let clients = env_count("ATOLL_BENCH_CLIENTS", 16).max(1);
    let limit = Duration::from_secs(env_count("ATOLL_BENCH_SECS", 60) as u64);
    let pg = TempPostgres::start_durable().expect("PostgreSQL");
    let store = PostgresStore::connect(PostgresConfig::new(pg.url()))
        .await
        .expect("connect");
    println!(
        "PostgreSQL store writes, durable server (fsync on), {clients} clients, {writes} writes \
         per phase, {PER_CLIENT} resources per client"
    );

    // The resources, and their "steady" content for the unchanged phase later.
    phase(&store, clients, clients * PER_CLIENT, limit, None, None).await;

    let parallel = phase(&store, clients, writes, limit, Some(1), None).await;
    println!(
        "changed writes, parallel:        {:>8.0}/s ({} in {:.2?})",
        parallel.per_second(),
        parallel.done,
        parallel.elapsed
    );
    let serial = phase(
        &store,
        clients,
        writes,
        limit,
        Some(2),
        Some(Arc::new(Mutex::new(()))),
    )
    .await;
    println!(
        "changed writes, one at a time:   {:>8.0}/s ({} in {:.2?}); parallel/serial = {:.1}x",
        serial.per_second(),
        serial.done,
        serial.elapsed,
        parallel.per_second() / serial.per_second()
    );

    // Back to "steady" everywhere, then measure rewriting it, once the feed has delivered
    // every event of the reset (a marker written last arrives last).
    phase(&store, clients, clients * PER_CLIENT, limit, None, None).await;
    let mut events = store.watch();
    store
        .put(secret("default", "marker", b"m"), Precondition::Any)
        .await
        .expect("marker");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(atoll_store::Event::Put { key, .. })) if key.name == "marker" => break,
            Ok(Ok(_)) => {}
            other => panic!("the marker never arrived: {other:?}"),
        }
    }
    let before = wal_lsn(&store).await;
    let unchanged = phase(&store, clients, writes, limit, None, None).await;
    let wal = wal_lsn(&store).await - before;
    let mut seen = 0;
    while events.try_recv().is_ok() {
        seen += 1;
    }
    println!(
        "unchanged writes, parallel:      {:>8.0}/s ({} in {:.2?}); WAL written: {wal} bytes \
         ({:.2} per write), feed events: {seen}",
        unchanged.per_second(),
        unchanged.done,
        unchanged.elapsed,
        wal as f64 / unchanged.done.max(1) as f64
    );
    let outcome = store
        .put(secret("default", "r0", b"steady"), Precondition::Any)
        .await
        .expect("put");
    assert!(matches!(outcome, PutOutcome::Unchanged(_)));
}
