//! xDS benchmarks, printed as figures (`cargo bench -p atoll-zone --bench xds`):
//!
//! 1. Generation: one gateway proxy with 100 listeners × 10 hostnames × 10 routes.
//! 2. Token verification: the cost of checking one data plane token (what every registration
//!    and every ADS connect pays).
//! 3. Fan-out: 1,000 ADS clients (state of the world, each on its own TLS connection, on
//!    loopback; `atoll_e2e::ads`) connected to a DP server; a new instance of a service that
//!    10 of them call is written to the store. Time from the write until those 10 received
//!    their new endpoints; that none of the other 990 received anything is asserted. Run
//!    twice in one process: without data plane tokens, then with a token per client, side by
//!    side. (The mTLS mesh at 10,000 proxies is `bench-zone-scale` in `atoll-e2e`.)
//!
//! Environment: `ATOLL_BENCH_CLIENTS` (1000), `ATOLL_BENCH_ROUNDS` (50).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use atoll_e2e::ads::{self, Seen};
use atoll_model::Resource;
use atoll_store::{MemoryStore, Precondition, Store};
use atoll_zone::proxy::build::build;
use atoll_zone::proxy::hub::Hub;
use atoll_zone::proxy::identity::Identities;
use atoll_zone::world::World;
use atoll_zone::xds::snapshot::LISTENER;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn parse(yaml: &str) -> Vec<Resource> {
    atoll_model::parse_documents(yaml)
        .into_iter()
        .map(|d| d.outcome.expect("valid benchmark resource"))
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn generation() {
    let mut yaml = String::from(
        "type: Mesh\nname: default\n---\ntype: MeshGateway\nmesh: default\nname: big\nselectors:\n- match:\n    kuma.io/service: big\nconf:\n  listeners:\n",
    );
    for port in 0..100 {
        for host in 0..10 {
            yaml.push_str(&format!(
                "  - port: {}\n    protocol: HTTP\n    hostname: h{host}.p{port}.example.com\n",
                10000 + port
            ));
        }
    }
    for port in 0..100 {
        for host in 0..10 {
            yaml.push_str(&format!(
                "---\ntype: MeshHTTPRoute\nmesh: default\nname: r-{port}-{host}\nspec:\n  targetRef:\n    kind: MeshGateway\n    name: big\n  to:\n  - targetRef:\n      kind: Mesh\n    hostnames: [h{host}.p{port}.example.com]\n    rules:\n"
            ));
            for route in 0..10 {
                yaml.push_str(&format!(
                    "    - matches:\n      - path:\n          type: PathPrefix\n          value: /r{route}\n      default:\n        backendRefs:\n        - kind: MeshService\n          name: svc-{route}\n"
                ));
            }
        }
    }
    yaml.push_str("---\ntype: Dataplane\nmesh: default\nname: big-1\nnetworking:\n  address: 10.0.0.1\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: big\n");
    for svc in 0..10 {
        yaml.push_str(&format!("---\ntype: Dataplane\nmesh: default\nname: svc-{svc}-1\nnetworking:\n  address: 10.0.1.{svc}\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: svc-{svc}\n"));
    }
    let mut world = World::default();
    for r in parse(&yaml) {
        let meta = r.meta.clone();
        world.apply(r.kind(), meta.mesh.as_deref(), &meta.name, Some(&r));
    }
    let proxy = ("default".to_string(), "big-1".to_string());
    let mut times = Vec::new();
    let mut listeners = 0;
    let mut bytes = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let built = build(
            &world,
            None,
            &mut Identities::default(),
            &proxy,
            Instant::now(),
        )
        .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        listeners = built.snapshot.of(LISTENER).map_or(0, |s| s.resources.len());
        bytes = built
            .snapshot
            .types
            .values()
            .flat_map(|t| t.resources.values())
            .map(|r| r.any.value.len())
            .sum::<usize>();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "generation: gateway with 100 listeners x 10 hostnames x 10 routes ({listeners} Envoy listeners, {} KiB encoded): median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs",
        bytes / 1024,
        percentile(&times, 0.5),
        times[0],
        times[times.len() - 1],
        times.len()
    );
}

