//! MeshExternalService end to end: a global, a zone, a real Envoy run by `atoll-dp`, and real
//! servers outside the mesh (Python `ssl` servers with a test CA, in-process HTTP/2 and gRPC
//! servers). Each outbound's success or failure is what its MeshExternalService asks for.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::cli::atollctl;
use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::external::{ExternalServer, ServerOptions, TestPki, echo};
use atoll_e2e::faults::proxy::LinkProxy;
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::grpc::{ServingStatus, health_check, health_server};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::http_get;
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

fn apply(global: &Global, yaml: &str) {
    let run = atollctl(&["--api-address", &global.api(), "apply", "-f", "-"], yaml).unwrap();
    assert_eq!(run.code, 0, "apply failed: {}{}", run.stdout, run.stderr);
}

fn synced(zone: &Zone, path: &str) {
    eventually(&format!("{path} in {}", zone.name), DEADLINE, || {
        http_get(zone.http_port, path).is_ok_and(|(code, _)| code == 200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
}

/// A PEM block indented to sit under a YAML `inlineString: |` at `indent` spaces.
fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    pem.trim_end()
        .lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A MeshExternalService on `127.0.0.1:port` (or `address`), with `tls` (YAML under
/// `tls:`, already indented by 4) and `protocol`.
fn mes(name: &str, address: &str, port: Option<u16>, protocol: &str, tls: &str) -> String {
    let port_line = port.map(|p| format!("\n    port: {p}")).unwrap_or_default();
    let tls = if tls.is_empty() {
        String::new()
    } else {
        format!("\n  tls:\n    enabled: true\n{tls}")
    };
    format!(
        "---\ntype: MeshExternalService\nmesh: default\nname: {name}\nspec:\n  match:\n    type: HostnameGenerator\n    port: 443\n    protocol: {protocol}\n  endpoints:\n  - address: {address}{port_line}{tls}\n"
    )
}

/// A sidecar for `app` with one outbound per MeshExternalService name; returns it and the
/// outbound port of each name, in order.
fn sidecar(
    zone: &Zone,
    name: &str,
    app: &Backend,
    services: &[&str],
    extra: &[&str],
) -> (Dataplane, Vec<u16>) {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let ports: Vec<u16> = services.iter().map(|_| free_port().unwrap()).collect();
    let mut yaml = format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {}\n    tags:\n      kuma.io/service: {name}\n  outbound:\n",
        app.port
    );
    for (service, port) in services.iter().zip(&ports) {
        yaml.push_str(&format!(
            "  - port: {port}\n    backendRef:\n      kind: MeshExternalService\n      name: {service}\n"
        ));
    }
    let dp = Dataplane::start_with(zone, name, &yaml, admin, extra)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    (dp, ports)
}

fn mesh_and_zone() -> (Global, Zone) {
    let global = Global::start(GlobalOptions::default()).unwrap();
    apply(&global, "type: Mesh\nname: default\n");
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    synced(&zone, "/meshes/default");
    (global, zone)
}

/// Waits until an echo through `port` works (`true`) or keeps failing (`false`) — a failure
/// is only believed once the outbound exists, i.e. the same sidecar already serves others.
fn echo_works(port: u16) -> bool {
    echo(port, "echo this\n").is_ok_and(|got| got == "echo this\n")
}

#[test]
fn tls_origination_follows_each_verification_mode() {
    let (global, zone) = mesh_and_zone();
    let pki = TestPki::new("external test CA").unwrap();
    let rogue = TestPki::new("someone else's CA").unwrap();
    let server = |label: &str, pki: &TestPki, hosts: &[&str], tweak: fn(&mut ServerOptions)| {
        let mut options = ServerOptions {
            mode: "echo",
            name: label.into(),
            tls: Some(pki.server(label, hosts).unwrap()),
            ..Default::default()
        };
        tweak(&mut options);
        ExternalServer::start(options).unwrap()
    };
    let good = server("good", &pki, &["ext.test"], |_| {});
    let wrong_ca = server("wrong-ca", &rogue, &["ext.test"], |_| {});
    let wrong_san = server("wrong-san", &pki, &["other.test"], |_| {});
    let old = server("old", &pki, &["ext.test"], |o| o.max_tls = Some("1.2"));
    let client_ca = pki.ca_file().unwrap();
    // The server that requires a client certificate from the test CA.
    let mtls = ExternalServer::start(ServerOptions {
        mode: "echo",
        name: "mtls".into(),
        tls: Some(pki.server("mtls", &["ext.test"]).unwrap()),
        client_ca: Some(client_ca.clone()),
        ..Default::default()
    })
    .unwrap();
    let (client_cert, client_key) = pki.client().unwrap();
    let ca = block(pki.ca_pem(), 10);
    let verify = |extra: &str| {
        format!(
            "    verification:\n      serverName: ext.test\n      caCert:\n        inlineString: |\n{ca}\n{extra}"
        )
    };
    // (name, server port, tls, expected to work)
    let cases: Vec<(&str, u16, String, bool)> = vec![
        ("secured", good.port, verify(""), true),
        ("secured-wrong-ca", wrong_ca.port, verify(""), false),
        ("secured-wrong-san", wrong_san.port, verify(""), false),
        (
            "skipsan-wrong-san",
            wrong_san.port,
            verify("      mode: SkipSAN\n"),
            true,
        ),
        (
            "skipca-wrong-ca",
            wrong_ca.port,
            verify("      mode: SkipCA\n"),
            true,
        ),
        // Envoy's accept-untrusted lets a SAN mismatch through as well, as in Kuma
        // (docs/external-services.md says so): SkipCA skips all of the check.
        (
            "skipca-wrong-san",
            wrong_san.port,
            verify("      mode: SkipCA\n"),
            true,
        ),
        (
            "skipall",
            wrong_ca.port,
            "    verification:\n      mode: SkipAll\n".into(),
            true,
        ),
        (
            "san-prefix",
            good.port,
            verify("      subjectAltNames:\n      - type: Prefix\n        value: ext.\n"),
            true,
        ),
        (
            "san-exact-other",
            good.port,
            verify("      subjectAltNames:\n      - type: Exact\n        value: nope.test\n"),
            false,
        ),
        ("tls12-server", old.port, verify(""), true),
        (
            "needs-tls13",
            old.port,
            format!("    version:\n      min: TLS13\n{}", verify("")),
            false,
        ),
        ("no-client-cert", mtls.port, verify(""), false),
        (
            "client-cert",
            mtls.port,
            verify(&format!(
                "      clientCert:\n        inlineString: |\n{}\n      clientKey:\n        inlineString: |\n{}\n",
                block(&client_cert, 10),
                block(&client_key, 10)
            )),
            true,
        ),
        (
            "system-ca",
            good.port,
            "    verification:\n      serverName: ext.test\n".into(),
            true,
        ),
    ];
    let resources: String = cases
        .iter()
        .map(|(name, port, tls, _)| mes(name, "127.0.0.1", Some(*port), "tcp", tls))
        .collect();
    apply(&global, &resources);
    for (name, ..) in &cases {
        synced(
            &zone,
            &format!("/meshes/default/meshexternalservices/{name}"),
        );
    }
    let app = Backend::start("app").unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let ca_path = client_ca.display().to_string();
    let (dp, ports) = sidecar(
        &zone,
        "client",
        &app,
        &names,
        &["--system-ca-path", &ca_path],
    );
    // Every outbound answers first (the listener exists), then each is judged.
    for ((name, _, _, works), port) in cases.iter().zip(&ports) {
        if *works {
            eventually(&format!("{name} works"), DEADLINE, || echo_works(*port))
                .unwrap_or_else(|e| panic!("{e}\n{}", dp.process.log_tail(40)));
        }
    }
    for ((name, _, _, works), port) in cases.iter().zip(&ports) {
        if !*works {
            assert!(
                !echo_works(*port),
                "{name} must fail: its server's certificate or version does not pass"
            );
        }
    }
    // Key material reached Envoy only as SDS secrets, never inside a cluster.
    let dump = dp.config_dump();
    let clusters = dump
        .split("\"dynamic_active_secrets\"")
        .next()
        .unwrap_or_default();
    assert!(
        !clusters.contains("PRIVATE KEY"),
        "no key inline in listeners or clusters"
    );
}

/// An HTTP/2-only server (prior knowledge, no HTTP/1.1): answers `h2 <path>`.
fn start_h2_server(runtime: &tokio::runtime::Runtime) -> u16 {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = format!("{:?} {}", req.version(), req.uri().path());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    port
}

#[test]
fn protocols_endpoint_kinds_and_the_mesh_switch() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (global, zone) = mesh_and_zone();
    let tcp = ExternalServer::start(ServerOptions {
        mode: "echo",
        name: "tcp".into(),
        ..Default::default()
    })
    .unwrap();
    let http = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "http".into(),
        ..Default::default()
    })
    .unwrap();
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("app.sock");
    let _unix = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "unix".into(),
        unix: Some(socket.clone()),
        ..Default::default()
    })
    .unwrap();
    let h2 = start_h2_server(&runtime);
    let grpc = health_server(&runtime, "external", ServingStatus::Serving).unwrap();
    let resources = [
        mes("tcp", "127.0.0.1", Some(tcp.port), "tcp", ""),
        // A DNS name, resolved by Envoy.
        mes("http-dns", "localhost", Some(http.port), "http", ""),
        mes(
            "unix",
            &format!("unix://{}", socket.display()),
            None,
            "http",
            "",
        ),
        mes("h2", "127.0.0.1", Some(h2), "http2", ""),
        mes("grpc", "127.0.0.1", Some(grpc), "grpc", ""),
    ]
    .concat();
    apply(&global, &resources);
    for name in ["tcp", "http-dns", "unix", "h2", "grpc"] {
        synced(
            &zone,
            &format!("/meshes/default/meshexternalservices/{name}"),
        );
    }
    let app = Backend::start("app").unwrap();
    let (dp, ports) = sidecar(
        &zone,
        "client",
        &app,
        &["tcp", "http-dns", "unix", "h2", "grpc"],
        &[],
    );
    let [tcp_out, http_out, unix_out, h2_out, grpc_out] = ports[..] else {
        unreachable!()
    };
    let log = || dp.process.log_tail(40);
    eventually("tcp echo", DEADLINE, || echo_works(tcp_out))
        .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    eventually("http via a DNS name", DEADLINE, || {
        http_get(http_out, "/hello").is_ok_and(|(c, b)| c == 200 && b == "external http /hello")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    eventually("http over a unix socket", DEADLINE, || {
        http_get(unix_out, "/sock").is_ok_and(|(c, b)| c == 200 && b == "external unix /sock")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    // The application speaks HTTP/1.1; the server only HTTP/2: Envoy upgraded upstream.
    eventually("http/2 upstream", DEADLINE, || {
        http_get(h2_out, "/two").is_ok_and(|(c, b)| c == 200 && b == "HTTP/2.0 /two")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    eventually("grpc", DEADLINE, || {
        health_check(&runtime, grpc_out, "external") == Ok(1)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{:?}\n{}",
            health_check(&runtime, grpc_out, "external"),
            log()
        )
    });

    // The Mesh switch: every external service becomes unreachable.
    apply(
        &global,
        "type: Mesh\nname: default\nrouting:\n  defaultForbidMeshExternalServiceAccess: true\n",
    );
    eventually("external traffic forbidden", DEADLINE, || {
        !echo_works(tcp_out)
            && http_get(http_out, "/").is_err()
            && health_check(&runtime, grpc_out, "external").is_err()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    let insight = http_get(zone.http_port, "/meshes/default/dataplanes+insights/client")
        .unwrap()
        .1;
    assert!(
        insight.contains("forbids traffic to external services"),
        "the insight says why: {insight}"
    );
}

/// A DNS query for `name` (type A) to `127.0.0.1:port`; the first A record's address.
fn resolve(port: u16, name: &str) -> Option<Ipv4Addr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket
        .send_to(&query, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .ok()?;
    let mut answer = [0u8; 512];
    let n = socket.recv(&mut answer).ok()?;
    let answers = u16::from_be_bytes([answer[6], answer[7]]);
    (answers > 0 && n >= 4)
        .then(|| Ipv4Addr::new(answer[n - 4], answer[n - 3], answer[n - 2], answer[n - 1]))
}

fn status_of(zone: &Zone, name: &str) -> serde_json::Value {
    let (_, body) = http_get(
        zone.http_port,
        &format!("/meshes/default/meshexternalservices/{name}"),
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["status"].clone()
}

#[test]
fn hostnames_and_vips_are_stable_and_answered_by_the_sidecar_dns() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    apply(&global, "type: Mesh\nname: default\n");
    let kds = LinkProxy::start(&[SocketAddr::from(([127, 0, 0, 1], global.kds_port))]).unwrap();
    // The zone on PostgreSQL, so a restart keeps its store and a write would show.
    let postgres = TempPostgres::start().unwrap();
    let mut zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            kds_port: Some(kds.port),
            env: [
                ("KUMA_STORE_TYPE".to_string(), "postgres".to_string()),
                ("KUMA_STORE_POSTGRES_URL".to_string(), postgres.url()),
            ]
            .into(),
            ..Default::default()
        },
    )
    .unwrap();
    synced(&zone, "/meshes/default");
    apply(
        &global,
        &format!(
            "type: HostnameGenerator\nname: global-extsvc\nspec:\n  selector:\n    meshExternalService:\n      matchLabels:\n        kuma.io/origin: global\n  template: '{{{{ .DisplayName }}}}.extsvc.mesh.local'\n{}{}",
            mes("httpbin", "127.0.0.1", Some(8080), "http", ""),
            mes("tcpbin", "127.0.0.1", Some(4242), "tcp", "")
        ),
    );
    synced(&zone, "/meshes/default/meshexternalservices/tcpbin");
    let mut status = serde_json::Value::Null;
    eventually("status with a hostname and a VIP", DEADLINE, || {
        status = status_of(&zone, "httpbin");
        status["addresses"][0]["hostname"] == "httpbin.extsvc.mesh.local"
    })
    .unwrap_or_else(|e| panic!("{e}: {status}"));
    let vip = status["vip"]["ip"].as_str().unwrap().to_string();
    assert!(vip.starts_with("242."), "from 242.0.0.0/8: {vip}");
    assert_eq!(
        status["hostnameGenerators"][0]["conditions"][0]["status"],
        "True"
    );
    assert_ne!(
        status_of(&zone, "tcpbin")["vip"],
        status["vip"],
        "one VIP each"
    );

    let app = Backend::start("app").unwrap();
    let dns_port = free_port().unwrap();
    let (dp, _) = sidecar(
        &zone,
        "client",
        &app,
        &["httpbin"],
        &["--dns-port", &dns_port.to_string()],
    );
    eventually("the sidecar answers DNS with the VIP", DEADLINE, || {
        resolve(dns_port, "httpbin.extsvc.mesh.local").map(|ip| ip.to_string()) == Some(vip.clone())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", dp.process.log_tail(40)));

    // What the zone stores for the service does not change: the status is computed on read.
    let stored = |zone: &Zone| {
        let (_, body) = http_get(
            zone.http_port,
            "/meshes/default/meshexternalservices/httpbin",
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        value["modificationTime"].clone()
    };
    let modified = stored(&zone);
    assert!(
        modified.is_string(),
        "the zone shows when it last wrote the service"
    );
    kds.cut_existing();
    eventually("KDS reconnected", DEADLINE, || kds.connections() >= 2).unwrap();
    zone.process.restart().unwrap();
    zone.process
        .wait_http_ok(
            zone.http_port,
            "/meshes/default/meshexternalservices/httpbin",
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    eventually(
        "the same VIP after a KDS cut and a restart",
        DEADLINE,
        || status_of(&zone, "httpbin")["vip"]["ip"] == vip.as_str(),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", status_of(&zone, "httpbin")));
    assert_eq!(stored(&zone), modified, "no write to the stored service");
    eventually("DNS still answers the same VIP", DEADLINE, || {
        resolve(dns_port, "httpbin.extsvc.mesh.local").map(|ip| ip.to_string()) == Some(vip.clone())
    })
    .unwrap();
}

/// A zone egress run by `atoll-dp` (Envoy): the sidecar sends external traffic to it over
/// mesh mTLS, and the egress originates the external TLS with a client certificate the
/// sidecar never sees. Without an egress, the traffic is not sent at all.
#[test]
fn through_the_zone_egress_the_client_certificate_stays_on_the_egress() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    apply(
        &global,
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\nrouting:\n  zoneEgress: true\n",
    );
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    synced(&zone, "/meshes/default/secrets/ca-builtin-ca-1");
    let pki = TestPki::new("external test CA").unwrap();
    let mtls = ExternalServer::start(ServerOptions {
        mode: "echo",
        name: "mtls".into(),
        tls: Some(pki.server("mtls", &["ext.test"]).unwrap()),
        client_ca: Some(pki.ca_file().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let http = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "http".into(),
        ..Default::default()
    })
    .unwrap();
    let (client_cert, client_key) = pki.client().unwrap();
    let tls = format!(
        "    verification:\n      serverName: ext.test\n      caCert:\n        inlineString: |\n{}\n      clientCert:\n        inlineString: |\n{}\n      clientKey:\n        inlineString: |\n{}\n",
        block(pki.ca_pem(), 10),
        block(&client_cert, 10),
        block(&client_key, 10)
    );
    apply(
        &global,
        &[
            mes("secure", "127.0.0.1", Some(mtls.port), "tcp", &tls),
            mes("plain-http", "127.0.0.1", Some(http.port), "http", ""),
        ]
        .concat(),
    );
    synced(&zone, "/meshes/default/meshexternalservices/plain-http");

    let app = Backend::start("app").unwrap();
    let (client, ports) = sidecar(&zone, "client", &app, &["secure", "plain-http"], &[]);
    let [secure_out, http_out] = ports[..] else {
        unreachable!()
    };
    let insight = || {
        http_get(zone.http_port, "/meshes/default/dataplanes+insights/client")
            .map(|(_, b)| b)
            .unwrap_or_default()
    };
    eventually(
        "the sidecar reports that no egress exists",
        DEADLINE,
        || insight().contains("has no egress run by atoll-dp"),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", insight()));
    assert!(
        !echo_works(secure_out),
        "no egress: nothing leaves the mesh"
    );

    let (egress_port, egress_admin) = (free_port().unwrap(), free_port().unwrap());
    let token = global.zone_token("zone-1", "egress").unwrap();
    let mut egress = Dataplane::launch(
        &zone,
        "egress-1",
        &format!(
            "type: ZoneEgress\nname: egress-1\nnetworking:\n  address: 127.0.0.1\n  port: {egress_port}\n  admin:\n    port: {egress_admin}\n"
        ),
        &[],
        atoll_e2e::dataplane::Credential::Token(token),
    )
    .unwrap();
    egress.admin_port = egress_admin;
    let log = |dp: &Dataplane| dp.process.log_tail(40);
    eventually("mTLS echo through the egress", DEADLINE, || {
        echo_works(secure_out)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", log(&client), log(&egress)));
    eventually("HTTP through the egress", DEADLINE, || {
        http_get(http_out, "/via").is_ok_and(|(c, b)| c == 200 && b == "external http /via")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log(&egress)));

    // The external client certificate is on the egress only.
    let marker = client_cert
        .lines()
        .nth(1)
        .expect("a PEM body line")
        .to_string();
    let client_dump = http_get(client.admin_port, "/config_dump?include_eds&mask=configs")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert!(!client_dump.is_empty());
    let client_secrets = client.config_dump();
    assert!(
        !client_secrets.contains(&marker) && !client_secrets.contains("mes_client"),
        "the sidecar never holds the external client certificate"
    );
    let egress_dump = egress.config_dump();
    assert!(
        egress_dump.contains("mes_client:default:secure"),
        "the egress holds it"
    );

    // The egress going away takes the external traffic with it: fail closed.
    drop(egress);
    eventually("no egress, no external traffic", DEADLINE, || {
        !echo_works(secure_out)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log(&client)));
}

/// MeshExternalService as a route backend: on a built-in gateway, and on a sidecar's outbound
/// to a mesh service, where one path goes outside the mesh and the rest stays in.
#[test]
fn route_backends_reach_external_services_from_gateways_and_sidecars() {
    let (global, zone) = mesh_and_zone();
    let http = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "http".into(),
        ..Default::default()
    })
    .unwrap();
    let gateway_port = free_port().unwrap();
    apply(
        &global,
        &format!(
            "{}---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: {gateway_port}
    protocol: HTTP
---
type: MeshHTTPRoute
mesh: default
name: edge-to-external
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
        - kind: MeshExternalService
          name: httpbin
---
type: MeshHTTPRoute
mesh: default
name: web-ext-path
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
          value: /ext
      default:
        backendRefs:
        - kind: MeshExternalService
          name: httpbin
",
            mes("httpbin", "127.0.0.1", Some(http.port), "http", "")
        ),
    );
    synced(&zone, "/meshes/default/meshhttproutes/web-ext-path");
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge").unwrap();
    gateway
        .wait_listener(gateway_port)
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.process.log_tail(40)));
    eventually(
        "the gateway routes to the external service",
        DEADLINE,
        || http_get(gateway_port, "/gw").is_ok_and(|(c, b)| c == 200 && b == "external http /gw"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.process.log_tail(40)));

    let web = Backend::start("web").unwrap();
    let (_web_dp, _) =
        Dataplane::start_sidecar(&zone, "default", "web-1", "web", web.port, &[], &[]).unwrap();
    let client_app = Backend::start("client").unwrap();
    let out = free_port().unwrap();
    let (client, _) = Dataplane::start_sidecar(
        &zone,
        "default",
        "client-1",
        "client",
        client_app.port,
        &[(out, &[("kuma.io/service", "web")])],
        &[],
    )
    .unwrap();
    eventually(
        "/ext leaves the mesh, the rest reaches web",
        DEADLINE,
        || {
            http_get(out, "/ext/a").is_ok_and(|(c, b)| c == 200 && b == "external http /ext/a")
                && http_get(out, "/other").is_ok_and(|(c, b)| c == 200 && b == "web /other")
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", client.process.log_tail(40)));
}
