//! MeshLoadBalancingStrategy end to end with real Envoys: in three zones, a caller keeps to
//! its own zone and, as the instances there go, fails over to the other zones in the order
//! `crossZone.failover` gives; in one zone, affinity tags weight the caller's neighbours and
//! a ring hash keeps one user on one instance.

use std::collections::BTreeMap;
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::{Dataplane, sidecar_yaml_tagged};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::http_call_with;
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(40);

const MESH: &str = "type: Mesh
name: m
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
";

fn zone(global: &Global, name: &str, ingress: bool) -> Zone {
    let zone = Zone::start(
        name,
        global,
        ZoneOptions {
            ingress,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    for path in [
        "/meshes/m/secrets/ca-builtin-ca-1",
        "/meshes/m/meshtrafficpermissions/allow-all-m",
    ] {
        zone.wait_for(path, DEADLINE)
            .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    }
    zone
}

/// A sidecar for `service` in front of `app`, with `tags` on its inbound and outbounds to
/// `to`; returns it and the outbound ports, once they listen.
fn sidecar(
    zone: &Zone,
    name: &str,
    service: &str,
    app: u16,
    tags: &[(&str, &str)],
    to: &[&str],
) -> (Dataplane, Vec<u16>) {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let ports: Vec<u16> = to.iter().map(|_| free_port().unwrap()).collect();
    let services: Vec<[(&str, &str); 1]> = to.iter().map(|s| [("kuma.io/service", *s)]).collect();
    let outbounds: Vec<(u16, &[(&str, &str)])> = ports
        .iter()
        .zip(&services)
        .map(|(p, t)| (*p, t.as_slice()))
        .collect();
    let yaml = sidecar_yaml_tagged("m", name, service, (admin, inbound, app), tags, &outbounds);
    let mut dp = Dataplane::start_with(zone, name, &yaml, admin, &[])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    for port in std::iter::once(&inbound).chain(&ports) {
        dp.wait_listener(*port)
            .unwrap_or_else(|e| panic!("{e}\n{}", dp.process.log_tail(40)));
    }
    (dp, ports)
}

/// The backend that answered a request (backends answer `<name> <path>`), or why none did.
fn who(port: u16, headers: &[(&str, &str)]) -> String {
    match http_call_with(port, "backend", "GET", "/", None, headers) {
        Ok((200, body)) => body.split(' ').next().unwrap_or_default().to_string(),
        Ok((status, body)) => format!("status {status}: {body}"),
        Err(e) => format!("error: {e}"),
    }
}

fn tally(port: u16, requests: usize, headers: &[(&str, &str)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..requests {
        *counts.entry(who(port, headers)).or_default() += 1;
    }
    counts
}

/// Waits until `requests` calls in a row are answered by `backend` alone.
fn only(port: u16, backend: &str, what: &str, requests: usize) {
    eventually(what, DEADLINE, || {
        let counts = tally(port, requests, &[]);
        counts.len() == 1 && counts.contains_key(backend)
    })
    .unwrap_or_else(|e| panic!("{e}; last: {:?}", tally(port, requests, &[])));
}

#[test]
fn traffic_stays_in_the_zone_then_fails_over_in_the_configured_order() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply(MESH).unwrap();
    let zone1 = zone(&global, "zone-1", false);
    let zone2 = zone(&global, "zone-2", true);
    let zone3 = zone(&global, "zone-3", true);
    let apps: Vec<Backend> = ["one", "two", "three"]
        .iter()
        .map(|n| Backend::start(n).unwrap())
        .collect();
    let (mut local, _) = sidecar(&zone1, "backend-1", "backend", apps[0].port, &[], &[]);
    let (_b2, _) = sidecar(&zone2, "backend-2", "backend", apps[1].port, &[], &[]);
    let (mut b3, _) = sidecar(&zone3, "backend-3", "backend", apps[2].port, &[], &[]);
    let (client, out) = sidecar(&zone1, "web-1", "web", apps[0].port, &[], &["backend"]);
    // Without the policy every zone's instance takes a share.
    eventually("every zone answers without a policy", DEADLINE, || {
        tally(out[0], 30, &[])
            .keys()
            .filter(|k| ["one", "two", "three"].contains(&k.as_str()))
            .count()
            == 3
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last: {:?}\n{}",
            tally(out[0], 30, &[]),
            client.process.log_tail(30)
        )
    });
    global
        .apply(
            "type: MeshLoadBalancingStrategy
mesh: m
name: backend-failover
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      localityAwareness:
        crossZone:
          failover:
          - to:
              type: Only
              zones: [zone-3]
          - to:
              type: Only
              zones: [zone-2]
",
        )
        .unwrap();
    only(out[0], "one", "traffic kept in zone-1", 20);
    local.process.terminate(Duration::from_secs(10));
    only(out[0], "three", "failover to zone-3 first", 20);
    b3.process.terminate(Duration::from_secs(10));
    only(out[0], "two", "then to zone-2", 20);
}

#[test]
fn affinity_tags_weight_neighbours_and_a_ring_hash_keeps_a_user_on_one_instance() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply(MESH).unwrap();
    let zone1 = zone(&global, "zone-1", false);
    let near = Backend::start("near").unwrap();
    let far = Backend::start("far").unwrap();
    let _near = sidecar(
        &zone1,
        "backend-near",
        "backend",
        near.port,
        &[("rack", "r1")],
        &[],
    );
    let _far = sidecar(
        &zone1,
        "backend-far",
        "backend",
        far.port,
        &[("rack", "r2")],
        &[],
    );
    let (client, out) = sidecar(
        &zone1,
        "web-1",
        "web",
        near.port,
        &[("rack", "r1")],
        &["backend"],
    );
    eventually("both instances answer", DEADLINE, || {
        tally(out[0], 20, &[]).len() == 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.process.log_tail(30)));
    global
        .apply(
            "type: MeshLoadBalancingStrategy
mesh: m
name: rack-affinity
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: Mesh
    default:
      localityAwareness:
        localZone:
          affinityTags:
          - key: rack
",
        )
        .unwrap();
    // 90% to the instance on the caller's rack, 10% to the other one.
    eventually("the neighbour gets about 90%", DEADLINE, || {
        let counts = tally(out[0], 100, &[]);
        let near = counts.get("near").copied().unwrap_or(0);
        let far = counts.get("far").copied().unwrap_or(0);
        near + far == 100 && (80..=97).contains(&near)
    })
    .unwrap_or_else(|e| panic!("{e}; last: {:?}", tally(out[0], 100, &[])));
    global
        .apply(
            "type: MeshLoadBalancingStrategy
mesh: m
name: rack-affinity
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: Mesh
    default:
      localityAwareness:
        disabled: true
      loadBalancer:
        type: RingHash
        ringHash:
          hashPolicies:
          - type: Header
            header:
              name: x-user
",
        )
        .unwrap();
    eventually("the ring hash is in place", DEADLINE, || {
        client.config_dump().contains("x-user")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // One user, one instance; many users, both instances.
    for user in ["alice", "bob", "carol"] {
        let counts = tally(out[0], 15, &[("x-user", user)]);
        assert_eq!(counts.len(), 1, "{user} went to {counts:?}");
    }
    let mut seen = BTreeMap::new();
    for i in 0..40 {
        let user = format!("user-{i}");
        *seen.entry(who(out[0], &[("x-user", &user)])).or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        2,
        "40 users spread over both instances: {seen:?}"
    );
}
