//! The conformance suite on the PostgreSQL store, each case on its own throwaway cluster, and
//! what only PostgreSQL has: several replicas on one database, outages, a bounded pool and
//! advisory-lock leadership.

use std::time::{Duration, Instant};

use atoll_e2e::postgres::TempPostgres;
use atoll_model::Kind;
use atoll_store::conformance::{EVENT_DEADLINE, next_event, secret, zone};
use atoll_store::{
    Event, Key, PostgresConfig, PostgresStore, Precondition, PutOutcome, Store, StoreError,
};

/// The store's logs, captured per test and shown when it fails (`RUST_LOG` overrides).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("atoll_store=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

async fn setup() -> (PostgresStore, TempPostgres) {
    init_tracing();
    let pg = TempPostgres::start().expect("temporary PostgreSQL");
    let store = connect(&pg, PostgresConfig::new(pg.url())).await;
    (store, pg)
}

async fn connect(pg: &TempPostgres, config: PostgresConfig) -> PostgresStore {
    match PostgresStore::connect(config).await {
        Ok(store) => store,
        Err(err) => panic!("connect: {err}\nserver log:\n{}", pg.log()),
    }
}

atoll_store::conformance_tests!(setup);

/// Short timeouts, so outage tests fail fast; a password, to check it never shows.
fn outage_config(pg: &TempPostgres) -> PostgresConfig {
    let mut config =
        PostgresConfig::from_parts("127.0.0.1", pg.port(), "postgres", "s3cret-pw", "postgres");
    config.acquire_timeout = Duration::from_secs(1);
    config
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, port: u16) -> String {
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains("s3cret-pw"), "password in {message}");
            message
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_see_each_others_writes() {
    init_tracing();
    let pg = TempPostgres::start().expect("temporary PostgreSQL");
    // Replicas starting together both migrate; the migrator's lock makes that safe.
    let (a, b) = tokio::join!(
        PostgresStore::connect(PostgresConfig::new(pg.url())),
        PostgresStore::connect(PostgresConfig::new(pg.url())),
    );
    let (a, b) = (a.expect("replica a"), b.expect("replica b"));
    let mut seen_by_b = b.watch();
    let mut seen_by_a = a.watch();

    let written = a
        .put(zone("shared", &[], true), Precondition::Absent)
        .await
        .expect("put");
    let key = Key::new(Kind::Zone, None, "shared");
    let expected = Event::Put {
        key: key.clone(),
        version: written.stored().version,
    };
    assert_eq!(next_event(&mut seen_by_b).await, expected);
    assert_eq!(next_event(&mut seen_by_a).await, expected);
    assert_eq!(
        b.get(&key).await.expect("get"),
        Some(written.stored().clone())
    );

    // Revisions are store-wide: b's later write has a later revision than a's.
    let later = b
        .put(secret("default", "s", b"x"), Precondition::Any)
        .await
        .expect("put");
    assert!(later.stored().version > written.stored().version);
    b.delete(&key, None).await.expect("delete");
    assert!(matches!(
        next_event(&mut seen_by_a).await,
        Event::Put { .. }
    ));
    assert!(matches!(
        next_event(&mut seen_by_a).await,
        Event::Deleted { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_without_reconnecting_by_hand() {
    init_tracing();
    let mut pg = TempPostgres::start().expect("temporary PostgreSQL");
    let store = connect(&pg, outage_config(&pg)).await;
    let mut events = store.watch();
    store
        .put(zone("before", &[], true), Precondition::Any)
        .await
        .expect("put before");
    assert!(matches!(next_event(&mut events).await, Event::Put { .. }));
    let mut leader = store
        .try_lead("singleton")
        .await
        .expect("try_lead")
        .expect("leads");

    pg.stop().expect("stop PostgreSQL");
    let started = Instant::now();
    let message = assert_unavailable(
        store
            .put(zone("during", &[], true), Precondition::Any)
            .await,
        pg.port(),
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "Unavailable after {took:?}: {message}"
    );
    assert_unavailable(
        store.get(&Key::new(Kind::Zone, None, "before")).await,
        pg.port(),
    );
    assert_unavailable(store.ping().await, pg.port());

    assert_unavailable(store.try_lead("other").await, pg.port());

    pg.start_again().expect("start PostgreSQL again");
    store.ping().await.expect("ping after restart");
    // The lock went with the old session: a leader must notice, and anyone may lead again.
    assert!(
        !leader.still_leading().await,
        "leadership survived the restart"
    );
    let _again = store
        .try_lead("singleton")
        .await
        .expect("try_lead")
        .expect("leads again");
    let after = store
        .put(zone("after", &[], true), Precondition::Any)
        .await
        .expect("put after restart");
    assert!(matches!(after, PutOutcome::Created(_)));

    // The listener reconnects on its own and says changes may have been missed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(Event::Resync)) => break,
            // The write above, if the listener was back before it.
            Ok(Ok(Event::Put { .. })) => continue,
            other => panic!("expected Resync, got {other:?}"),
        }
    }
    let later = store
        .put(zone("later", &[], true), Precondition::Any)
        .await
        .expect("put");
    let key = Key::new(Kind::Zone, None, "later");
    loop {
        match next_event(&mut events).await {
            Event::Put { key: k, version } if k == key => {
                assert_eq!(version, later.stored().version);
                break;
            }
            Event::Put { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_stopped_server_is_unavailable() {
    init_tracing();
    let mut pg = TempPostgres::start().expect("temporary PostgreSQL");
    pg.stop().expect("stop PostgreSQL");
    let started = Instant::now();
    assert_unavailable(PostgresStore::connect(outage_config(&pg)).await, pg.port());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_fails_instead_of_waiting_forever() {
    init_tracing();
    let pg = TempPostgres::start().expect("temporary PostgreSQL");
    let mut config = outage_config(&pg);
    config.max_connections = 2;
    let store = connect(&pg, config).await;
    let held = (
        store.pool().acquire().await.expect("first connection"),
        store.pool().acquire().await.expect("second connection"),
    );
    let started = Instant::now();
    let message = assert_unavailable(store.get(&Key::new(Kind::Zone, None, "x")).await, pg.port());
    assert!(message.contains("busy"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // The change feed has a connection of its own: writes still reach watchers afterwards.
    drop(held);
    let mut events = store.watch();
    let put = store
        .put(zone("x", &[], true), Precondition::Any)
        .await
        .expect("put");
    assert_eq!(
        next_event(&mut events).await,
        Event::Put {
            key: Key::new(Kind::Zone, None, "x"),
            version: put.stored().version
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_per_name_across_replicas() {
    init_tracing();
    let pg = TempPostgres::start().expect("temporary PostgreSQL");
    let a = connect(&pg, PostgresConfig::new(pg.url())).await;
    let b = connect(&pg, PostgresConfig::new(pg.url())).await;

    let mut leader = a.try_lead("gc").await.expect("try_lead").expect("a leads");
    assert!(leader.still_leading().await);
    assert!(
        b.try_lead("gc").await.expect("try_lead").is_none(),
        "two leaders"
    );
    assert!(
        a.try_lead("gc").await.expect("try_lead").is_none(),
        "two leaders in one replica"
    );
    let other = b
        .try_lead("insights")
        .await
        .expect("try_lead")
        .expect("another name is free");

    leader.release().await;
    let b_leads = b
        .try_lead("gc")
        .await
        .expect("try_lead")
        .expect("free once released");

    // Dropping the guard ends its session; the server frees the lock shortly after.
    drop(b_leads);
    let deadline = Instant::now() + EVENT_DEADLINE;
    loop {
        if let Some(guard) = a.try_lead("gc").await.expect("try_lead") {
            drop(guard);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lock not freed after the guard was dropped"
        );
        // A poll interval, not a synchronisation: the deadline bounds the wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(other);
}

/// A listener whose connection dies without a word (packets stop, no FIN) must notice through
/// its probes, reconnect and tell watchers to re-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_feed_connection_is_noticed() {
    init_tracing();
    let pg = TempPostgres::start().expect("temporary PostgreSQL");
    let proxy = atoll_e2e::faults::proxy::LinkProxy::start(&[([127, 0, 0, 1], pg.port()).into()])
        .expect("proxy");
    let through_proxy = pg
        .url()
        .replace(&format!(":{}/", pg.port()), &format!(":{}/", proxy.port));
    let mut config = PostgresConfig::new(through_proxy);
    config.feed_probe_interval = Duration::from_millis(300);
    let watcher = connect(&pg, config).await;
    let writer = connect(&pg, PostgresConfig::new(pg.url())).await;
    let mut feed = watcher.watch();
    writer
        .put(zone("before", &[], true), Precondition::Any)
        .await
        .expect("put");
    assert!(matches!(next_event(&mut feed).await, Event::Put { .. }));

    proxy.freeze_existing();
    writer
        .put(zone("during", &[], true), Precondition::Any)
        .await
        .expect("put");
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
        Ok(Ok(Event::Resync)) => {}
        Ok(Ok(other)) => panic!("nothing should get through a frozen connection: {other:?}"),
        Ok(Err(err)) => panic!("feed closed: {err}"),
        Err(_) => panic!("no Resync within 10s of the connection going silent"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    writer
        .put(zone("after", &[], true), Precondition::Any)
        .await
        .expect("put");
    assert!(matches!(next_event(&mut feed).await, Event::Put { key, .. } if key.name == "after"));
}

/// An unchanged write takes no lock: it completes while another transaction holds the row,
/// where a changed write to that row has to wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_write_takes_no_lock() {
    let (store, _pg) = setup().await;
    store
        .put(zone("held", &[], true), Precondition::Any)
        .await
        .expect("create");
    let mut holder = store.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM resources WHERE type = 'Zone' AND name = 'held' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .expect("lock the row");

    let unchanged = tokio::time::timeout(
        EVENT_DEADLINE,
        store.put(zone("held", &[], true), Precondition::Any),
    )
    .await
    .expect("the unchanged write does not wait for the row lock")
    .expect("put");
    assert!(
        matches!(unchanged, PutOutcome::Unchanged(_)),
        "{unchanged:?}"
    );

    let changing = {
        let store = store.clone();
        tokio::spawn(async move { store.put(zone("held", &[], false), Precondition::Any).await })
    };
    // The changed write is behind the lock: the server shows it waiting on it.
    let deadline = Instant::now() + EVENT_DEADLINE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'UPDATE resources%'",
        )
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_activity");
        if waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the changed write never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!changing.is_finished());
    holder.rollback().await.expect("release");
    let changed = changing.await.expect("join").expect("put");
    assert!(matches!(changed, PutOutcome::Updated(_)), "{changed:?}");
}

/// Many writers racing for one resource and for many: every write succeeds, one resource's
/// revisions increase in the order the feed delivers them, and nothing is lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_per_resource_order() {
    let (store, _pg) = setup().await;
    let mut events = store.watch();
    const WRITERS: usize = 8;
    const WRITES: usize = 25;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    // All on "contended", and each writer on a resource of its own too.
                    let data = format!("{w}-{i}");
                    store
                        .put(
                            secret("default", "contended", data.as_bytes()),
                            Precondition::Any,
                        )
                        .await
                        .expect("put contended");
                    store
                        .put(
                            secret("default", &format!("own-{w}"), data.as_bytes()),
                            Precondition::Any,
                        )
                        .await
                        .expect("put own");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let mut last = std::collections::HashMap::<String, u64>::new();
    let mut count = std::collections::HashMap::<String, usize>::new();
    for _ in 0..2 * WRITERS * WRITES {
        match next_event(&mut events).await {
            Event::Put { key, version } => {
                let previous = last.insert(key.name.clone(), version);
                assert!(
                    previous.is_none_or(|p| p < version),
                    "{}: revision {version} after {previous:?}",
                    key.name
                );
                *count.entry(key.name).or_default() += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(count["contended"], WRITERS * WRITES);
    for w in 0..WRITERS {
        assert_eq!(count[&format!("own-{w}")], WRITES);
    }
    let stored = store
        .get(&Key::new(Kind::Secret, Some("default"), "contended"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        stored.version, last["contended"],
        "the last event is the stored state"
    );
}
