//! MeshCircuitBreaker and MeshHealthCheck with real Envoys and misbehaving backends, in a
//! mesh with mTLS (so health checks travel over the cluster's mesh mTLS to the destination
//! sidecar's inbound, as requests do): outlier detection ejects an instance that answers
//! 503, an instance whose health path fails gets no traffic until it recovers, and connection
//! limits turn the request or connection beyond them away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::grpc::{ServingStatus, health_check, health_server};
use atoll_e2e::process::http_call;
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);
const MESH: &str = "m";

fn apply(global: &Global, yaml: &str) {
    global.apply(yaml).unwrap_or_else(|e| panic!("{e:#}"));
}

fn synced(zone: &Zone, path: &str) {
    zone.wait_for(path, DEADLINE)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// A global, a zone and mesh `m` with builtin mTLS (and the allow-all permission every new
/// mesh gets).
fn mesh() -> (Global, Zone) {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(
        &global,
        "type: Mesh\nname: m\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
    );
    synced(&zone, "/meshes/m/secrets/ca-builtin-ca-1");
    synced(&zone, "/meshes/m/meshtrafficpermissions/allow-all-m");
    (global, zone)
}

/// A sidecar offering `service` (speaking `protocol`) in front of `app`, with outbounds as
/// (port, service); waits until its inbound and outbounds listen.
fn sidecar(
    zone: &Zone,
    name: &str,
    service: &str,
    protocol: &str,
    app: u16,
    outbounds: &[(u16, &str)],
) -> Dataplane {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let mut yaml = format!(
        "type: Dataplane\nmesh: {MESH}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {}\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: {protocol}\n",
        app
    );
    if !outbounds.is_empty() {
        yaml.push_str("  outbound:\n");
    }
    for (port, to) in outbounds {
        yaml.push_str(&format!(
            "  - port: {port}\n    tags:\n      kuma.io/service: {to}\n"
        ));
    }
    let mut dp = Dataplane::start(zone, name, &yaml, admin)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    dp.wait_listener(inbound).unwrap();
    for (port, _) in outbounds {
        dp.wait_listener(*port).unwrap();
    }
    dp
}

/// Status and the name of the application that answered (backends answer `<name> <path>`;
/// Envoy's own answers name no backend).
fn call(outbound: u16, path: &str) -> (u16, String) {
    match http_call(outbound, "echo", "GET", path, None) {
        Ok((status, body)) => (status, body),
        Err(e) => (0, format!("{e}")),
    }
}

fn who(outbound: u16, path: &str) -> String {
    let (status, body) = call(outbound, path);
    let name = body.split(' ').next().unwrap_or_default();
    if ["good", "bad", "sick", "slow"].contains(&name) {
        name.to_string()
    } else {
        format!("envoy {status}: {body}")
    }
}

/// Waits until the client's Envoy holds a cluster configuration containing `marker`.
fn configured(client: &Dataplane, marker: &str) {
    eventually(
        &format!("{marker} in the client's configuration"),
        DEADLINE,
        || client.config_dump().contains(marker),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn tally(outbound: u16, requests: usize) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..requests {
        *counts.entry(who(outbound, &format!("/r{i}"))).or_default() += 1;
    }
    counts
}

#[test]
fn outlier_detection_ejects_the_instance_answering_503() {
    let (global, zone) = mesh();
    let good = Backend::start("good").unwrap();
    let bad = Backend::start("bad").unwrap();
    bad.set_status(503);
    let _echo_1 = sidecar(&zone, "echo-1", "echo", "http", good.port, &[]);
    let _echo_2 = sidecar(&zone, "echo-2", "echo", "http", bad.port, &[]);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let client = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client_app.port,
        &[(outbound, "echo")],
    );
    eventually("both instances answer", DEADLINE, || {
        let seen = tally(outbound, 6);
        seen.contains_key("good") && seen.contains_key("bad")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    // Without the policy, about half the requests fail.
    let before = tally(outbound, 40);
    assert!(before.get("bad").copied().unwrap_or(0) >= 10, "{before:?}");

    apply(
        &global,
        "type: MeshCircuitBreaker
mesh: m
name: eject-failing
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: echo
    default:
      outlierDetection:
        interval: 1s
        baseEjectionTime: 5m
        maxEjectionPercent: 50
        detectors:
          totalFailures:
            consecutive: 3
",
    );
    synced(&zone, "/meshes/m/meshcircuitbreakers/eject-failing");
    configured(&client, "\"consecutive_5xx\": 3");
    // A few requests reach the bad instance three times in a row (per instance) and eject it.
    eventually("the bad instance ejected", DEADLINE, || {
        let _ = who(outbound, "/eject");
        client
            .stat("cluster.echo.outlier_detection.ejections_enforced_consecutive_5xx")
            .is_some_and(|n| n >= 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    let after = tally(outbound, 50);
    let good_count = after.get("good").copied().unwrap_or(0);
    assert!(
        good_count >= 49,
        "nearly all to the good instance: {after:?}"
    );
    assert_eq!(
        client.stat("cluster.echo.outlier_detection.ejections_active"),
        Some(1)
    );
}

#[test]
fn an_instance_failing_its_health_check_gets_no_traffic_until_it_recovers() {
    let (global, zone) = mesh();
    let good = Backend::start("good").unwrap();
    let sick = Backend::start("sick").unwrap();
    // Its application answers requests, but reports itself unhealthy.
    sick.set_health(503);
    let _echo_1 = sidecar(&zone, "echo-1", "echo", "http", good.port, &[]);
    let _echo_2 = sidecar(&zone, "echo-2", "echo", "http", sick.port, &[]);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let client = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client_app.port,
        &[(outbound, "echo")],
    );
    eventually("both instances answer", DEADLINE, || {
        let seen = tally(outbound, 6);
        seen.contains_key("good") && seen.contains_key("sick")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));

    apply(
        &global,
        "type: MeshHealthCheck
mesh: m
name: echo-health
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: echo
    default:
      interval: 1s
      noTrafficInterval: 1s
      timeout: 2s
      unhealthyThreshold: 1
      healthyThreshold: 1
      http:
        path: /health
        requestHeadersToAdd:
          set:
          - name: x-checked-by
            value: atoll
",
    );
    synced(&zone, "/meshes/m/meshhealthchecks/echo-health");
    configured(&client, "\"path\": \"/health\"");
    eventually("one healthy instance of two", DEADLINE, || {
        client.stat("cluster.echo.membership_total") == Some(2)
            && client.stat("cluster.echo.membership_healthy") == Some(1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    // The checks went through the mesh mTLS: the good instance passed (had its TLS failed,
    // both would be unhealthy and Envoy's panic mode would send traffic to both).
    assert!(
        client
            .stat("cluster.echo.health_check.success")
            .is_some_and(|n| n >= 1)
    );
    let sick_before = sick.received();
    let after = tally(outbound, 40);
    assert_eq!(after.get("good"), Some(&40), "{after:?}");
    // Only health checks reached the sick application meanwhile, no request.
    let during = sick.received() - sick_before;
    assert!(during <= 8, "{during} requests reached the sick instance");

    sick.set_health(200);
    eventually(
        "the recovered instance gets traffic again",
        DEADLINE,
        || tally(outbound, 6).contains_key("sick"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    assert_eq!(client.stat("cluster.echo.membership_healthy"), Some(2));
}

/// An HTTP request to `path` on `port` in a thread, for requests that must overlap.
fn in_background(port: u16, path: &str) -> std::thread::JoinHandle<(u16, String)> {
    let path = path.to_string();
    std::thread::spawn(move || call(port, &path))
}

/// Reads from `stream` until what arrived contains `needle`.
fn read_until(stream: &mut TcpStream, needle: &str) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => panic!(
                "the connection ended before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

#[test]
fn connection_limits_turn_away_what_is_beyond_them() {
    let (global, zone) = mesh();
    let slow = Backend::start("slow").unwrap();
    let _echo = sidecar(&zone, "echo-1", "echo", "http", slow.port, &[]);
    let store_app = Backend::start("store").unwrap();
    let _store = sidecar(&zone, "store-1", "store", "tcp", store_app.port, &[]);
    let client_app = Backend::start("client").unwrap();
    let (http_out, tcp_out) = (free_port().unwrap(), free_port().unwrap());
    let client = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client_app.port,
        &[(http_out, "echo"), (tcp_out, "store")],
    );
    eventually("echo answers", DEADLINE, || who(http_out, "/") == "slow")
        .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));

    apply(
        &global,
        "type: MeshCircuitBreaker
mesh: m
name: one-at-a-time
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionLimits:
        maxConnections: 1
        maxPendingRequests: 1
        maxRequests: 1
",
    );
    synced(&zone, "/meshes/m/meshcircuitbreakers/one-at-a-time");
    configured(&client, "\"track_remaining\": true");
    // Wait for both clusters to have it (one update carries both, but be sure).
    eventually("both clusters limited", DEADLINE, || {
        client
            .config_dump()
            .matches("\"track_remaining\": true")
            .count()
            >= 2
    })
    .unwrap();

    // HTTP: one request in flight on the one connection, one waiting for it (the one
    // pending request allowed), and a third overflows at once with Envoy's 503.
    let received = slow.received();
    let first = in_background(http_out, "/slow/4000");
    eventually("the first request at the application", DEADLINE, || {
        slow.received() > received
    })
    .unwrap();
    let second = in_background(http_out, "/slow/0");
    eventually("the second request waiting", DEADLINE, || {
        client.stat("cluster.echo.upstream_rq_pending_active") == Some(1)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = call(http_out, "/third");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("overflow"), "Envoy's overflow answer: {body}");
    assert_eq!(first.join().unwrap().0, 200);
    assert_eq!(second.join().unwrap().0, 200);
    assert!(
        client
            .stat("cluster.echo.upstream_rq_pending_overflow")
            .is_some_and(|n| n >= 1)
    );
    // The waiting request could not open a second connection.
    assert!(
        client
            .stat("cluster.echo.upstream_cx_overflow")
            .is_some_and(|n| n >= 1)
    );

    // TCP: with one connection allowed, a second concurrent connection is closed at once.
    let mut held = TcpStream::connect(("127.0.0.1", tcp_out)).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(held, "GET /held HTTP/1.1\r\nHost: store\r\n\r\n").unwrap();
    read_until(&mut held, "store /held");
    let mut second = TcpStream::connect(("127.0.0.1", tcp_out)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = write!(second, "GET /second HTTP/1.1\r\nHost: store\r\n\r\n");
    let mut buffer = Vec::new();
    let _ = second.read_to_end(&mut buffer);
    assert!(
        !String::from_utf8_lossy(&buffer).contains("store /second"),
        "the second connection must not reach the application"
    );
    assert!(
        client
            .stat("cluster.store.upstream_cx_overflow")
            .is_some_and(|n| n >= 1)
    );
    // The held connection still works.
    write!(held, "GET /again HTTP/1.1\r\nHost: store\r\n\r\n").unwrap();
    read_until(&mut held, "store /again");
}

/// gRPC between sidecars (HTTP/2 end to end), and a MeshHealthCheck `grpc` check: the
/// instance whose health service says NOT_SERVING gets no traffic.
#[test]
fn grpc_travels_the_mesh_and_a_grpc_health_check_ejects_the_unhealthy_instance() {
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (global, zone) = mesh();
    let healthy = health_server(&runtime, "svc", ServingStatus::Serving).unwrap();
    let failing = health_server(&runtime, "svc", ServingStatus::NotServing).unwrap();
    let _a = sidecar(&zone, "grpc-1", "checked", "grpc", healthy, &[]);
    let _b = sidecar(&zone, "grpc-2", "checked", "grpc", failing, &[]);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let client = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client_app.port,
        &[(outbound, "checked")],
    );
    let statuses = |n: usize| -> Vec<Result<i32, String>> {
        (0..n)
            .map(|_| health_check(&runtime, outbound, "svc"))
            .collect()
    };
    eventually(
        "both instances answer gRPC through the mesh",
        DEADLINE,
        || {
            let seen = statuses(10);
            seen.contains(&Ok(SERVING)) && seen.contains(&Ok(NOT_SERVING))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", statuses(4), client.config_dump()));
    apply(
        &global,
        "type: MeshHealthCheck
mesh: m
name: grpc-checks
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: checked
    default:
      interval: 1s
      timeout: 1s
      unhealthyThreshold: 1
      healthyThreshold: 1
      noTrafficInterval: 1s
      grpc:
        serviceName: svc
",
    );
    configured(&client, "grpc_health_check");
    eventually("only the serving instance gets traffic", DEADLINE, || {
        statuses(10).iter().all(|s| *s == Ok(SERVING))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", statuses(6)));
}

/// MeshCircuitBreaker `from[]`: the limits go on the destination sidecar's cluster to its
/// application, so callers that each open their own connections are still held to them.
#[test]
fn inbound_connection_limits_hold_whoever_calls() {
    let (global, zone) = mesh();
    let slow = Backend::start("slow").unwrap();
    let echo = sidecar(&zone, "echo-1", "echo", "http", slow.port, &[]);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let client = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client_app.port,
        &[(outbound, "echo")],
    );
    eventually("echo answers", DEADLINE, || who(outbound, "/") == "slow")
        .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    apply(
        &global,
        "type: MeshCircuitBreaker
mesh: m
name: inbound-one-at-a-time
spec:
  targetRef:
    kind: MeshService
    name: echo
  from:
  - targetRef:
      kind: Mesh
    default:
      connectionLimits:
        maxConnections: 1
        maxPendingRequests: 1
        maxRequests: 1
",
    );
    configured(&echo, "\"track_remaining\": true");
    // Envoy writes the cluster `localhost:<port>` as `localhost_<port>` in stat names.
    let local = format!("cluster.localhost_{}", slow.port);
    let received = slow.received();
    let first = in_background(outbound, "/slow/4000");
    eventually("the first request at the application", DEADLINE, || {
        slow.received() > received
    })
    .unwrap();
    let second = in_background(outbound, "/slow/0");
    eventually(
        "the second request waiting at echo's sidecar",
        DEADLINE,
        || echo.stat(&format!("{local}.upstream_rq_pending_active")) == Some(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = call(outbound, "/third");
    assert_eq!(status, 503, "{body}");
    assert_eq!(first.join().unwrap().0, 200);
    assert_eq!(second.join().unwrap().0, 200);
    assert!(
        echo.stat(&format!("{local}.upstream_rq_pending_overflow"))
            .is_some_and(|n| n >= 1),
        "the overflow happened at echo's inbound"
    );
    assert_eq!(
        client.stat("cluster.echo.upstream_rq_pending_overflow"),
        Some(0),
        "not at the caller"
    );
}
