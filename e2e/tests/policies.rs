//! Policies end to end: a global, a zone, real Envoys run by `atoll-dp` and real servers made
//! to misbehave (slow, flaky). MeshTrafficPermission by caller identity over mesh mTLS,
//! MeshTimeout firing at its configured time, MeshRetry making a flaky service succeed and
//! stopping at its count.

use std::time::{Duration, Instant};

use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::external::{ExternalServer, ServerOptions, echo};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::http_get;
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

const MESH: &str = "type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
";

fn mesh_and_zone() -> (Global, Zone) {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply(MESH).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    zone.wait_for("/meshes/default/secrets/ca-builtin-ca-1", DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    zone.wait_for(
        "/meshes/default/meshtrafficpermissions/allow-all-default",
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("the initial permission: {e}\n{}", zone.log()));
    (global, zone)
}

fn http_server(name: &str, tweak: impl FnOnce(&mut ServerOptions)) -> ExternalServer {
    let mut options = ServerOptions {
        mode: "http",
        name: name.into(),
        ..Default::default()
    };
    tweak(&mut options);
    ExternalServer::start(options).unwrap()
}

/// A sidecar offering `service` (protocol `protocol`) in front of `app_port`, with outbounds
/// to `to` services; returns it and each outbound's port.
fn sidecar(
    zone: &Zone,
    name: &str,
    service: &str,
    protocol: &str,
    app_port: u16,
    to: &[&str],
) -> (Dataplane, Vec<u16>) {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let ports: Vec<u16> = to.iter().map(|_| free_port().unwrap()).collect();
    let mut yaml = format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {app_port}\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: {protocol}\n"
    );
    if !to.is_empty() {
        yaml.push_str("  outbound:\n");
    }
    for (service, port) in to.iter().zip(&ports) {
        yaml.push_str(&format!(
            "  - port: {port}\n    tags:\n      kuma.io/service: {service}\n"
        ));
    }
    let mut dp = Dataplane::start_with(zone, name, &yaml, admin, &[])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    dp.wait_listener(inbound)
        .unwrap_or_else(|e| panic!("{e}\n{}", dp.process.log_tail(40)));
    (dp, ports)
}

fn status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).ok().map(|(code, _)| code)
}

