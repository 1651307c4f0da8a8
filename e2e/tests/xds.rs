//! Zone xDS end to end: a global, a zone, real Envoys run by `atoll-dp`, and real HTTP
//! backends. Everything listens on free loopback ports.

use std::process::Command;
use std::time::{Duration, Instant};

use atoll_e2e::backend::Backend;
use atoll_e2e::cli::atollctl;
use atoll_e2e::dataplane::Dataplane;
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

/// A sidecar for `backend`, offering it as `service` on a free inbound port.
fn sidecar(
    zone: &Zone,
    mesh: &str,
    name: &str,
    service: &str,
    backend: &Backend,
    outbound: Option<(u16, &str)>,
) -> (Dataplane, u16) {
    sidecar_with(zone, mesh, name, service, backend, outbound, &[])
}

/// [`sidecar`] with extra `atoll-dp run` arguments.
fn sidecar_with(
    zone: &Zone,
    mesh: &str,
    name: &str,
    service: &str,
    backend: &Backend,
    outbound: Option<(u16, &str)>,
    extra: &[&str],
) -> (Dataplane, u16) {
    let tags = outbound.map(|(_, to)| [("kuma.io/service", to)]);
    let outbounds: Vec<(u16, &[(&str, &str)])> = outbound
        .iter()
        .zip(tags.iter())
        .map(|((port, _), tags)| (*port, &tags[..]))
        .collect();
    Dataplane::start_sidecar(zone, mesh, name, service, backend.port, &outbounds, extra)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()))
}

fn body_of(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    http_call(port, host, "GET", path, None).ok()
}

fn routes(foo_backend: &str) -> String {
    format!(
        "type: MeshHTTPRoute
mesh: default
name: edge-routes
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    hostnames: [foo.example.com]
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: {foo_backend}
  - targetRef:
      kind: Mesh
    hostnames: [bar.example.com]
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: api
  - targetRef:
      kind: Mesh
    hostnames: [secure.example.com]
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: web
"
    )
}

#[test]
fn gateway_routes_by_host_terminates_tls_and_follows_route_changes() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let (http, https) = (free_port().unwrap(), free_port().unwrap());

    // A server certificate from `atollctl generate tls-certificate`, stored as a mesh Secret.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let run = atollctl(
        &[
            "generate",
            "tls-certificate",
            "--type=server",
            "--hostname=secure.example.com",
            &format!("--cert-file={}", cert.display()),
            &format!("--key-file={}", key.display()),
        ],
        "",
    )
    .unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(&cert).unwrap(),
        std::fs::read_to_string(&key).unwrap()
    );
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(bundle);

    apply(
        &global,
        &format!(
            "type: Mesh
name: default
---
type: Secret
mesh: default
name: edge-cert
data: {data}
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: {http}
    protocol: HTTP
    hostname: foo.example.com
  - port: {http}
    protocol: HTTP
    hostname: bar.example.com
  - port: {https}
    protocol: HTTPS
    hostname: secure.example.com
    tls:
      mode: TERMINATE
      certificates:
      - secret: edge-cert
---
{}",
            routes("web")
        ),
    );
    synced(&zone, "/meshes/default/meshhttproutes/edge-routes");

    let web = Backend::start("web").unwrap();
    let api = Backend::start("api").unwrap();
    let (_web_dp, _) = sidecar(&zone, "default", "web-1", "web", &web, None);
    let (_api_dp, _) = sidecar(&zone, "default", "api-1", "api", &api, None);
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge").unwrap();
    gateway.wait_listener(http).unwrap();

    // Each Host reaches its own backend; an unknown Host gets 404.
    let reached = |host: &str, who: &str| {
        eventually(&format!("{host} -> {who}"), DEADLINE, || {
            body_of(http, host, "/x")
                .is_some_and(|(code, body)| code == 200 && body == format!("{who} /x"))
        })
    };
    reached("foo.example.com", "web").unwrap_or_else(|e| panic!("{e}\n{}", gateway.config_dump()));
    reached("bar.example.com", "api").unwrap();
    let (code, _) = body_of(http, "unknown.example.com", "/").unwrap();
    assert_eq!(code, 404, "an unknown Host must get 404");

    // HTTPS: the certificate is served for its SNI and verifies against itself with curl.
    gateway.wait_listener(https).unwrap();
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&cert)
        .args([
            "--resolve",
            &format!("secure.example.com:{https}:127.0.0.1"),
            &format!("https://secure.example.com:{https}/tls"),
        ])
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "web /tls");

    // A route changed on the global changes the gateway's behaviour.
    let started = Instant::now();
    apply(&global, &routes("api"));
    let took = eventually("foo.example.com -> api after the change", DEADLINE, || {
        body_of(http, "foo.example.com", "/y").is_some_and(|(_, body)| body == "api /y")
    })
    .unwrap();
    println!(
        "route change: global write to gateway behaviour in {:?} (poll every 20 ms; apply took {:?})",
        took,
        started.elapsed() - took
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(web.served() > 0 && api.served() > 0);

    // A configuration Envoy rejects (a listener on a port another process holds) is NACKed:
    // the gateway keeps serving its last good configuration and the insight says why.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    apply(
        &global,
        &format!(
            "type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: {http}
    protocol: HTTP
    hostname: foo.example.com
  - port: {http}
    protocol: HTTP
    hostname: bar.example.com
  - port: {busy_port}
    protocol: HTTP
"
        ),
    );
    let insight_path = "/meshes/default/dataplanes+insights/edge-1";
    eventually("the NACK in the gateway's insight", DEADLINE, || {
        http_get(zone.http_port, insight_path)
            .is_ok_and(|(code, body)| code == 200 && body.contains("\"lastNack\":{"))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", http_get(zone.http_port, insight_path)));
    let (_, insight) = http_get(zone.http_port, insight_path).unwrap();
    println!("insight after the NACK: {insight}");
    let (code, body) = body_of(http, "foo.example.com", "/z").unwrap();
    assert_eq!(
        (code, body.as_str()),
        (200, "api /z"),
        "the last good configuration keeps serving"
    );
    drop(busy);
}

#[test]
fn sidecars_talk_over_mesh_mtls_and_refuse_plain_text() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
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
    // The global generates the mesh CA and KDS brings it to the zone.
    synced(&zone, "/meshes/secure/secrets/ca-builtin-ca-1");

    let echo = Backend::start("echo").unwrap();
    let client_app = Backend::start("client").unwrap();
    let (_echo_dp, echo_inbound) = sidecar(&zone, "secure", "echo-1", "echo", &echo, None);
    let outbound = free_port().unwrap();
    // The client uses delta xDS, the server state of the world: both work with real Envoy.
    let (mut client_dp, _) = sidecar_with(
        &zone,
        "secure",
        "client-1",
        "client",
        &client_app,
        Some((outbound, "echo")),
        &["--delta"],
    );
    client_dp.wait_listener(outbound).unwrap();

    // The client's outbound goes to echo over mTLS.
    eventually("client -> echo through the mesh", DEADLINE, || {
        body_of(outbound, "echo", "/hello")
            .is_some_and(|(code, body)| code == 200 && body == "echo /hello")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client_dp.config_dump()));

    // Plain text to the inbound port is refused: no HTTP answer comes back.
    let plain = http_get(echo_inbound, "/hello");
    assert!(plain.is_err(), "plain text must be refused, got {plain:?}");
    let before = echo.served();

    // The inbound presents a certificate from the mesh CA naming the service.
    let s_client = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{echo_inbound} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"
        ))
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&s_client.stdout);
    assert!(san.contains("URI:spiffe://secure/echo"), "SAN: {san}");
    assert_eq!(
        echo.served(),
        before,
        "nothing without a client certificate reached echo"
    );
}

