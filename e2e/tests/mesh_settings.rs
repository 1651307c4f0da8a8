//! Mesh settings and route fields that change what Envoy does, proven with real traffic: mTLS
//! mode PERMISSIVE, a `provided` CA, MeshHTTPRoutes on sidecar outbounds (to another service
//! and to a subset of a service's instances) and locality-aware load balancing across zones.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::{Dataplane, sidecar_yaml};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::{http_call, http_get};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

fn apply(global: &Global, yaml: &str) {
    global.apply(yaml).unwrap_or_else(|e| panic!("{e:#}"));
}

fn synced(zone: &Zone, path: &str) {
    zone.wait_for(path, DEADLINE)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// A sidecar offering `service` in front of `app`, its inbound carrying `tags` besides the
/// service and protocol, with outbounds as (port, service); returns it and its inbound port.
fn sidecar(
    zone: &Zone,
    mesh: &str,
    name: &str,
    service: &str,
    tags: &[(&str, &str)],
    app: &Backend,
    outbounds: &[(u16, &str)],
) -> (Dataplane, u16) {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let targets: Vec<[(&str, &str); 1]> = outbounds
        .iter()
        .map(|(_, to)| [("kuma.io/service", *to)])
        .collect();
    let outbounds: Vec<(u16, &[(&str, &str)])> = outbounds
        .iter()
        .zip(&targets)
        .map(|((port, _), tags)| (*port, &tags[..]))
        .collect();
    let mut yaml = sidecar_yaml(mesh, name, service, (admin, inbound, app.port), &outbounds);
    let extra: String = tags
        .iter()
        .map(|(k, v)| format!("      {k}: {v}\n"))
        .collect();
    yaml = yaml.replacen(
        "      kuma.io/protocol: http\n",
        &format!("      kuma.io/protocol: http\n{extra}"),
        1,
    );
    let mut dp = Dataplane::start_with(zone, name, &yaml, admin, &[])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    dp.wait_listener(inbound).unwrap();
    for (port, _) in &outbounds {
        dp.wait_listener(*port).unwrap();
    }
    (dp, inbound)
}

/// Who answered `path` through an outbound (backends answer `<name> <path>`).
fn who(outbound: u16, host: &str, path: &str) -> Option<String> {
    http_call(outbound, host, "GET", path, None)
        .ok()
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, body)| body.split(' ').next().map(str::to_string))
}

/// The mesh CA used by the first tests: builtin, in `mode`.
fn builtin_mesh(name: &str, mode: &str) -> String {
    format!(
        "type: Mesh
name: {name}
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    mode: {mode}
"
    )
}

#[test]
fn permissive_inbounds_take_plain_text_and_strict_ones_refuse_it() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(&global, &builtin_mesh("m", "PERMISSIVE"));
    synced(&zone, "/meshes/m/secrets/ca-builtin-ca-1");
    let echo = Backend::start("echo").unwrap();
    let client_app = Backend::start("client").unwrap();
    let (_echo_dp, echo_inbound) = sidecar(&zone, "m", "echo-1", "echo", &[], &echo, &[]);
    let outbound = free_port().unwrap();
    let (client, _) = sidecar(
        &zone,
        "m",
        "client-1",
        "client",
        &[],
        &client_app,
        &[(outbound, "echo")],
    );
    let mesh_traffic = || who(outbound, "echo", "/mesh").as_deref() == Some("echo");
    eventually("client -> echo over mTLS", DEADLINE, mesh_traffic)
        .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));

    // PERMISSIVE: a plain-text client reaches the inbound.
    let plain = || http_get(echo_inbound, "/plain").ok();
    eventually("plain text answered on PERMISSIVE", DEADLINE, || {
        plain().is_some_and(|(code, body)| code == 200 && body == "echo /plain")
    })
    .unwrap();
    // Mesh traffic still arrives over mTLS: the inbound presents the mesh certificate.
    let s_client = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{echo_inbound} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"
        ))
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&s_client.stdout);
    assert!(san.contains("URI:spiffe://m/echo"), "SAN: {san}");

    // STRICT: plain text is refused again, mesh traffic keeps working.
    apply(&global, &builtin_mesh("m", "STRICT"));
    eventually("plain text refused on STRICT", DEADLINE, || {
        plain().is_none()
    })
    .unwrap();
    assert!(mesh_traffic(), "mesh traffic must work on STRICT");
}

/// An ECDSA CA from openssl, as an operator would bring: (certificate PEM, key PEM).
fn operator_ca(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Operator Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

#[test]
fn a_provided_ca_issues_the_workload_certificates() {
    use base64::Engine;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = operator_ca(dir.path());
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(
        &global,
        &format!(
            "type: Mesh
name: ops
mtls:
  enabledBackend: mine
  backends:
  - name: mine
    type: provided
    conf:
      cert:
        secret: operator-ca-cert
      key:
        secret: operator-ca-key
---
type: Secret
mesh: ops
name: operator-ca-cert
data: {}
---
type: Secret
mesh: ops
name: operator-ca-key
data: {}
",
            b64(&ca_cert),
            b64(&ca_key)
        ),
    );
    synced(&zone, "/meshes/ops/secrets/operator-ca-key");
    let echo = Backend::start("echo").unwrap();
    let client_app = Backend::start("client").unwrap();
    let (_echo_dp, echo_inbound) = sidecar(&zone, "ops", "echo-1", "echo", &[], &echo, &[]);
    let outbound = free_port().unwrap();
    let (client, _) = sidecar(
        &zone,
        "ops",
        "client-1",
        "client",
        &[],
        &client_app,
        &[(outbound, "echo")],
    );
    eventually("client -> echo over mTLS", DEADLINE, || {
        who(outbound, "echo", "/ops").as_deref() == Some("echo")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.config_dump(), zone.log()));

    // The peer sees a workload certificate that chains to the operator's CA.
    let leaf = dir.path().join("leaf.pem");
    let ca_file = dir.path().join("ca.pem");
    let fetch = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{echo_inbound} </dev/null 2>/dev/null | openssl x509 -out {}",
            leaf.display()
        ))
        .output()
        .unwrap();
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let issuer = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&issuer.stdout).contains("Operator Root CA"),
        "issuer: {}",
        String::from_utf8_lossy(&issuer.stdout)
    );
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca_file)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The CA key reached no proxy: Envoy's configuration holds only the CA certificate.
    let dump = http_get(client.admin_port, "/config_dump?include_eds").map(|(_, b)| b);
    let key_line = ca_key.lines().nth(1).unwrap();
    assert!(!dump.unwrap_or_default().contains(key_line));
}