fn dataplane(name: &str, address: &str, service: &str, outbound: Option<&str>) -> Resource {
    let outbound = outbound
        .map(|o| format!("  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: {o}\n"))
        .unwrap_or_default();
    parse(&format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: {address}\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: http\n{outbound}"
    ))
    .remove(0)
}

/// A keyring holding one signing key for mesh `default`.
fn keyring() -> atoll_auth::Keyring {
    let pem = atoll_auth::keys::generate_pem().unwrap();
    atoll_auth::Keyring::build([atoll_auth::keyring::SecretEntry {
        kind: atoll_model::Kind::Secret,
        mesh: Some("default"),
        name: "dataplane-token-signing-key-default-1",
        data: pem.as_bytes(),
    }])
}

fn token_for(keyring: &atoll_auth::Keyring, name: &str, service: &str) -> String {
    let claims = atoll_auth::DataplaneClaims {
        name: name.into(),
        mesh: "default".into(),
        tags: [("kuma.io/service".to_string(), vec![service.to_string()])].into(),
        proxy_type: atoll_auth::ProxyType::Dataplane,
        standard: atoll_auth::Standard::new(atoll_auth::unix_now(), Duration::from_secs(3600)),
    };
    keyring
        .issue(&atoll_auth::Purpose::Dataplane("default".into()), &claims)
        .unwrap()
}