/// The serial of the certificate served on `port`.
fn served_serial(port: u16) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sends one request on a kept-alive connection and reads the response body.
fn keep_alive_get(stream: &mut std::io::BufReader<std::net::TcpStream>, path: &str) -> String {
    use std::io::{BufRead, Read, Write};
    write!(
        stream.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: echo\r\n\r\n"
    )
    .unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn workload_certificates_rotate_without_dropping_connections() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(
        &global,
        "type: Mesh
name: rotating
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    dpCert:
      rotation:
        expiration: 6s
",
    );
    synced(&zone, "/meshes/rotating/secrets/ca-builtin-ca-1");
    let echo = Backend::start("echo").unwrap();
    let client_app = Backend::start("client").unwrap();
    let (_echo_dp, echo_inbound) = sidecar(&zone, "rotating", "echo-1", "echo", &echo, None);
    let outbound = free_port().unwrap();
    let (mut client_dp, _) = sidecar(
        &zone,
        "rotating",
        "client-1",
        "client",
        &client_app,
        Some((outbound, "echo")),
    );
    client_dp.wait_listener(outbound).unwrap();
    eventually("client -> echo", DEADLINE, || {
        body_of(outbound, "echo", "/").is_some_and(|(code, _)| code == 200)
    })
    .unwrap();

    // A connection opened before the rotation...
    let stream = std::net::TcpStream::connect(("127.0.0.1", outbound)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stream = std::io::BufReader::new(stream);
    assert_eq!(keep_alive_get(&mut stream, "/before"), "echo /before");
    let first = served_serial(echo_inbound);
    assert!(first.starts_with("serial="), "{first}");

    // ...the certificate is reissued at 80% of its 6 s lifetime...
    let took = eventually("a new certificate on echo's inbound", DEADLINE, || {
        served_serial(echo_inbound) != first
    })
    .unwrap();
    println!("certificate rotated after {took:?}");

    // ...and the connection still carries requests, through the mesh.
    assert_eq!(keep_alive_get(&mut stream, "/after"), "echo /after");
    assert_eq!(
        body_of(outbound, "echo", "/new").map(|(_, b)| b).as_deref(),
        Some("echo /new")
    );
}

#[test]
fn a_cross_mesh_gateway_listener_serves_clients_of_another_mesh() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let port = free_port().unwrap();
    apply(
        &global,
        &format!(
            "type: Mesh
name: default
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
mesh: default
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
mesh: default
name: to-web
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
          name: web
"
        ),
    );
    synced(&zone, "/meshes/default/secrets/ca-builtin-ca-1");
    synced(&zone, "/meshes/other/secrets/ca-builtin-ca-1");
    let web = Backend::start("web").unwrap();
    let (_web_dp, _) = sidecar(&zone, "default", "web-1", "web", &web, None);
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge").unwrap();
    gateway.wait_listener(port).unwrap();

    // A sidecar in mesh `other` reaches the gateway of mesh `default`, mTLS both ways.
    let outbound = free_port().unwrap();
    let client_app = Backend::start("client").unwrap();
    let (mut client, _) = Dataplane::start_sidecar(
        &zone,
        "other",
        "client-1",
        "client",
        client_app.port,
        &[(
            outbound,
            &[("kuma.io/service", "edge"), ("kuma.io/mesh", "default")],
        )],
        &[],
    )
    .unwrap();
    client.wait_listener(outbound).unwrap();
    eventually(
        "mesh other -> gateway of mesh default -> web",
        DEADLINE,
        || {
            body_of(outbound, "internal.edge.default.mesh", "/cm")
                .is_some_and(|(code, body)| code == 200 && body == "web /cm")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", client.config_dump()));

    // Without a mesh certificate the listener does not answer.
    assert!(
        http_call(port, "internal.edge.default.mesh", "GET", "/", None).is_err(),
        "plain text must be refused on a crossMesh listener"
    );
}

#[test]
fn data_planes_register_again_after_a_memory_zone_restarts() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let mut zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(&global, "type: Mesh\nname: default\n");
    synced(&zone, "/meshes/default");
    let echo = Backend::start("echo").unwrap();
    let client_app = Backend::start("client").unwrap();
    let (echo_dp, _) = sidecar(&zone, "default", "echo-1", "echo", &echo, None);
    let outbound = free_port().unwrap();
    let (mut client_dp, _) = sidecar(
        &zone,
        "default",
        "client-1",
        "client",
        &client_app,
        Some((outbound, "echo")),
    );
    client_dp.wait_listener(outbound).unwrap();
    eventually("client -> echo", DEADLINE, || {
        body_of(outbound, "echo", "/").is_some_and(|(code, _)| code == 200)
    })
    .unwrap();

    // The client's Envoy must keep echo's endpoint throughout: it reconnects to the new zone
    // process before echo-1 has registered again, and a configuration computed then would
    // have no endpoint for echo.
    let mut watch = atoll_e2e::faults::invariants::Watch::new();
    watch.envoy("client-1", client_dp.admin_port, "echo");
    // echo-1's atoll-dp is frozen (its Envoy runs on), so client-1 registers again first.
    let frozen = atoll_e2e::faults::signal::Stopped::new(
        echo_dp.process.pid().expect("echo-1's atoll-dp runs"),
    )
    .unwrap();
    // The zone runs on the memory store: a crash loses every Dataplane...
    zone.crash_and_restart().unwrap();
    let registered = |dp: &str| {
        http_get(zone.http_port, &format!("/meshes/default/dataplanes/{dp}"))
            .is_ok_and(|(code, _)| code == 200)
    };
    eventually("client-1 back in the zone", DEADLINE, || {
        registered("client-1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    // While echo-1 is missing, the client's Envoy keeps echo's endpoint (the watch checks).
    std::thread::sleep(Duration::from_secs(3));
    assert!(!registered("echo-1"), "echo-1 registered while frozen");
    assert_eq!(
        body_of(outbound, "echo", "/meanwhile"),
        Some((200, "echo /meanwhile".to_string())),
        "the client lost echo while echo-1 had not registered again"
    );
    drop(frozen);
    // ...and the data planes put themselves back (atoll-dp registers again every 10 s).
    let took = eventually("both Dataplanes back in the zone", DEADLINE, || {
        ["echo-1", "client-1"].iter().all(|dp| registered(dp))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    println!("Dataplanes registered again {took:?} after the zone restarted");
    eventually("client -> echo after the restart", DEADLINE, || {
        body_of(outbound, "echo", "/again")
            .is_some_and(|(code, body)| code == 200 && body == "echo /again")
    })
    .unwrap();
    // The hold ends once registrations are quiet; after it, changes reach the proxies again.
    apply(
        &global,
        "type: MeshTimeout\nmesh: default\nname: after-restart\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 41s\n",
    );
    eventually(
        "the client's Envoy gets a policy written after the restart",
        DEADLINE,
        || client_dp.config_dump().contains("41s"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    watch
        .finish()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
}