#[test]
fn sidecar_routes_send_v2_elsewhere_and_reach_only_the_subset() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(&global, "type: Mesh\nname: default\n");
    synced(&zone, "/meshes/default");
    let (web_a, web_b, web_v2) = (
        Backend::start("web-a").unwrap(),
        Backend::start("web-b").unwrap(),
        Backend::start("web-v2").unwrap(),
    );
    let (_a, _) = sidecar(
        &zone,
        "default",
        "web-a",
        "web",
        &[("version", "v1")],
        &web_a,
        &[],
    );
    let (_b, _) = sidecar(
        &zone,
        "default",
        "web-b",
        "web",
        &[("version", "v2")],
        &web_b,
        &[],
    );
    let (_v2, _) = sidecar(&zone, "default", "web-v2", "web-v2", &[], &web_v2, &[]);
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (client, _) = sidecar(
        &zone,
        "default",
        "client-1",
        "client",
        &[],
        &client_app,
        &[(outbound, "web")],
    );
    // Without a route, /v2 is web's like any other path.
    let mut seen = BTreeSet::new();
    eventually("both web instances answering /v2", DEADLINE, || {
        seen.extend(who(outbound, "web", "/v2/x"));
        seen.len() == 2
    })
    .unwrap_or_else(|e| panic!("{e}: {seen:?}\n{}", client.config_dump()));

    apply(
        &global,
        "type: MeshHTTPRoute
mesh: default
name: web-routes
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: web
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v2
      default:
        backendRefs:
        - kind: MeshService
          name: web-v2
    - matches:
      - path:
          type: PathPrefix
          value: /canary
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: web
          tags:
            version: v2
",
    );
    eventually("/v2 answered by web-v2", DEADLINE, || {
        who(outbound, "web", "/v2/x").as_deref() == Some("web-v2")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));
    for _ in 0..20 {
        assert_eq!(who(outbound, "web", "/v2/y").as_deref(), Some("web-v2"));
        assert_eq!(
            who(outbound, "web", "/canary").as_deref(),
            Some("web-b"),
            "the subset holds only the instance tagged version: v2"
        );
    }
    // Paths no rule matches still reach every instance of web.
    let mut seen = BTreeSet::new();
    eventually("both web instances answering /other", DEADLINE, || {
        seen.extend(who(outbound, "web", "/other"));
        seen.len() == 2
    })
    .unwrap_or_else(|e| panic!("{e}: {seen:?}"));
    assert!(!seen.contains("web-v2"), "{seen:?}");
}

#[test]
fn locality_aware_load_balancing_keeps_traffic_in_the_zone_until_it_cannot() {
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
    apply(
        &global,
        "type: Mesh
name: local
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
routing:
  localityAwareLoadBalancing: true
",
    );
    synced(&zone1, "/meshes/local/secrets/ca-builtin-ca-1");
    synced(&zone2, "/meshes/local/secrets/ca-builtin-ca-1");

    // First only zone-2 has `backend`: the client fails over to it across zones.
    let backend2 = Backend::start("zone-2").unwrap();
    let (_backend2_dp, _) = sidecar(
        &zone2,
        "local",
        "backend-z2",
        "backend",
        &[],
        &backend2,
        &[],
    );
    let client_app = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (client, _) = sidecar(
        &zone1,
        "local",
        "client-1",
        "client",
        &[],
        &client_app,
        &[(outbound, "backend")],
    );
    let call = || who(outbound, "backend", "/x");
    eventually(
        "zone-1's client reaching zone-2's backend",
        DEADLINE,
        || call().as_deref() == Some("zone-2"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", client.config_dump(), zone1.log()));

    // A local instance appears: every request stays in zone-1.
    let backend1 = Backend::start("zone-1").unwrap();
    let (mut backend1_dp, _) = sidecar(
        &zone1,
        "local",
        "backend-z1",
        "backend",
        &[],
        &backend1,
        &[],
    );
    eventually("zone-1 answering", DEADLINE, || {
        call().as_deref() == Some("zone-1")
    })
    .unwrap();
    let remote_before = backend2.served();
    for _ in 0..30 {
        assert_eq!(call().as_deref(), Some("zone-1"), "traffic left the zone");
    }
    assert_eq!(
        backend2.served(),
        remote_before,
        "zone-2 served while zone-1 could"
    );

    // The local instance goes away: traffic fails over to zone-2.
    backend1_dp.process.terminate(Duration::from_secs(10));
    let mut streak = 0;
    eventually(
        "zone-2 answering after the local instance left",
        DEADLINE,
        || {
            streak = if call().as_deref() == Some("zone-2") {
                streak + 1
            } else {
                0
            };
            streak >= 5
        },
    )
    .unwrap();
}
