//! Cross-zone traffic end to end: one global, two zones each with an in-process ingress, real
//! Envoy sidecars (run by `atoll-dp`) and real HTTP backends.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::faults::proxy::LinkProxy;
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::ingress::Ingress;
use atoll_e2e::process::{http_call, http_get};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);
const SNI: &str = "backend.any.secure.atoll";

fn apply(global: &Global, yaml: &str) {
    global.apply(yaml).unwrap_or_else(|e| panic!("{e:#}"));
}

fn sidecar(
    zone: &Zone,
    name: &str,
    service: &str,
    app: &Backend,
    outbound: Option<u16>,
) -> (Dataplane, u16) {
    let tags: &[(&str, &str)] = &[("kuma.io/service", "backend")];
    let outbounds: Vec<(u16, &[(&str, &str)])> =
        outbound.map(|port| (port, tags)).into_iter().collect();
    Dataplane::start_sidecar(zone, "secure", name, service, app.port, &outbounds, &[])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()))
}

/// Waits until `mesh`'s CA, generated on the global, has reached every zone.
fn wait_for_mesh_ca(zones: &[&Zone], mesh: &str) {
    for zone in zones {
        eventually(&format!("{mesh}'s CA in {}", zone.name), DEADLINE, || {
            http_get(
                zone.http_port,
                &format!("/meshes/{mesh}/secrets/ca-builtin-ca-1"),
            )
            .is_ok_and(|(c, _)| c == 200)
        })
        .unwrap();
    }
}

/// Who answered a call to `backend` through the client's outbound.
fn call(outbound: u16) -> Option<String> {
    http_call(outbound, "backend", "GET", "/x", None)
        .ok()
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, body)| body.split(' ').next().map(str::to_string))
}

