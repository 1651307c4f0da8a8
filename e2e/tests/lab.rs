//! Across machines: the global, each zone and each zone's data planes on hosts of their own
//! (network namespaces on a private bridge, `atoll_e2e::lab`), every control plane started
//! from the systemd units and environment files in `deploy/systemd` with the lab's addresses
//! filled in, real PostgreSQL and real Envoy. Nothing is reachable on another host's
//! loopback, so an address, certificate name or bind that only works on one machine fails
//! here. docs/across-machines.md walks through the same steps.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atoll_e2e::lab::dataplane::{self, mesh_yaml, sidecar_yaml};
use atoll_e2e::lab::deploy::{self, API, DIAGNOSTICS, KDS};
use atoll_e2e::lab::{Host, Lab};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::Process;
use atoll_e2e::zone::eventually;

const DEADLINE: Duration = Duration::from_secs(60);
const INGRESS: u16 = 10001;
const GATEWAY: u16 = 8080;

fn lab() -> Lab {
    Lab::new().unwrap_or_else(|e| panic!("cannot build the lab of hosts: {e:#}"))
}

fn host(lab: &mut Lab, name: &str) -> Host {
    lab.host(name)
        .unwrap_or_else(|e| panic!("cannot add host {name}: {e:#}"))
}

fn wait_local_ok(host: &Host, process: &mut Process, port: u16, path: &str) {
    deploy::wait_local_ok(host, process, port, path, DEADLINE).unwrap_or_else(|e| panic!("{e:#}"));
}

/// The global of `atoll-global.service`, on `host`, with the store in `fill`.
fn start_global(host: &Host, store: &[(&str, String)]) -> Process {
    deploy::start_global(host, store, DEADLINE).unwrap_or_else(|e| panic!("{e:#}"))
}

fn apply(global: &Host, dir: &Path, name: &str, yaml: &str) {
    deploy::apply(global, dir, name, yaml).unwrap_or_else(|e| panic!("{e:#}"))
}

fn zone_credentials(global: &Host, dir: &Path, zone: &str) -> Vec<(&'static str, PathBuf)> {
    deploy::zone_credentials(global, dir, zone).unwrap_or_else(|e| panic!("{e:#}"))
}

