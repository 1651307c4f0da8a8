//! Sender and receiver connected in-process over bounded channels, each with its own memory
//! store: convergence, reconnects, chunking, refusals, liveness, and load in both directions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoll_kds::receiver::{Receiver, ReceiverConfig};
use atoll_kds::scope::{GlobalExport, GlobalImport, ZoneExport, ZoneImport};
use atoll_kds::sender::{Hold, Sender, SenderConfig};
use atoll_kds::{KdsError, Scope, SyncObserver};
use atoll_model::{Kind, Resource, decode_value};
use atoll_store::{Key, ListQuery, MemoryStore, Precondition, Store};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn has(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|e| e.contains(needle))
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl SyncObserver for Recorder {
    fn acked(&self, kind: Kind, nonce: &str) {
        self.0.lock().unwrap().push(format!("ack {kind} {nonce}"));
    }
    fn nacked(&self, kind: Kind, _nonce: &str, reason: &str) {
        self.0.lock().unwrap().push(format!("nack {kind} {reason}"));
    }
    fn rejected(&self, kind: Kind, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("rejected {kind} {reason}"));
    }
    fn synced(&self, kind: Kind, changes: usize) {
        self.0
            .lock()
            .unwrap()
            .push(format!("synced {kind} {changes}"));
    }
}

struct Stream {
    stop: watch::Sender<bool>,
    sender: JoinHandle<Result<(), KdsError>>,
    receiver: JoinHandle<Result<(), KdsError>>,
    sent_observer: Arc<Recorder>,
    received_observer: Arc<Recorder>,
}

impl Stream {
    async fn close(self) {
        let _ = self.stop.send(true);
        let _ = self.sender.await;
        let _ = self.receiver.await;
    }
}

#[allow(clippy::too_many_arguments)]
fn connect(
    from: Arc<dyn Store>,
    export: Arc<dyn Scope>,
    to: Arc<dyn Store>,
    import: Arc<dyn Scope>,
    sender_config: SenderConfig,
    receiver_config: ReceiverConfig,
    capacity: usize,
) -> Stream {
    let sent_observer = Arc::new(Recorder::default());
    let sender = Sender::new(from, export, sent_observer.clone(), sender_config);
    run_stream(sender, sent_observer, to, import, receiver_config, capacity)
}

/// Runs `sender` against a receiver into `to`.
fn run_stream(
    sender: Sender,
    sent_observer: Arc<Recorder>,
    to: Arc<dyn Store>,
    import: Arc<dyn Scope>,
    receiver_config: ReceiverConfig,
    capacity: usize,
) -> Stream {
    let (stop, stop_rx) = watch::channel(false);
    let (req_tx, req_rx) = mpsc::channel(capacity);
    let (resp_tx, resp_rx) = mpsc::channel(capacity);
    let received_observer = Arc::new(Recorder::default());
    let receiver = Receiver::new(to, import, received_observer.clone(), receiver_config);
    Stream {
        stop,
        sender: tokio::spawn(sender.run(req_rx, resp_tx, stop_rx.clone())),
        receiver: tokio::spawn(receiver.run(resp_rx, req_tx, stop_rx)),
        sent_observer,
        received_observer,
    }
}

/// Global to zone `name`, listing full sets through `reads`, held while `hold` says so.
fn down_sharing(
    reads: &Arc<atoll_kds::shared_reads::SharedReads>,
    zone: &Arc<dyn Store>,
    name: &str,
    hold: Option<Hold>,
) -> Stream {
    let sent_observer = Arc::new(Recorder::default());
    let sender = Sender::new(
        reads.store().clone(),
        Arc::new(GlobalExport { zone: name.into() }),
        sent_observer.clone(),
        SenderConfig {
            hold,
            ..SenderConfig::default()
        },
    )
    .sharing(reads.clone());
    let receiver_config = ReceiverConfig {
        node_id: name.into(),
        ..Default::default()
    };
    let import = Arc::new(ZoneImport { zone: name.into() });
    run_stream(
        sender,
        sent_observer,
        zone.clone(),
        import,
        receiver_config,
        16,
    )
}

fn down(global: &Arc<dyn Store>, zone: &Arc<dyn Store>) -> Stream {
    connect(
        global.clone(),
        Arc::new(GlobalExport {
            zone: "zone-1".into(),
        }),
        zone.clone(),
        Arc::new(ZoneImport {
            zone: "zone-1".into(),
        }),
        SenderConfig::default(),
        ReceiverConfig {
            node_id: "zone-1".into(),
            ..Default::default()
        },
        16,
    )
}