/// Deletes the mesh's initial allow-all permission.
fn delete_allow_all(global: &Global) {
    let run = atoll_e2e::cli::atollctl(
        &[
            "--api-address",
            &global.api(),
            "delete",
            "meshtrafficpermission",
            "allow-all-default",
            "-m",
            "default",
        ],
        "",
    )
    .unwrap();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

fn echo_works(port: u16) -> bool {
    echo(port, "ping\n").is_ok_and(|got| got == "ping\n")
}

#[test]
fn traffic_permissions_allow_and_deny_by_caller_identity() {
    let (global, zone) = mesh_and_zone();
    let api_app = http_server("api", |_| {});
    let cache_app = ExternalServer::start(ServerOptions {
        mode: "echo",
        name: "cache".into(),
        ..Default::default()
    })
    .unwrap();
    let (_api, _) = sidecar(&zone, "api-1", "api", "http", api_app.port, &[]);
    let (_cache, _) = sidecar(&zone, "cache-1", "cache", "tcp", cache_app.port, &[]);
    let idle = http_server("idle", |_| {});
    let (web, web_out) = sidecar(&zone, "web-1", "web", "http", idle.port, &["api", "cache"]);
    let (_other, other_out) = sidecar(
        &zone,
        "other-1",
        "other",
        "http",
        idle.port,
        &["api", "cache"],
    );
    let log = || web.process.log_tail(30);

    // The mesh's initial allow-all permission: everyone reaches everything.
    eventually("allowed by the initial permission", DEADLINE, || {
        status(web_out[0], "/") == Some(200)
            && status(other_out[0], "/") == Some(200)
            && echo_works(web_out[1])
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));

    global
        .apply(
            "type: MeshTrafficPermission
mesh: default
name: api-not-for-web
spec:
  targetRef:
    kind: MeshService
    name: api
  from:
  - targetRef:
      kind: MeshService
      name: web
    default:
      action: Deny
---
type: MeshTrafficPermission
mesh: default
name: cache-not-for-web
spec:
  targetRef:
    kind: MeshService
    name: cache
  from:
  - targetRef:
      kind: MeshService
      name: web
    default:
      action: Deny
",
        )
        .unwrap();
    eventually(
        "web denied: 403 over HTTP, a reset over TCP",
        DEADLINE,
        || status(web_out[0], "/") == Some(403) && !echo_works(web_out[1]),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    assert_eq!(
        status(other_out[0], "/"),
        Some(200),
        "another caller is unaffected"
    );
    assert!(echo_works(other_out[1]), "and so is its TCP traffic");

    // Without the mesh-wide permission, nothing is allowed (Kuma 2.x).
    delete_allow_all(&global);
    eventually("no permission, no traffic", DEADLINE, || {
        status(other_out[0], "/") == Some(403) && !echo_works(other_out[1])
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
}

#[test]
fn timeouts_fire_on_time_and_retries_stop_at_their_count() {
    let (global, zone) = mesh_and_zone();
    let slow_app = http_server("slow", |o| o.delay_ms = 2000);
    let flaky_app = http_server("flaky", |o| o.fail_first = 2);
    let broken_app = http_server("broken", |o| o.fail_first = 1_000_000);
    let (_slow, _) = sidecar(&zone, "slow-1", "slow", "http", slow_app.port, &[]);
    let (_flaky, _) = sidecar(&zone, "flaky-1", "flaky", "http", flaky_app.port, &[]);
    let (_broken, _) = sidecar(&zone, "broken-1", "broken", "http", broken_app.port, &[]);
    global
        .apply(
            "type: MeshTimeout
mesh: default
name: slow-is-too-slow
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: slow
    default:
      http:
        requestTimeout: 500ms
---
type: MeshRetry
mesh: default
name: retries
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: flaky
    default:
      http:
        numRetries: 3
        retryOn: [\"503\"]
  - targetRef:
      kind: MeshService
      name: broken
    default:
      http:
        numRetries: 2
        retryOn: [\"503\"]
",
        )
        .unwrap();
    zone.wait_for("/meshes/default/meshretries/retries", DEADLINE)
        .unwrap();
    let idle = http_server("idle", |_| {});
    let (client, out) = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        idle.port,
        &["slow", "flaky", "broken"],
    );
    let log = || client.process.log_tail(30);
    eventually("the policies reached the client", DEADLINE, || {
        let dump = client.config_dump();
        dump.contains("retry_policy") && dump.contains("\"timeout\": \"0.500s\"")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));

    // The timeout: 504 after about half a second, not after the backend's two.
    let started = Instant::now();
    let code = status(out[0], "/");
    let took = started.elapsed();
    assert_eq!(code, Some(504), "the request timed out");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1800),
        "timed out after {took:?}, configured 500ms, backend 2s"
    );

    // Retries: two 503s then a 200, in one request of the application's.
    assert_eq!(status(out[1], "/"), Some(200), "retried until it succeeded");
    assert_eq!(
        flaky_app.served(),
        Some(3),
        "the first attempt and two retries"
    );
    // A service that never recovers: the first attempt and exactly two retries.
    assert_eq!(status(out[2], "/"), Some(503));
    assert_eq!(
        broken_app.served(),
        Some(3),
        "numRetries: 2 stops after three attempts"
    );
}

/// MeshTrafficPermission `rules[]` by SPIFFE identity: a deny matcher holds against the
/// mesh-wide allow; once that allow is gone, a prefix matcher admits some callers and the
/// rest are refused. An inbound policy written with `rules[]` (here a fault) applies to every
/// caller.
#[test]
fn identity_rules_deny_first_then_admit_by_prefix() {
    let (global, zone) = mesh_and_zone();
    let api_app = http_server("api", |_| {});
    let (_api, _) = sidecar(&zone, "api-1", "api", "http", api_app.port, &[]);
    let idle = http_server("idle", |_| {});
    let callers: Vec<(Dataplane, Vec<u16>)> = ["web", "worker-a", "worker-b"]
        .iter()
        .map(|s| sidecar(&zone, &format!("{s}-1"), s, "http", idle.port, &["api"]))
        .collect();
    let codes =
        || -> Vec<Option<u16>> { callers.iter().map(|(_, out)| status(out[0], "/")).collect() };
    eventually("everyone allowed at first", DEADLINE, || {
        codes() == [Some(200); 3]
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", codes()));
    global
        .apply(
            "type: MeshTrafficPermission
mesh: default
name: api-by-identity
spec:
  targetRef:
    kind: MeshService
    name: api
  rules:
  - default:
      deny:
      - spiffeID:
          type: Exact
          value: spiffe://default/web
      allow:
      - spiffeID:
          type: Prefix
          value: spiffe://default/worker-a
",
        )
        .unwrap();
    eventually("web denied despite the mesh-wide allow", DEADLINE, || {
        codes() == [Some(403), Some(200), Some(200)]
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", codes()));
    delete_allow_all(&global);
    eventually("only the prefix is admitted", DEADLINE, || {
        codes() == [Some(403), Some(200), Some(403)]
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", codes()));
    global
        .apply(
            "type: MeshFaultInjection
mesh: default
name: api-faults
spec:
  targetRef:
    kind: MeshService
    name: api
  rules:
  - default:
      http:
      - abort:
          httpStatus: 418
          percentage: 100
",
        )
        .unwrap();
    eventually(
        "the rules[] fault reaches the admitted caller",
        DEADLINE,
        || codes() == [Some(403), Some(418), Some(403)],
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", codes()));
}

/// A MeshTimeout `to[]` entry naming one MeshHTTPRoute times out that route's requests and
/// leaves the outbound's other requests alone.
#[test]
fn a_timeout_on_one_sidecar_route_leaves_the_rest_alone() {
    let (global, zone) = mesh_and_zone();
    let slow_app = http_server("slow", |o| o.delay_ms = 1500);
    let (_slow, _) = sidecar(&zone, "slow-1", "slow", "http", slow_app.port, &[]);
    let idle = http_server("idle", |_| {});
    let (client, out) = sidecar(&zone, "web-1", "web", "http", idle.port, &["slow"]);
    global
        .apply(
            "type: MeshHTTPRoute
mesh: default
name: impatient-callers
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: slow
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /
        headers:
        - type: Exact
          name: x-impatient
          value: \"yes\"
      default:
        backendRefs:
        - kind: MeshService
          name: slow
---
type: MeshTimeout
mesh: default
name: impatient-route
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshHTTPRoute
      name: impatient-callers
    default:
      http:
        requestTimeout: 300ms
",
        )
        .unwrap();
    let call = |impatient: bool| {
        let headers: &[(&str, &str)] = if impatient {
            &[("x-impatient", "yes")]
        } else {
            &[]
        };
        let started = Instant::now();
        let code = atoll_e2e::process::http_call_with(out[0], "slow", "GET", "/", None, headers)
            .map(|(c, _)| c)
            .ok();
        (code, started.elapsed())
    };
    eventually("the route's requests time out", DEADLINE, || {
        call(true).0 == Some(504)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    let (code, took) = call(true);
    assert_eq!(code, Some(504));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1400),
        "timed out after {took:?}"
    );
    let (code, took) = call(false);
    assert_eq!(code, Some(200), "other requests wait for the answer");
    assert!(
        took >= Duration::from_millis(1400),
        "answered after {took:?}"
    );
}

/// Permissions hold for callers in another zone: the ingress passes the caller's mesh TLS
/// through untouched, so the destination sidecar still sees who calls.
#[test]
fn a_deny_holds_for_a_caller_in_another_zone() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply(MESH).unwrap();
    let zone1 = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let zone2 = Zone::start("zone-2", &global, ZoneOptions::default()).unwrap();
    for zone in [&zone1, &zone2] {
        zone.wait_for(
            "/meshes/default/meshtrafficpermissions/allow-all-default",
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
        zone.wait_for("/meshes/default/secrets/ca-builtin-ca-1", DEADLINE)
            .unwrap();
    }
    let api_app = http_server("api", |_| {});
    let (_api, _) = sidecar(&zone1, "api-1", "api", "http", api_app.port, &[]);
    let idle = http_server("idle", |_| {});
    let (web, web_out) = sidecar(&zone2, "web-1", "web", "http", idle.port, &["api"]);
    let (_other, other_out) = sidecar(&zone2, "other-1", "other", "http", idle.port, &["api"]);
    eventually("zone-2 reaches zone-1's api", DEADLINE, || {
        status(web_out[0], "/") == Some(200) && status(other_out[0], "/") == Some(200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", web.process.log_tail(30)));
    global
        .apply(
            "type: MeshTrafficPermission
mesh: default
name: api-not-for-web
spec:
  targetRef:
    kind: MeshService
    name: api
  from:
  - targetRef:
      kind: MeshService
      name: web
    default:
      action: Deny
",
        )
        .unwrap();
    eventually("zone-2's web denied across zones", DEADLINE, || {
        status(web_out[0], "/") == Some(403)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", web.process.log_tail(30)));
    assert_eq!(
        status(other_out[0], "/"),
        Some(200),
        "zone-2's other caller still allowed"
    );
}