fn token_verification() {
    let keyring = keyring();
    let token = token_for(&keyring, "web-1", "web");
    let rounds = 2000;
    let now = atoll_auth::unix_now();
    let started = Instant::now();
    for _ in 0..rounds {
        keyring.verify_dataplane(&token, now).unwrap();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!(
        "tokens: one data plane token verified (RS256, 2048-bit key) in {per:.1} µs on average over {rounds} verifications"
    );
}

async fn fan_out(tokens: bool) {
    let label = if tokens {
        "with tokens"
    } else {
        "without tokens"
    };
    let clients = env_number("ATOLL_BENCH_CLIENTS", 1000);
    let rounds = env_number("ATOLL_BENCH_ROUNDS", 50);
    let per_service = 10;
    let services = clients / per_service;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for r in parse("type: Mesh\nname: default\n") {
        store.put(r, Precondition::Any).await.unwrap();
    }
    // Each client calls svc-(i / 10); each service has one instance to begin with.
    for s in 0..services {
        store
            .put(
                dataplane(&format!("svc-{s}-0"), "10.1.0.1", &format!("svc-{s}"), None),
                Precondition::Any,
            )
            .await
            .unwrap();
    }
    for i in 0..clients {
        store
            .put(
                dataplane(
                    &format!("client-{i}"),
                    "10.2.0.1",
                    &format!("client-{i}"),
                    Some(&format!("svc-{}", i / per_service)),
                ),
                Precondition::Any,
            )
            .await
            .unwrap();
    }
    let (hub, commands) = Hub::new();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let world = atoll_zone::world::spawn(store.clone(), "zone-1", Default::default(), stop.clone());
    tokio::spawn(atoll_zone::proxy::reconciler::run(
        world,
        atoll_zone::external::status::board().0,
        hub.clone(),
        commands,
        stop.clone(),
    ));
    let ca = atoll_tls::Authority::generate("bench").unwrap();
    let (cert, key) = ca.issue_server(&["localhost".into()]).unwrap();
    let tls = atoll_tls::server_config(&cert, &key, "bench").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let keyring = keyring();
    let auth = atoll_zone::dp_server::authn::Authenticator {
        credentials: atoll_auth::Credentials::fixed(keyring.clone()),
        dataplanes: if tokens {
            atoll_zone::dp_server::authn::DpAuthn::DpToken
        } else {
            atoll_zone::dp_server::authn::DpAuthn::None
        },
        zone_proxies: atoll_zone::dp_server::authn::ZoneProxyAuthn::ZoneToken,
        zone: "zone-1".into(),
    };
    let (_, tables) = tokio::sync::watch::channel(Arc::new(Default::default()));
    let (advertise, _) = tokio::sync::watch::channel(None);
    atoll_zone::dp_server::serve(
        addr,
        atoll_zone::dp_server::DpServer {
            tls,
            store: store.clone(),
            hub: hub.clone(),
            auth: auth.clone(),
            tables: atoll_zone::crosszone::stream::TableServer {
                auth,
                ingress: atoll_zone::crosszone::stream::RoleFeed { tables, advertise },
                egress: None,
                stop: stop.clone(),
            },
            start_hold: None,
            limits: atoll_api::Limits {
                max_connections: 20_000,
                ..atoll_api::Limits::new("dp-server")
            },
        },
        stop,
    )
    .await
    .unwrap();

    let epoch = Instant::now();
    let seen: Vec<Arc<Seen>> = (0..clients).map(|_| Arc::new(Seen::default())).collect();
    // Issued before the clock starts: operators issue tokens ahead of time, the zone only
    // verifies them.
    let tokens: Vec<Option<String>> = (0..clients)
        .map(|i| {
            let name = format!("client-{i}");
            tokens.then(|| token_for(&keyring, &name, &name))
        })
        .collect();
    let connect = Instant::now();
    for ((i, s), token) in seen.iter().enumerate().zip(tokens) {
        // One TLS connection per client, as every Envoy has its own.
        let channel = ads::connect(port, ca.cert_pem().as_bytes())
            .await
            .expect("connect to the DP server");
        tokio::spawn(ads::run(
            channel,
            format!("default.client-{i}"),
            token,
            s.clone(),
            epoch,
        ));
    }
    // Every client has its listeners, clusters and endpoints.
    while seen
        .iter()
        .any(|s| s.endpoints.load(Ordering::Relaxed) == 0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            connect.elapsed() < Duration::from_secs(120),
            "clients did not get their configuration"
        );
    }
    println!(
        "fan-out ({label}): {clients} ADS clients connected and configured in {:.0} ms",
        connect.elapsed().as_secs_f64() * 1000.0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut latencies = Vec::new();
    let mut others_pushed = 0u64;
    for round in 0..rounds {
        let service = round % services;
        let affected: Vec<usize> = (service * per_service..(service + 1) * per_service).collect();
        let before: Vec<u64> = seen
            .iter()
            .map(|s| s.responses.load(Ordering::Relaxed))
            .collect();
        let before_eds: BTreeMap<usize, u64> = affected
            .iter()
            .map(|&i| (i, seen[i].endpoints.load(Ordering::Relaxed)))
            .collect();
        let written = epoch.elapsed().as_nanos() as u64;
        store
            .put(
                dataplane(
                    &format!("svc-{service}-extra-{round}"),
                    "10.1.0.2",
                    &format!("svc-{service}"),
                    None,
                ),
                Precondition::Any,
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while affected
            .iter()
            .any(|&i| seen[i].endpoints.load(Ordering::Relaxed) == before_eds[&i])
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: the affected clients did not get the change; client insight: {:?}; seen endpoints {}",
                hub.insight(&("default".into(), format!("client-{}", affected[0]))),
                seen[affected[0]].endpoints.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let last = affected
            .iter()
            .map(|&i| seen[i].last_eds_nanos.load(Ordering::Relaxed))
            .max()
            .unwrap_or(written);
        latencies.push((last.saturating_sub(written)) as f64 / 1e6);
        // Give stray pushes a moment to arrive before counting them.
        tokio::time::sleep(Duration::from_millis(20)).await;
        others_pushed += seen
            .iter()
            .enumerate()
            .filter(|(i, _)| !affected.contains(i))
            .map(|(i, s)| s.responses.load(Ordering::Relaxed) - before[i])
            .sum::<u64>();
    }
    latencies.sort_by(f64::total_cmp);
    // A property, not a figure: a change is pushed to the proxies it concerns and no other.
    assert_eq!(
        others_pushed, 0,
        "fan-out ({label}): responses pushed to clients the change does not concern"
    );
    println!(
        "fan-out ({label}): change affecting {per_service} of {clients} clients, {rounds} rounds: store write to the last affected client's new endpoints p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; responses pushed to unaffected clients: {others_pushed}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    if let Some(insight) = hub.insight(&("default".into(), "client-0".into())) {
        println!(
            "fan-out ({label}): client-0 insight: {} responses, acked {:?}",
            insight.responses_sent,
            insight.acked.keys().collect::<Vec<_>>()
        );
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    generation();
    token_verification();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(fan_out(false));
    runtime.block_on(fan_out(true));
}