fn ingress_connections(zone: &Zone) -> u64 {
    let (_, metrics) = http_get(zone.diagnostics_port, "/metrics").unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("atoll_ingress_connections_total") && l.contains(SNI))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_service_in_another_zone_is_reached_through_its_ingress() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone1 = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    // zone-2 reaches the global through a proxy the test can cut.
    let kds =
        LinkProxy::start(&[format!("127.0.0.1:{}", global.kds_port).parse().unwrap()]).unwrap();
    let zone2 = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            ingress: true,
            kds_port: Some(kds.port),
            ..Default::default()
        },
    )
    .unwrap();
    apply(
        &global,
        "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
",
    );
    wait_for_mesh_ca(&[&zone1, &zone2], "secure");

    // `backend` exists only in zone-2.
    let backend2 = Backend::start("zone-2").unwrap();
    let (mut backend2_dp, _) = sidecar(&zone2, "backend-z2", "backend", &backend2, None);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (mut client, _) = sidecar(&zone1, "client-1", "client", &client_app, Some(outbound));
    client.wait_listener(outbound).unwrap();

    let took = eventually(
        "zone-1's client reaching zone-2's backend",
        DEADLINE,
        || call(outbound).as_deref() == Some("zone-2"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.config_dump(), zone1.log()));
    println!("cross-zone route ready after {took:?}");
    assert!(
        ingress_connections(&zone2) >= 1,
        "zone-2's ingress counted no connection for {SNI}"
    );

    // The ingress never terminates TLS: through it, a client sees the destination sidecar's
    // certificate, issued from the mesh CA for the service.
    let ingress2 = zone2.ingress_port.unwrap();
    let s_client = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{ingress2} -servername {SNI} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"
        ))
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&s_client.stdout);
    assert!(
        san.contains("URI:spiffe://secure/backend"),
        "certificate seen through the ingress: {san}"
    );

    // With `backend` in both zones, traffic reaches both.
    let backend1 = Backend::start("zone-1").unwrap();
    let (mut backend1_dp, _) = sidecar(&zone1, "backend-z1", "backend", &backend1, None);
    let mut seen = BTreeSet::new();
    eventually("both zones answering", DEADLINE, || {
        if let Some(who) = call(outbound) {
            seen.insert(who);
        }
        seen.len() == 2
    })
    .unwrap_or_else(|e| panic!("{e}: saw {seen:?}"));

    // Removing zone-2's backend fails traffic over to zone-1.
    backend2_dp.process.terminate(Duration::from_secs(10));
    let mut streak = 0;
    eventually("only zone-1 answering", DEADLINE, || {
        streak = if call(outbound).as_deref() == Some("zone-1") {
            streak + 1
        } else {
            0
        };
        streak >= 10
    })
    .unwrap();
    // Deregisters (SIGTERM), unlike a drop, which kills.
    backend1_dp.process.terminate(Duration::from_secs(10));

    // Back to zone-2 only, then zone-2 loses the global: zone-1 keeps routing on what it knew.
    let (_backend2_again, _) = sidecar(&zone2, "backend-z2b", "backend", &backend2, None);
    let mut streak = 0;
    eventually("zone-2 answering again", DEADLINE, || {
        streak = if call(outbound).as_deref() == Some("zone-2") {
            streak + 1
        } else {
            0
        };
        streak >= 5
    })
    .unwrap();
    kds.cut_existing();
    drop(kds);
    for _ in 0..20 {
        assert_eq!(
            call(outbound).as_deref(),
            Some("zone-2"),
            "zone-1 lost its route to zone-2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_separate_ingress_keeps_routing_while_its_zone_control_plane_is_down() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone1 = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let mut zone2 = Zone::start("zone-2", &global, ZoneOptions::default()).unwrap();
    apply(
        &global,
        "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
",
    );
    wait_for_mesh_ca(&[&zone1, &zone2], "secure");
    // zone-2's ingress is its own process, fed by zone-2's control plane.
    let ingress = Ingress::start(&global, &zone2).unwrap();
    let backend2 = Backend::start("zone-2").unwrap();
    let (_backend2_dp, _) = sidecar(&zone2, "backend-z2", "backend", &backend2, None);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (mut client, _) = sidecar(&zone1, "client-1", "client", &client_app, Some(outbound));
    client.wait_listener(outbound).unwrap();
    eventually(
        "zone-1's client reaching zone-2 through the separate ingress",
        DEADLINE,
        || call(outbound).as_deref() == Some("zone-2"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", ingress.process.log_tail(100)));
    let (_, metrics) = http_get(ingress.diagnostics_port, "/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("atoll_ingress_connections_total") && l.contains(SNI)),
        "the ingress's own metrics count the connection:\n{metrics}"
    );

    // zone-2's control plane goes away: the ingress keeps its last table.
    zone2.process.kill();
    for _ in 0..20 {
        assert_eq!(
            call(outbound).as_deref(),
            Some("zone-2"),
            "the ingress stopped routing without its control plane"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts of the egress (or ingress) connections for `sni` on a zone's own metrics.
fn connections_for(zone: &Zone, sni: &str) -> u64 {
    let (_, metrics) = http_get(zone.diagnostics_port, "/metrics").unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("atoll_ingress_connections_total") && l.contains(sni))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn local_mode_goes_through_the_zone_egress_and_fails_closed_without_one() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    // zone-1 runs an egress; zone-3 has none; zone-2 serves `backend` through its ingress.
    let zone1 = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            egress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let zone2 = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let zone3 = Zone::start("zone-3", &global, ZoneOptions::default()).unwrap();
    apply(
        &global,
        "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
routing:
  zoneEgress: true
",
    );
    wait_for_mesh_ca(&[&zone1, &zone2, &zone3], "secure");
    let backend = Backend::start("zone-2").unwrap();
    let (_backend_dp, _) = sidecar(&zone2, "backend-z2", "backend", &backend, None);
    let client_app = Backend::start("client").unwrap();

    // zone-1: through its egress, then zone-2's ingress.
    let outbound1 = free_port().unwrap();
    let (mut client1, _) = sidecar(&zone1, "client-1", "client", &client_app, Some(outbound1));
    client1.wait_listener(outbound1).unwrap();
    eventually("zone-1 -> egress -> zone-2", DEADLINE, || {
        call(outbound1).as_deref() == Some("zone-2")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client1.config_dump()));
    assert!(
        connections_for(&zone1, SNI) >= 1,
        "zone-1's egress carried no connection for {SNI}"
    );
    assert!(
        connections_for(&zone2, SNI) >= 1,
        "zone-2's ingress carried no connection for {SNI}"
    );

    // zone-3 has no egress: no silent direct route; the proxy's insight says why.
    let outbound3 = free_port().unwrap();
    let (mut client3, _) = sidecar(&zone3, "client-3", "client", &client_app, Some(outbound3));
    client3.wait_listener(outbound3).unwrap();
    let insight = "/meshes/secure/dataplanes+insights/client-3";
    eventually(
        "zone-3's client insight naming the missing egress",
        DEADLINE,
        || http_get(zone3.http_port, insight).is_ok_and(|(_, body)| body.contains("zone egress")),
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", http_get(zone3.http_port, insight)));
    let before = connections_for(&zone2, SNI);
    for _ in 0..5 {
        assert_eq!(
            call(outbound3),
            None,
            "zone-3 must not reach zone-2 without an egress"
        );
    }
    assert_eq!(
        connections_for(&zone2, SNI),
        before,
        "zone-3 went direct to zone-2's ingress"
    );
}

#[test]
fn a_cross_mesh_gateway_is_reachable_from_another_zone() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone1 = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let zone2 = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let port = free_port().unwrap();
    apply(
        &global,
        &format!(
            "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
---
type: Mesh
name: other
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
---
type: MeshGateway
mesh: secure
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: {port}
    protocol: HTTP
    crossMesh: true
---
type: MeshHTTPRoute
mesh: secure
name: to-backend
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: backend
"
        ),
    );
    for mesh in ["secure", "other"] {
        wait_for_mesh_ca(&[&zone1, &zone2], mesh);
    }
    // The gateway of mesh `secure` and its backend run in zone-2.
    let backend = Backend::start("zone-2").unwrap();
    let (_backend_dp, _) = sidecar(&zone2, "backend-z2", "backend", &backend, None);
    let mut gateway = Dataplane::start_gateway(&zone2, "secure", "edge-1", "edge").unwrap();
    gateway.wait_listener(port).unwrap();

    // A sidecar of mesh `other` in zone-1 calls it: zone-2's ingress, then the gateway.
    let outbound = free_port().unwrap();
    let client_app = Backend::start("client").unwrap();
    let (mut client, _) = Dataplane::start_sidecar(
        &zone1,
        "other",
        "client-1",
        "client",
        client_app.port,
        &[(
            outbound,
            &[("kuma.io/service", "edge"), ("kuma.io/mesh", "secure")],
        )],
        &[],
    )
    .unwrap();
    client.wait_listener(outbound).unwrap();
    eventually(
        "zone-1 (mesh other) -> zone-2 ingress -> crossMesh gateway -> backend",
        DEADLINE,
        || {
            http_call(outbound, "internal.edge.secure.mesh", "GET", "/x", None)
                .is_ok_and(|(code, body)| code == 200 && body == "zone-2 /x")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    assert!(
        connections_for(&zone2, "edge.any.secure.atoll") >= 1,
        "not through zone-2's ingress"
    );
}

#[test]
fn mode_none_goes_straight_to_the_remote_instances() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone1 = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    // zone-2's ingress advertises its instances; in mode `none` nobody goes through it.
    let zone2 = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    apply(
        &global,
        "type: Mesh
name: secure
labels:
  atoll.io/cross-zone-mode: none
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
",
    );
    wait_for_mesh_ca(&[&zone1, &zone2], "secure");
    let backend = Backend::start("zone-2").unwrap();
    let (_backend_dp, _) = sidecar(&zone2, "backend-z2", "backend", &backend, None);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (mut client, _) = sidecar(&zone1, "client-1", "client", &client_app, Some(outbound));
    client.wait_listener(outbound).unwrap();
    eventually("zone-1 -> zone-2's instance directly", DEADLINE, || {
        call(outbound).as_deref() == Some("zone-2")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    assert_eq!(
        connections_for(&zone2, SNI),
        0,
        "mode none must not use zone-2's ingress"
    );
}