fn zone_unit(
    host: &Host,
    name: &str,
    global_address: Ipv4Addr,
    interface: Ipv4Addr,
    credentials: &[(&str, PathBuf)],
    extra_args: &[&str],
) -> Process {
    deploy::zone_unit(
        host,
        name,
        SocketAddr::from((global_address, KDS)),
        interface,
        credentials,
        extra_args,
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// `atoll-dp@<name>.service` on `dp_host` for the Dataplane `yaml`, connected to the zone on
/// `zone_host`; waits until Envoy is ready on its admin port.
fn data_plane(
    global: &Host,
    zone_host: &Host,
    dp_host: &Host,
    dir: &Path,
    identity: (&str, &str, &str),
    yaml: &str,
    admin: u16,
) -> Process {
    dataplane::start(
        (global, zone_host, dp_host),
        dir,
        identity,
        yaml,
        admin,
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn gateway_yaml(name: &str, address: Ipv4Addr, admin: u16) -> String {
    format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: {address}\n  admin:\n    port: {admin}\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n"
    )
}

const GATEWAY_YAML: &str = "type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: app.example.com
---
type: MeshHTTPRoute
mesh: default
name: edge-to-backend
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /
      default:
        backendRefs:
        - kind: MeshService
          name: backend
";

/// Who answered a request (the backend's first word), if it was a 200.
fn answer(result: anyhow::Result<(u16, String)>) -> Option<String> {
    match result {
        Ok((200, body)) => body.split(' ').next().map(str::to_string),
        _ => None,
    }
}

/// The zone's in-process ingress and egress connections (all SNIs), from its metrics.
fn routed_connections(zone: &Host) -> u64 {
    let (_, metrics) = zone.local_get(DIAGNOSTICS, "/metrics").unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("atoll_ingress_connections_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Connections the client's Envoy opened to `address` (from its admin `/clusters`).
fn envoy_connections_to(dp: &Host, admin: u16, address: SocketAddr) -> u64 {
    let (_, clusters) = dp.local_get(admin, "/clusters").unwrap_or_default();
    clusters
        .lines()
        .filter(|l| l.contains(&format!("::{address}::cx_total::")))
        .filter_map(|l| l.rsplit("::").next()?.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn across_hosts_gateways_and_cross_zone_calls_work_from_the_systemd_artefacts() {
    let started = std::time::Instant::now();
    let mut lab = lab();
    let global = host(&mut lab, "global");
    let zone1 = host(&mut lab, "zone-1");
    let dp1 = host(&mut lab, "zone-1-dp");
    let zone2 = host(&mut lab, "zone-2");
    let dp2 = host(&mut lab, "zone-2-dp");
    let dir = lab.dir().to_path_buf();

    // PostgreSQL on the global's machine, reached at the global's address, not loopback.
    let pg = TempPostgres::start_in_netns(&global.netns, global.address)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let _global_cp = start_global(
        &global,
        &[
            ("KUMA_STORE_POSTGRES_HOST", global.address.to_string()),
            ("KUMA_STORE_POSTGRES_PORT", pg.port().to_string()),
            ("KUMA_STORE_POSTGRES_USER", "postgres".into()),
            ("KUMA_STORE_POSTGRES_DB_NAME", "postgres".into()),
        ],
    );

    let mut zones = Vec::new();
    for zone in [&zone1, &zone2] {
        let credentials = zone_credentials(&global, &dir, &zone.name);
        let mut process = zone_unit(
            zone,
            &zone.name,
            global.address,
            zone.address,
            &credentials,
            &["--ingress", "--egress"],
        );
        wait_local_ok(zone, &mut process, DIAGNOSTICS, "/ready");
        zones.push(process);
    }
    apply(&global, &dir, "mesh", &mesh_yaml(false));
    // The mesh reaching each zone proves KDS across hosts, with a server certificate that
    // names the global's address although KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES does not.
    for (zone, process) in [&zone1, &zone2].into_iter().zip(zones.iter_mut()) {
        wait_local_ok(zone, process, API, "/meshes/default");
    }

    // Each zone advertises its ingress at its own address, seen by the other zone.
    for (zone, other) in [(&zone1, &zone2), (&zone2, &zone1)] {
        let expected = format!("\"advertisedAddress\":\"{}\"", zone.address);
        eventually(
            &format!("{}'s ingress address on {}", zone.name, other.name),
            DEADLINE,
            || {
                other
                    .local_get(API, "/zoneingresses")
                    .is_ok_and(|(_, body)| body.replace(' ', "").contains(&expected))
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", other.local_get(API, "/zoneingresses")));
    }

    // `backend` exists only on zone-2's data plane host.
    let backend_app = dp2.backend("zone-2").unwrap();
    let _backend = data_plane(
        &global,
        &zone2,
        &dp2,
        &dir,
        ("backend-1", "backend", "dataplane"),
        &sidecar_yaml(
            "backend-1",
            "backend",
            dp2.address,
            (9901, 20001, backend_app.port),
            None,
        ),
        9901,
    );
    let client_app = dp1.backend("client").unwrap();
    let outbound = 20000;
    let _client = data_plane(
        &global,
        &zone1,
        &dp1,
        &dir,
        ("client-1", "client", "dataplane"),
        &sidecar_yaml(
            "client-1",
            "client",
            dp1.address,
            (9901, 20001, client_app.port),
            Some(outbound),
        ),
        9901,
    );
    // The bootstrap points Envoy at the address atoll-dp used, zone-1's; Envoy being ready
    // on another host already shows it dialled something it could reach.
    let bootstrap = dp1.dir.join("run/atoll-dp-client-1/bootstrap-client-1.pb");
    let bootstrap =
        std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
    let zone1_address = zone1.address.to_string();
    assert!(
        bootstrap
            .windows(zone1_address.len())
            .any(|w| w == zone1_address.as_bytes()),
        "the bootstrap does not name zone-1's address {zone1_address}"
    );

    // zone-1's client reaches zone-2's backend through zone-2's ingress, at zone-2's address.
    let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let call = || answer(dp1.http(local(outbound), "backend", "GET", "/x", None, &[]));
    let took = eventually(
        "zone-1's client reaching zone-2's backend",
        DEADLINE,
        || call().as_deref() == Some("zone-2"),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{:?}",
            dp1.local_get(9901, "/clusters").map(|(_, b)| b)
        )
    });
    println!("cross-zone call across hosts ready after {took:?}");
    let ingress2 = SocketAddr::from((zone2.address, INGRESS));
    assert!(
        envoy_connections_to(&dp1, 9901, ingress2) >= 1,
        "the client's Envoy opened no connection to zone-2's ingress at {ingress2}"
    );
    assert!(
        routed_connections(&zone2) >= 1,
        "zone-2's ingress counted no connection"
    );
    assert_eq!(
        routed_connections(&zone1),
        0,
        "remote mode must not touch zone-1's ingress or egress"
    );

    // One MeshGateway, applied on the global, served by a gateway in each zone.
    apply(&global, &dir, "gateway", GATEWAY_YAML);
    let mut gateways = Vec::new();
    for (zone, dp) in [(&zone1, &dp1), (&zone2, &dp2)] {
        let name = format!("edge-{}", zone.name);
        gateways.push(data_plane(
            &global,
            zone,
            dp,
            &dir,
            (&name, "edge", "gateway"),
            &gateway_yaml(&name, dp.address, 9902),
            9902,
        ));
        // Called from the zone's host: the listener is on the data plane host's address.
        let listener = SocketAddr::from((dp.address, GATEWAY));
        eventually(&format!("{name} answering on {listener}"), DEADLINE, || {
            answer(zone.http(listener, "app.example.com", "GET", "/g", None, &[])).as_deref()
                == Some("zone-2")
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {:?}",
                zone.http(listener, "app.example.com", "GET", "/g", None, &[])
            )
        });
    }

    // `local` mode: the same call now leaves zone-1 through its egress.
    apply(&global, &dir, "mesh-local", &mesh_yaml(true));
    eventually("zone-1's egress carrying the call", DEADLINE, || {
        call().as_deref() == Some("zone-2") && routed_connections(&zone1) >= 1
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: zone-1 routed {} connections\n{:?}",
            routed_connections(&zone1),
            dp1.local_get(9901, "/clusters").map(|(_, b)| b)
        )
    });
    let egress1 = SocketAddr::from((zone1.address, 10002));
    assert!(
        envoy_connections_to(&dp1, 9901, egress1) >= 1,
        "the client's Envoy opened no connection to zone-1's egress at {egress1}"
    );
    println!("lab test took {:?}", started.elapsed());
}

#[test]
fn a_zone_refuses_to_advertise_loopback_and_names_a_missing_kds_hostname() {
    let mut lab = lab();
    let global = host(&mut lab, "global");
    let zone = host(&mut lab, "zone-3");
    let dir = lab.dir().to_path_buf();
    let _global_cp = start_global(&global, &[("KUMA_STORE_TYPE", "memory".into())]);
    let credentials = zone_credentials(&global, &dir, "zone-3");

    // An ingress on loopback, with no advertised address set: refused at start, naming the
    // variable, before anything listens.
    let mut refused = zone_unit(
        &zone,
        "zone-3",
        global.address,
        Ipv4Addr::LOCALHOST,
        &credentials,
        &["--ingress"],
    );
    eventually("the zone with a loopback ingress to exit", DEADLINE, || {
        refused.check_alive().is_err()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", refused.log_tail(40)));
    let log = refused.log_tail(40);
    assert!(
        log.contains("KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS is not set")
            && log.contains("127.0.0.1"),
        "{log}"
    );
    drop(refused);

    // The global gains an address after its KDS certificate was issued: a zone dialling it
    // is refused by TLS and says which name to add where.
    let alias = Ipv4Addr::new(10, 213, 0, 200);
    global.add_address(alias).unwrap();
    let mut zone_cp = zone_unit(&zone, "zone-3", alias, zone.address, &credentials, &[]);
    let advice = format!("add {alias} to KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES");
    eventually("the zone naming the missing KDS hostname", DEADLINE, || {
        zone_cp.log_tail(200).contains(&advice)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone_cp.log_tail(60)));
    zone_cp.check_alive().expect("the zone keeps retrying");
}

#[test]
fn lab_hosts_reach_each_other_only_over_the_lab_network_and_are_removed_after() {
    let mut lab = lab();
    let a = host(&mut lab, "a");
    let b = host(&mut lab, "b");
    let listener = b
        .within(|| std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 7000)))
        .unwrap();
    a.connect(SocketAddr::from((b.address, 7000)))
        .expect("a reaches b at b's address");
    assert!(
        a.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, 7000)))
            .is_err(),
        "a's loopback is a's own: b's port must not be there"
    );
    // The test's own namespace is not on the lab network: its end of the bridge has no
    // address (whatever else this machine's network does with 10.213.0.0/24).
    let bridge = atoll_e2e::lab::ip::ip(&["-o", "addr", "show", "dev", lab.bridge()]).unwrap();
    assert!(
        !bridge.contains("inet"),
        "the lab's bridge has an address: {bridge}"
    );
    b.link_down().unwrap();
    assert!(
        a.connect(SocketAddr::from((b.address, 7000))).is_err(),
        "a host whose link is down is cut off"
    );
    b.link_up().unwrap();
    eventually("b reachable again", DEADLINE, || {
        a.connect(SocketAddr::from((b.address, 7000))).is_ok()
    })
    .unwrap();
    drop(listener);
    let names: Vec<String> = lab.hosts().iter().map(|h| h.netns.clone()).collect();
    drop(lab);
    let list = atoll_e2e::lab::ip::ip(&["netns", "list"]).unwrap();
    for name in names {
        assert!(!list.contains(&name), "{name} left behind: {list}");
    }
}