fn resource(doc: serde_json::Value) -> Resource {
    decode_value(doc).expect("valid test resource")
}

fn mesh(name: &str) -> Resource {
    resource(json!({"type": "Mesh", "name": name}))
}

fn gateway(name: &str, port: u32) -> Resource {
    resource(json!({
        "type": "MeshGateway", "mesh": "default", "name": name,
        "selectors": [{"match": {"kuma.io/service": name}}],
        "conf": {"listeners": [{"port": port, "protocol": "HTTP"}]}
    }))
}

fn dataplane(name: &str) -> Resource {
    resource(json!({
        "type": "Dataplane", "mesh": "default", "name": name,
        "networking": {"address": "127.0.0.1", "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]}
    }))
}

async fn put(store: &Arc<dyn Store>, r: Resource) {
    store.put(r, Precondition::Any).await.unwrap();
}

async fn names(store: &Arc<dyn Store>, kind: Kind) -> Vec<String> {
    let page = store
        .list(&ListQuery {
            kind: Some(kind),
            ..Default::default()
        })
        .await
        .unwrap();
    page.items
        .iter()
        .map(|s| s.resource.name().to_string())
        .collect()
}

/// Polls `check` until it holds or `deadline` passes.
async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn global_secret(name: &str, data: &[u8]) -> Resource {
    let spec = atoll_model::types::SecretSpec::from_bytes(data);
    resource(json!({"type": "GlobalSecret", "name": name, "data": spec.data}))
}

/// Zones check zone and user tokens with the public halves of the global's keys; nothing else
/// of the GlobalSecrets, and never a private key, leaves the global.
#[tokio::test]
async fn zones_get_only_public_keys_and_token_revocations_of_the_global_secrets() {
    let (global, zone) = (memory(), memory());
    let key = atoll_auth::keys::generate_pem().unwrap();
    for (name, data) in [
        ("user-token-signing-key-1", key.as_bytes()),
        ("zone-token-signing-key-1", key.as_bytes()),
        ("user-token-revocations", b"a".as_slice()),
        ("zone-token-revocations", b"b".as_slice()),
        ("zone-certificate-revocations", b"c".as_slice()),
        ("admin-user-token", b"a.b.c".as_slice()),
        ("atoll-kds-ca", b"ca".as_slice()),
        ("my-own", b"x".as_slice()),
    ] {
        put(&global, global_secret(name, data)).await;
    }
    let stream = down(&global, &zone);
    let expected = [
        "user-token-revocations",
        "user-token-signing-public-key-1",
        "zone-token-revocations",
        "zone-token-signing-public-key-1",
    ];
    eventually("public keys synced", Duration::from_secs(5), || async {
        names(&zone, Kind::GlobalSecret).await == expected
    })
    .await;
    let synced = zone
        .get(&Key::new(
            Kind::GlobalSecret,
            None,
            "user-token-signing-public-key-1",
        ))
        .await
        .unwrap()
        .unwrap();
    let atoll_model::Spec::GlobalSecret(secret) = &synced.resource.spec else {
        panic!("not a GlobalSecret")
    };
    let text = String::from_utf8(secret.bytes().unwrap()).unwrap();
    assert!(text.starts_with("-----BEGIN PUBLIC KEY-----"), "{text}");
    assert!(!text.contains("PRIVATE"));

    // Deleting a key on the global (the end of a rotation) removes its public half in zones.
    global
        .delete(
            &Key::new(Kind::GlobalSecret, None, "user-token-signing-key-1"),
            None,
        )
        .await
        .unwrap();
    eventually("public key removed", Duration::from_secs(5), || async {
        !names(&zone, Kind::GlobalSecret)
            .await
            .contains(&"user-token-signing-public-key-1".to_string())
    })
    .await;
    stream.close().await;
}

#[tokio::test]
async fn full_set_then_changes_reach_the_zone() {
    let (global, zone) = (memory(), memory());
    put(&global, mesh("default")).await;
    put(&global, gateway("edge", 8080)).await;
    put(&global, resource(json!({"type": "Zone", "name": "zone-1"}))).await;
    let stream = down(&global, &zone);
    eventually("gateway synced", Duration::from_secs(5), || async {
        names(&zone, Kind::MeshGateway).await == ["edge"]
    })
    .await;
    assert!(
        names(&zone, Kind::Zone).await.is_empty(),
        "Zone resources stay on the global"
    );
    let synced = zone
        .get(&Key::new(Kind::MeshGateway, Some("default"), "edge"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(synced.resource.meta.labels["kuma.io/origin"], "global");

    let started = Instant::now();
    put(&global, gateway("edge", 9090)).await;
    eventually("update synced", Duration::from_secs(5), || async {
        let got = zone.get(&Key::new(Kind::MeshGateway, Some("default"), "edge")).await.unwrap().unwrap();
        matches!(&got.resource.spec, atoll_model::Spec::MeshGateway(g) if g.conf.as_ref().unwrap().listeners[0].port == 9090)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "push is event-driven: {:?}",
        started.elapsed()
    );

    global
        .delete(&Key::new(Kind::MeshGateway, Some("default"), "edge"), None)
        .await
        .unwrap();
    eventually("delete synced", Duration::from_secs(5), || async {
        names(&zone, Kind::MeshGateway).await.is_empty()
    })
    .await;
    assert!(
        stream.sent_observer.has("ack MeshGateway"),
        "{:?}",
        stream.sent_observer.all()
    );
    stream.close().await;
}

#[tokio::test]
async fn reconnect_converges_exactly_and_an_idle_reconnect_writes_nothing() {
    let (global, zone) = (memory(), memory());
    put(&global, mesh("default")).await;
    for i in 0..5 {
        put(&global, gateway(&format!("gw-{i}"), 8080)).await;
    }
    let local = dataplane("local-dp");
    put(&zone, local.clone()).await;
    let first = down(&global, &zone);
    eventually("initial sync", Duration::from_secs(5), || async {
        names(&zone, Kind::MeshGateway).await.len() == 5
    })
    .await;
    first.close().await;

    // While the zone is away: delete, change and add.
    global
        .delete(&Key::new(Kind::MeshGateway, Some("default"), "gw-0"), None)
        .await
        .unwrap();
    put(&global, gateway("gw-1", 9999)).await;
    put(&global, gateway("gw-new", 8080)).await;
    let second = down(&global, &zone);
    eventually("converged", Duration::from_secs(5), || async {
        names(&zone, Kind::MeshGateway).await == ["gw-1", "gw-2", "gw-3", "gw-4", "gw-new"]
    })
    .await;
    assert_eq!(
        names(&zone, Kind::Dataplane).await,
        ["local-dp"],
        "zone-local resources are not the stream's"
    );
    eventually("acked", Duration::from_secs(5), || async {
        second.sent_observer.has("ack MeshGateway")
    })
    .await;
    second.close().await;

    // Reconnect with nothing changed: every type syncs with zero writes (kumahq/kuma#13592).
    let mut feed = zone.watch();
    let third = down(&global, &zone);
    eventually("all types synced", Duration::from_secs(5), || async {
        atoll_kds::scope::GLOBAL_TO_ZONE
            .iter()
            .all(|k| third.received_observer.has(&format!("synced {k} ")))
    })
    .await;
    let events = third.received_observer.all();
    assert!(
        events
            .iter()
            .filter(|e| e.starts_with("synced"))
            .all(|e| e.ends_with(" 0")),
        "{events:?}"
    );
    assert!(
        feed.try_recv().is_err(),
        "an idle reconnect must not write to the zone store"
    );
    third.close().await;
}

/// Syncs 1000 gateways with `config` and returns the largest message and how many messages
/// the full set took.
async fn full_set_messages(config: SenderConfig) -> (usize, usize) {
    let (global, zone) = (memory(), memory());
    put(&global, mesh("default")).await;
    for i in 0..1000 {
        put(&global, gateway(&format!("gw-{i:04}"), 8080)).await;
    }
    let (stop, stop_rx) = watch::channel(false);
    let (req_tx, req_rx) = mpsc::channel(8);
    let (resp_tx, mut resp_rx) = mpsc::channel(8);
    let (tap_tx, tap_rx) = mpsc::channel(8);
    let sender = Sender::new(
        global.clone(),
        Arc::new(GlobalExport { zone: "z".into() }),
        Arc::new(Recorder::default()),
        config,
    );
    let receiver = Receiver::new(
        zone.clone(),
        Arc::new(ZoneImport { zone: "z".into() }),
        Arc::new(Recorder::default()),
        ReceiverConfig::default(),
    );
    tokio::spawn(sender.run(req_rx, resp_tx, stop_rx.clone()));
    tokio::spawn(receiver.run(tap_rx, req_tx, stop_rx));
    // A tap between the two measures every message.
    let tap = tokio::spawn(async move {
        let (mut largest, mut chunks) = (0, 0);
        while let Some(response) = resp_rx.recv().await {
            largest = largest.max(prost::Message::encoded_len(&response));
            if response.type_url == "MeshGateway"
                && response.system_version_info.starts_with("snapshot")
            {
                chunks += 1;
            }
            if tap_tx.send(response).await.is_err() {
                break;
            }
        }
        (largest, chunks)
    });
    eventually("1000 gateways", Duration::from_secs(20), || async {
        names(&zone, Kind::MeshGateway).await.len() == 1000
    })
    .await;
    let _ = stop.send(true);
    tap.await.unwrap()
}

#[tokio::test]
async fn large_full_sets_travel_in_chunks_under_the_message_limit() {
    let limit = 4 * 1024;
    let (largest, chunks) = full_set_messages(SenderConfig {
        max_message_bytes: limit,
        ..Default::default()
    })
    .await;
    assert!(
        chunks > 1,
        "the full set must be split, got {chunks} chunk(s)"
    );
    assert!(
        largest <= limit + 1024,
        "a message of {largest} bytes exceeds the {limit}-byte budget"
    );
}

#[tokio::test]
async fn full_sets_travel_in_small_chunks_well_under_the_default_limit() {
    // A stream keeps the buffer of its largest message: small chunks keep the global's memory
    // per zone independent of how many resources it holds.
    let (largest, chunks) = full_set_messages(SenderConfig::default()).await;
    assert!(chunks > 4, "1000 gateways in {chunks} message(s)");
    assert!(
        largest <= 17 * 1024,
        "a full-set message of {largest} bytes, with a 3 MiB limit"
    );
}

#[tokio::test]
async fn an_oversized_or_invalid_resource_is_nacked_by_name_and_the_rest_applies() {
    let (global, zone) = (memory(), memory());
    put(&global, mesh("default")).await;
    put(&global, gateway("small", 8080)).await;
    let listeners: Vec<_> = (1..200)
        .map(|p| json!({"port": p, "protocol": "HTTP", "hostname": format!("h{p}.example.com")}))
        .collect();
    put(
        &global,
        resource(json!({
            "type": "MeshGateway", "mesh": "default", "name": "huge",
            "selectors": [{"match": {"kuma.io/service": "huge"}}], "conf": {"listeners": listeners}
        })),
    )
    .await;
    let stream = connect(
        global.clone(),
        Arc::new(GlobalExport {
            zone: "zone-1".into(),
        }),
        zone.clone(),
        Arc::new(ZoneImport {
            zone: "zone-1".into(),
        }),
        SenderConfig::default(),
        ReceiverConfig {
            max_resource_bytes: 4096,
            ..Default::default()
        },
        16,
    );
    eventually(
        "NACK naming the huge gateway",
        Duration::from_secs(5),
        || async { stream.sent_observer.has("nack MeshGateway huge.default") },
    )
    .await;
    assert_eq!(names(&zone, Kind::MeshGateway).await, ["small"]);
    // The stream lives on: later changes still arrive.
    put(&global, gateway("later", 8080)).await;
    eventually("later change", Duration::from_secs(5), || async {
        names(&zone, Kind::MeshGateway)
            .await
            .contains(&"later".to_string())
    })
    .await;
    stream.close().await;
}

#[tokio::test]
async fn a_silent_stream_is_declared_stalled() {
    let zone = memory();
    let (_stop, stop_rx) = watch::channel(false);
    let (req_tx, _req_rx) = mpsc::channel(8);
    // The sending half stays open but nothing is ever sent: connected, yet dead.
    let (_resp_tx, resp_rx) = mpsc::channel(8);
    let liveness = Duration::from_millis(300);
    let receiver = Receiver::new(
        zone,
        Arc::new(ZoneImport { zone: "z".into() }),
        Arc::new(Recorder::default()),
        ReceiverConfig {
            liveness,
            ..Default::default()
        },
    );
    let started = Instant::now();
    let result = receiver.run(resp_rx, req_tx, stop_rx).await;
    assert!(matches!(result, Err(KdsError::Stalled(_))), "{result:?}");
    assert!(started.elapsed() >= liveness);
}

#[tokio::test]
async fn heartbeats_keep_an_idle_stream_alive() {
    let (global, zone) = (memory(), memory());
    let stream = connect(
        global.clone(),
        Arc::new(GlobalExport { zone: "z".into() }),
        zone.clone(),
        Arc::new(ZoneImport { zone: "z".into() }),
        SenderConfig {
            heartbeat: Duration::from_millis(50),
            ..Default::default()
        },
        ReceiverConfig {
            liveness: Duration::from_millis(300),
            ..Default::default()
        },
        16,
    );
    tokio::time::sleep(Duration::from_millis(1000)).await; // idle on purpose: longer than liveness
    assert!(
        !stream.receiver.is_finished(),
        "heartbeats must keep the receiver from declaring a stall"
    );
    stream.close().await;
}

/// A zone whose store is still filling (just restarted on the memory store) holds its full
/// sets back: the global keeps the zone's resources it has, heartbeats keep the stream alive,
/// and only after the hold does the zone's actual state apply.
#[tokio::test]
async fn a_held_sender_sends_no_full_set_until_the_hold_ends() {
    let (global, zone) = (memory(), memory());
    put(&zone, dataplane("dp-1")).await;
    let first = connect(
        zone.clone(),
        Arc::new(ZoneExport { zone: "z".into() }),
        global.clone(),
        Arc::new(GlobalImport { zone: "z".into() }),
        SenderConfig::default(),
        ReceiverConfig::default(),
        16,
    );
    eventually("dp-1 on the global", Duration::from_secs(5), || async {
        names(&global, Kind::Dataplane).await == ["z.dp-1"]
    })
    .await;
    first.close().await;

    // The zone restarts empty; dp-1 registers again only later.
    let restarted = memory();
    let hold = Duration::from_millis(600);
    let again = connect(
        restarted.clone(),
        Arc::new(ZoneExport { zone: "z".into() }),
        global.clone(),
        Arc::new(GlobalImport { zone: "z".into() }),
        SenderConfig {
            heartbeat: Duration::from_millis(50),
            hold: Some(Hold::until(tokio::time::Instant::now() + hold)),
            ..Default::default()
        },
        ReceiverConfig {
            liveness: Duration::from_millis(300),
            ..Default::default()
        },
        16,
    );
    tokio::time::sleep(hold / 2).await;
    assert_eq!(
        names(&global, Kind::Dataplane).await,
        ["z.dp-1"],
        "an empty full set was sent during the hold"
    );
    put(&restarted, dataplane("dp-2")).await;
    eventually(
        "the zone's real state after the hold",
        Duration::from_secs(5),
        || async { names(&global, Kind::Dataplane).await == ["z.dp-2"] },
    )
    .await;
    assert!(
        !again.receiver.is_finished(),
        "the held stream was declared stalled"
    );
    again.close().await;
}

#[tokio::test]
async fn zones_can_only_touch_their_own_resources_on_the_global() {
    let (global, zone1, zone2) = (memory(), memory(), memory());
    put(&zone1, dataplane("dp-1")).await;
    put(&zone2, dataplane("dp-1")).await;
    let up = |zone: &Arc<dyn Store>, name: &str| {
        connect(
            zone.clone(),
            Arc::new(ZoneExport { zone: name.into() }),
            global.clone(),
            Arc::new(GlobalImport { zone: name.into() }),
            SenderConfig::default(),
            ReceiverConfig::default(),
            16,
        )
    };
    let one = up(&zone1, "zone-1");
    let two = up(&zone2, "zone-2");
    eventually(
        "both dataplanes on the global",
        Duration::from_secs(5),
        || async { names(&global, Kind::Dataplane).await == ["zone-1.dp-1", "zone-2.dp-1"] },
    )
    .await;
    let stored = global
        .get(&Key::new(Kind::Dataplane, Some("default"), "zone-1.dp-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.resource.meta.labels["kuma.io/zone"], "zone-1");
    assert_eq!(stored.resource.meta.labels["kuma.io/origin"], "zone");

    // Zone 1 disconnecting removes nothing (kumahq/kuma#9455); deleting its own dataplane
    // removes only its copy.
    one.close().await;
    assert_eq!(names(&global, Kind::Dataplane).await.len(), 2);
    zone1
        .delete(&Key::new(Kind::Dataplane, Some("default"), "dp-1"), None)
        .await
        .unwrap();
    let one = up(&zone1, "zone-1");
    eventually("zone-1's copy removed", Duration::from_secs(5), || async {
        names(&global, Kind::Dataplane).await == ["zone-2.dp-1"]
    })
    .await;
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn ten_thousand_resources_both_ways_at_once_do_not_deadlock() {
    let (global, zone) = (memory(), memory());
    put(&global, mesh("default")).await;
    for i in 0..10_000 {
        put(&global, gateway(&format!("gw-{i:05}"), 8080)).await;
        put(&zone, dataplane(&format!("dp-{i:05}"))).await;
    }
    // Tiny channels: both directions block on each other constantly.
    let downward = connect(
        global.clone(),
        Arc::new(GlobalExport {
            zone: "zone-1".into(),
        }),
        zone.clone(),
        Arc::new(ZoneImport {
            zone: "zone-1".into(),
        }),
        SenderConfig {
            max_message_bytes: 64 * 1024,
            ..Default::default()
        },
        ReceiverConfig::default(),
        1,
    );
    let upward = connect(
        zone.clone(),
        Arc::new(ZoneExport {
            zone: "zone-1".into(),
        }),
        global.clone(),
        Arc::new(GlobalImport {
            zone: "zone-1".into(),
        }),
        SenderConfig {
            max_message_bytes: 64 * 1024,
            ..Default::default()
        },
        ReceiverConfig::default(),
        1,
    );
    eventually(
        "both directions complete",
        Duration::from_secs(120),
        || async {
            names(&zone, Kind::MeshGateway).await.len() == 10_000
                && names(&global, Kind::Dataplane).await.len() == 10_000
        },
    )
    .await;
    downward.close().await;
    upward.close().await;
}

/// Many zones connecting at once share one list per type (as a global does after a restart),
/// while the global keeps writing: each zone still ends with exactly the global's state,
/// including the writes that raced a shared read.
#[tokio::test]
async fn zones_sharing_reads_converge_while_the_global_keeps_writing() {
    let counted = Arc::new(Unavailable {
        inner: memory(),
        failing: false.into(),
        lists: 0.into(),
    });
    let global: Arc<dyn Store> = counted.clone();
    put(&global, mesh("default")).await;
    let reads = atoll_kds::shared_reads::SharedReads::new(global.clone());
    // The ten zones subscribe, held, and are released together, as zones reconnecting to a
    // restarted global come within a second while its first lists are still running.
    let (release, held) = watch::channel(None);
    let mut streams = Vec::new();
    let mut zones = Vec::new();
    for z in 0..10 {
        let zone = memory();
        let hold = Some(Hold(held.clone()));
        streams.push(down_sharing(&reads, &zone, &format!("zone-{z}"), hold));
        zones.push(zone);
    }
    let types = atoll_kds::scope::GLOBAL_TO_ZONE.len();
    eventually("every zone subscribed", Duration::from_secs(5), || async {
        reads.clock() >= (10 * types) as u64
    })
    .await;
    let writer = {
        let global = global.clone();
        tokio::spawn(async move {
            for i in 0..300u32 {
                put(&global, gateway(&format!("gw-{}", i % 100), 8000 + i)).await;
                tokio::task::yield_now().await;
            }
        })
    };
    release.send(Some(tokio::time::Instant::now())).unwrap();
    writer.await.unwrap();
    let want = ports(&global).await;
    assert_eq!(want.len(), 100);
    for (z, zone) in zones.iter().enumerate() {
        eventually(
            &format!("zone-{z} holds the global's gateways"),
            Duration::from_secs(10),
            || async { ports(zone).await == want },
        )
        .await;
    }
    // Ten zones' full sets came from far fewer than ten lists per type.
    let lists = counted.lists.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        lists < 10 * types / 2,
        "{lists} lists for 10 zones and {types} types"
    );
    for stream in streams {
        stream.close().await;
    }
}

/// Each gateway's name and first listener port.
async fn ports(store: &Arc<dyn Store>) -> Vec<(String, u32)> {
    let page = store
        .list(&ListQuery {
            kind: Some(Kind::MeshGateway),
            ..Default::default()
        })
        .await
        .unwrap();
    page.items
        .iter()
        .filter_map(|s| match &s.resource.spec {
            atoll_model::Spec::MeshGateway(g) => Some((
                s.resource.name().to_string(),
                g.conf.as_ref()?.listeners.first()?.port,
            )),
            _ => None,
        })
        .collect()
}

/// A memory store whose lists and reads fail while `failing` is set, as a PostgreSQL pool
/// that times out does, and that counts the lists it answers.
struct Unavailable {
    inner: Arc<dyn Store>,
    failing: std::sync::atomic::AtomicBool,
    lists: std::sync::atomic::AtomicUsize,
}

impl Unavailable {
    fn check(&self) -> Result<(), atoll_store::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(atoll_store::StoreError::Unavailable(
                "pool timed out".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl atoll_store::Leadership for Unavailable {
    async fn try_lead(
        &self,
        name: &str,
    ) -> Result<Option<atoll_store::LeaderGuard>, atoll_store::StoreError> {
        self.inner.try_lead(name).await
    }
}

#[async_trait::async_trait]
impl Store for Unavailable {
    async fn get(&self, key: &Key) -> Result<Option<atoll_store::Stored>, atoll_store::StoreError> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn list(&self, query: &ListQuery) -> Result<atoll_store::Page, atoll_store::StoreError> {
        self.check()?;
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.list(query).await
    }
    async fn put(
        &self,
        resource: Resource,
        expect: Precondition,
    ) -> Result<atoll_store::PutOutcome, atoll_store::StoreError> {
        self.inner.put(resource, expect).await
    }
    async fn delete(
        &self,
        key: &Key,
        expect: Option<u64>,
    ) -> Result<atoll_store::Stored, atoll_store::StoreError> {
        self.inner.delete(key, expect).await
    }
    fn watch(&self) -> tokio::sync::broadcast::Receiver<atoll_store::Event> {
        self.inner.watch()
    }
    async fn ping(&self) -> Result<(), atoll_store::StoreError> {
        self.check()
    }
}

/// A sender that cannot read its store keeps the stream (heartbeats go on) and sends the full
/// set and the changes it missed once the store answers again: a pool timeout on a busy
/// global used to end the stream and send the zone into its reconnect backoff.
#[tokio::test]
async fn a_store_that_cannot_be_read_delays_the_sync_without_ending_the_stream() {
    let inner = memory();
    put(&inner, mesh("default")).await;
    put(&inner, gateway("edge", 8080)).await;
    let flaky = Arc::new(Unavailable {
        inner: inner.clone(),
        failing: true.into(),
        lists: 0.into(),
    });
    let global: Arc<dyn Store> = flaky.clone();
    let zone = memory();
    let stream = down(&global, &zone);
    // Long enough for several failed reads and their retries.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(names(&zone, Kind::MeshGateway).await.is_empty());
    assert!(
        !stream.sender.is_finished(),
        "the stream ended on a store error"
    );
    put(&inner, gateway("late", 9090)).await;
    flaky
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("both gateways synced", Duration::from_secs(10), || async {
        names(&zone, Kind::MeshGateway).await == ["edge", "late"]
    })
    .await;
    stream.close().await;
}

/// The race shared reads must survive: zone B subscribes, zone A's full set starts a read,
/// a write lands, then B's full set joins A's read, which predates the write. B must still
/// get the write, from the key its feed reported, right after the full set.
#[tokio::test]
async fn a_write_that_races_a_joined_read_still_reaches_the_zone() {
    let global = memory();
    put(&global, mesh("default")).await;
    put(&global, gateway("edge", 8080)).await;
    let reads = atoll_kds::shared_reads::SharedReads::new(global.clone());
    let (release, held) = watch::channel(None);
    let (zone_a, zone_b) = (memory(), memory());
    let b = down_sharing(&reads, &zone_b, "zone-b", Some(Hold(held)));
    // B has subscribed to every type (a ticket each) before A's read starts.
    let kinds = atoll_kds::scope::GLOBAL_TO_ZONE.len() as u64;
    eventually("zone B subscribed", Duration::from_secs(5), || async {
        reads.clock() >= kinds
    })
    .await;
    let a = down_sharing(&reads, &zone_a, "zone-a", None);
    eventually("zone A has the gateway", Duration::from_secs(5), || async {
        ports(&zone_a).await == [("edge".to_string(), 8080)]
    })
    .await;
    put(&global, gateway("edge", 9090)).await;
    release.send(Some(tokio::time::Instant::now())).unwrap();
    eventually(
        "zone B has the newer gateway",
        Duration::from_secs(5),
        || async { ports(&zone_b).await == [("edge".to_string(), 9090)] },
    )
    .await;
    a.close().await;
    b.close().await;
}
