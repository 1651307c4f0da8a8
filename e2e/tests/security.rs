//! The trust boundary, attacked with real processes: a global, a zone, real Envoys run by
//! `atoll-dp`, and hand-made clients speaking the DP server's HTTP and gRPC as an attacker
//! would. Every bad credential is refused with a reason, writes nothing, and gets no key
//! material; the ingress is never an open relay.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::{Credential, Dataplane, sidecar_yaml};
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::ingress::Ingress;
use atoll_e2e::process::{http_call_with, http_get, http_request};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use base64::Engine;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;

const DEADLINE: Duration = Duration::from_secs(30);
const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

const MESH: &str = "type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
";

fn put(global: &Global, path: &str, json: &str) {
    let (code, body) = http_request(global.http_port, "PUT", path, Some(json)).unwrap();
    assert!(code == 200 || code == 201, "PUT {path}: {code} {body}");
}

/// A global and a zone with an mTLS mesh whose CA and token signing key reached the zone.
fn secure_zone(zone_options: ZoneOptions) -> (Global, Zone) {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let mesh = atoll_model::parse_documents(MESH)
        .remove(0)
        .outcome
        .unwrap();
    put(
        &global,
        "/meshes/default",
        &atoll_model::encode_value(&mesh).to_string(),
    );
    let zone = Zone::start("zone-1", &global, zone_options).unwrap();
    eventually("the mesh CA in the zone", DEADLINE, || {
        http_get(zone.http_port, "/meshes/default/secrets/ca-builtin-ca-1")
            .is_ok_and(|(c, _)| c == 200)
    })
    .unwrap();
    // The mesh's token signing key has reached the zone once the zone can issue a token: only
    // then is a token signed elsewhere told apart from one the zone merely does not know yet.
    zone.dataplane_token("default", None, &[], "dataplane")
        .unwrap();
    (global, zone)
}

fn dp_client(zone: &Zone) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(zone.dp_ca()).unwrap();
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(atoll_tls::client_config(&ca, "dp ca").unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a registration got: the status, and the error text or `bootstrap (N bytes)`.
fn register(zone: &Zone, token: Option<&str>, yaml: &str) -> (u16, String) {
    let body = serde_json::json!({
        "dataplane": yaml,
        "xdsHost": "127.0.0.1",
        "xdsPort": zone.dp_port,
        "caCert": std::fs::read_to_string(zone.dp_ca()).unwrap(),
    });
    let mut request = dp_client(zone)
        .post(format!("https://127.0.0.1:{}/bootstrap", zone.dp_port))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().unwrap();
    let text = if status == 200 {
        format!("bootstrap ({} bytes)", bytes.len())
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (status, text)
}

fn yaml(name: &str, service: &str) -> String {
    sidecar_yaml("default", name, service, (9901, 20001, 20002), &[])
}

fn gateway_yaml(name: &str) -> String {
    atoll_e2e::dataplane::gateway_yaml("default", name, "edge", 9901)
}

/// Whether the zone stored Dataplane `name`.
fn stored(zone: &Zone, name: &str) -> bool {
    http_get(
        zone.http_port,
        &format!("/meshes/default/dataplanes/{name}"),
    )
    .is_ok_and(|(c, _)| c == 200)
}

/// Asserts a refusal with `status` whose text names `why`, that wrote nothing and handed out
/// no key material.
fn refused(zone: &Zone, (status, text): (u16, String), expected: u16, why: &str, name: &str) {
    assert_eq!(status, expected, "{text}");
    assert!(text.contains(why), "the refusal must say {why:?}: {text}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains("bootstrap"));
    assert!(!stored(zone, name), "{name} must not be stored");
}

/// Registers `name` with `token` until the zone refuses it with 401 (a revocation or an expiry
/// on its way), removing what each accepted attempt stored; returns the refusal.
fn register_until_refused(zone: &Zone, token: &str, yaml: &str, name: &str) -> (u16, String) {
    let mut last = (0, String::new());
    eventually(
        &format!("the zone to refuse {name}'s token"),
        DEADLINE,
        || {
            last = register(zone, Some(token), yaml);
            if last.0 == 200 {
                let path = format!("/meshes/default/dataplanes/{name}");
                let (code, body) = http_request(zone.http_port, "DELETE", &path, None).unwrap();
                assert_eq!(code, 200, "{body}");
            }
            last.0 == 401
        },
    )
    .unwrap();
    last
}

fn jti(token: &str) -> String {
    let decoded = atoll_auth::jwt::decode(token).unwrap();
    decoded.claims["jti"].as_str().unwrap().to_string()
}

/// Lists `jtis` as revoked in mesh `default` (on the global, which syncs it to zones).
fn revoke(global: &Global, jtis: &[&str]) {
    let data = base64::engine::general_purpose::STANDARD.encode(jtis.join(","));
    put(
        global,
        "/meshes/default/secrets/dataplane-token-revocations-default",
        &serde_json::json!({"type": "Secret", "mesh": "default", "name": "dataplane-token-revocations-default", "data": data}).to_string(),
    );
}

/// A token for `web-1` signed by a key the control plane has never seen, with the kid of the
/// real key.
fn foreign_token() -> String {
    let key = atoll_auth::keys::generate_pem().unwrap();
    let keyring = atoll_auth::Keyring::build([atoll_auth::keyring::SecretEntry {
        kind: atoll_model::Kind::Secret,
        mesh: Some("default"),
        name: "dataplane-token-signing-key-default-1",
        data: key.as_bytes(),
    }]);
    keyring
        .issue(
            &atoll_auth::Purpose::Dataplane("default".into()),
            &atoll_auth::DataplaneClaims {
                name: "web-1".into(),
                mesh: "default".into(),
                tags: Default::default(),
                proxy_type: atoll_auth::ProxyType::Dataplane,
                standard: atoll_auth::Standard::new(
                    atoll_auth::unix_now(),
                    Duration::from_secs(3600),
                ),
            },
        )
        .unwrap()
}

#[test]
fn registrations_with_bad_credentials_are_refused_and_write_nothing() {
    let (global, zone) = secure_zone(ZoneOptions::default());
    let web = |name: Option<&str>| {
        zone.dataplane_token("default", name, &[("kuma.io/service", "web")], "dataplane")
            .unwrap()
    };

    refused(
        &zone,
        register(&zone, None, &yaml("web-1", "web")),
        401,
        "a data plane token is required",
        "web-1",
    );
    refused(
        &zone,
        register(&zone, Some("garbage"), &yaml("web-1", "web")),
        401,
        "malformed",
        "web-1",
    );
    refused(
        &zone,
        register(&zone, Some(&foreign_token()), &yaml("web-1", "web")),
        401,
        "signature does not verify",
        "web-1",
    );
    refused(
        &zone,
        register(&zone, Some(&web(None)), &yaml("backend-1", "backend")),
        403,
        "kuma.io/service=backend is not allowed",
        "backend-1",
    );
    refused(
        &zone,
        register(&zone, Some(&web(Some("web-2"))), &yaml("web-1", "web")),
        403,
        "web-2",
        "web-1",
    );
    refused(
        &zone,
        register(&zone, Some(&web(None)), &gateway_yaml("edge-1")),
        403,
        "--type gateway",
        "edge-1",
    );
    let zone_token = global.zone_token("zone-1", "ingress").unwrap();
    refused(
        &zone,
        register(&zone, Some(&zone_token), &yaml("web-1", "web")),
        401,
        "this is a zone token",
        "web-1",
    );

    // Expired: a token valid for one second, tried until it is refused as expired.
    let body = serde_json::json!({"mesh": "default", "validFor": "1s"}).to_string();
    let short = atoll_e2e::zone::issue_token(zone.http_port, "/tokens/dataplane", &body).unwrap();
    let last = register_until_refused(&zone, &short, &yaml("short-1", "short"), "short-1");
    refused(&zone, last, 401, "expired", "short-1");

    // Revoked, by its jti, on the global: refused in the zone once the list arrives.
    let revoked = web(Some("web-3"));
    assert_eq!(
        register(&zone, Some(&revoked), &yaml("web-3", "web")).0,
        200,
        "valid before revocation"
    );
    http_request(
        zone.http_port,
        "DELETE",
        "/meshes/default/dataplanes/web-3",
        None,
    )
    .unwrap();
    revoke(&global, &[&jti(&revoked)]);
    let last = register_until_refused(&zone, &revoked, &yaml("web-3", "web"), "web-3");
    refused(&zone, last, 401, "revoked", "web-3");

    // The right token registers, and the same token cannot deregister another proxy.
    let (status, text) = register(&zone, Some(&web(Some("web-1"))), &yaml("web-1", "web"));
    assert_eq!(status, 200, "{text}");
    assert!(stored(&zone, "web-1"));
    let backend_token = zone
        .dataplane_token(
            "default",
            None,
            &[("kuma.io/service", "backend")],
            "dataplane",
        )
        .unwrap();
    let delete = dp_client(&zone)
        .delete(format!(
            "https://127.0.0.1:{}/dataplanes/default/web-1",
            zone.dp_port
        ))
        .bearer_auth(&backend_token)
        .send()
        .unwrap();
    assert_eq!(delete.status().as_u16(), 403, "{}", delete.text().unwrap());
    assert!(
        stored(&zone, "web-1"),
        "another service's token must not deregister web-1"
    );
    let anonymous = dp_client(&zone)
        .delete(format!(
            "https://127.0.0.1:{}/dataplanes/default/web-1",
            zone.dp_port
        ))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(stored(&zone, "web-1"));

    // A data plane token is no API credential.
    let dp_token = web(Some("web-1"));
    let (code, text) = http_call_with(
        global.http_port,
        "127.0.0.1",
        "PUT",
        "/meshes/intruder",
        Some(r#"{"type":"Mesh","name":"intruder"}"#),
        &[("Authorization", &format!("Bearer {dp_token}"))],
    )
    .unwrap();
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("dataplane token"), "{text}");
}

/// Opens an ADS stream as `node_id` with `token` (no first request at all without a node
/// id); the first response, or the status that ended the stream, or `None` when nothing came
/// within a few seconds.
async fn ads(
    zone: &Zone,
    token: Option<&str>,
    node_id: Option<&str>,
) -> Result<Option<usize>, tonic::Status> {
    let ca = std::fs::read_to_string(zone.dp_ca()).unwrap();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", zone.dp_port))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await
            .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    if let Some(node_id) = node_id {
        tx.send(DiscoveryRequest {
            node: Some(Node {
                id: node_id.into(),
                ..Default::default()
            }),
            type_url: CLUSTER.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut stream = AggregatedDiscoveryServiceClient::new(channel)
        .stream_aggregated_resources(request)
        .await?
        .into_inner();
    let outcome = match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
        Ok(Ok(Some(response))) => Ok(Some(response.resources.len())),
        Ok(Ok(None)) | Err(_) => Ok(None),
        Ok(Err(status)) => Err(status),
    };
    drop(tx);
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_streams_serve_only_the_proxy_their_token_admits() {
    let (_global, zone) = tokio::task::block_in_place(|| secure_zone(ZoneOptions::default()));
    let (web, payments, any_web) = tokio::task::block_in_place(|| {
        let token = |name: Option<&str>, service: &str| {
            zone.dataplane_token(
                "default",
                name,
                &[("kuma.io/service", service)],
                "dataplane",
            )
            .unwrap()
        };
        let web = token(Some("web-1"), "web");
        let payments = token(Some("payments-1"), "payments");
        assert_eq!(register(&zone, Some(&web), &yaml("web-1", "web")).0, 200);
        assert_eq!(
            register(&zone, Some(&payments), &yaml("payments-1", "payments")).0,
            200
        );
        (web, payments, token(None, "web"))
    });

    // The right token for the right proxy gets its configuration: the attack below could
    // succeed if the server did not check.
    let served = ads(&zone, Some(&web), Some("default.web-1")).await.unwrap();
    assert!(served.is_some_and(|n| n > 0), "web-1 gets its clusters");

    let status = ads(&zone, None, Some("default.web-1")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    // Without a token the stream is refused before its first request is read: nobody can
    // hold one open by never sending anything.
    let status = ads(&zone, None, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    let status = ads(&zone, Some("not-a-token"), None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    // A data plane token is no zone egress credential.
    let status = ads(&zone, Some(&web), Some(".egress-1")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    assert!(status.message().contains("zone token"), "{status}");
    let status = ads(&zone, Some(&web), Some("default.payments-1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    assert!(status.message().contains("payments-1"), "{status}");
    // A token for any `web` proxy opening the stream of the registered payments proxy: the
    // name is not pinned, but the proxy's Dataplane is checked before anything is sent.
    let status = ads(&zone, Some(&any_web), Some("default.payments-1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    assert!(
        status.message().contains("kuma.io/service=payments"),
        "{status}"
    );
    // Its own token opens it.
    assert!(
        ads(&zone, Some(&payments), Some("default.payments-1"))
            .await
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_token_revoked_while_its_proxy_runs_is_refused_at_the_next_connect() {
    let (global, zone) = secure_zone(ZoneOptions::default());
    let app = Backend::start("web").unwrap();
    let (dp, _inbound) =
        Dataplane::start_sidecar(&zone, "default", "web-1", "web", app.port, &[], &[]).unwrap();
    let token = std::fs::read_to_string(dp.dir().join("token")).unwrap();
    revoke(&global, &[&jti(&token)]);
    eventually("the revocation to reach the zone", DEADLINE, || {
        register(&zone, Some(&token), &yaml("web-1", "web")).0 == 401
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime
        .block_on(ads(&zone, Some(&token), Some("default.web-1")))
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    assert!(status.message().contains("revoked"), "{status}");
    // The running Envoy keeps its configuration until it reconnects.
    assert_eq!(http_get(dp.admin_port, "/ready").unwrap().0, 200);
}

/// Sends a ClientHello for `sni` to the ingress and reports whether `backend` then received a
/// connection.
fn through_ingress(ingress: u16, sni: &str, listener: &std::net::TcpListener) -> bool {
    let mut client = TcpStream::connect(("127.0.0.1", ingress)).unwrap();
    client
        .write_all(&atoll_e2e::tls::client_hello(sni))
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if listener.accept().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Refused: the ingress closes the connection without a byte.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(client.read(&mut buf), Ok(0) | Err(_)));
    false
}

#[test]
fn the_ingress_is_never_an_open_relay() {
    let (global, zone) = secure_zone(ZoneOptions {
        ingress: true,
        ..Default::default()
    });
    put(
        &global,
        "/meshes/plain",
        r#"{"type":"Mesh","name":"plain"}"#,
    );
    let secure_app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dataplane = |mesh: &str, name: &str, port: u16| {
        format!(
            "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: {port}\n    tags:\n      kuma.io/service: web\n"
        )
    };
    let secure_port = secure_app.local_addr().unwrap().port();
    let plain_port = plain_app.local_addr().unwrap().port();
    let token = zone
        .dataplane_token("default", Some("web-1"), &[], "dataplane")
        .unwrap();
    assert_eq!(
        register(
            &zone,
            Some(&token),
            &dataplane("default", "web-1", secure_port)
        )
        .0,
        200
    );
    let plain_token = zone
        .dataplane_token("plain", Some("web-1"), &[], "dataplane")
        .unwrap();
    assert_eq!(
        register(
            &zone,
            Some(&plain_token),
            &dataplane("plain", "web-1", plain_port)
        )
        .0,
        200
    );
    let ingress = zone.ingress_port.unwrap();

    // An admitted Dataplane in an mTLS mesh is reachable by its SNI.
    let mut reached = false;
    eventually("web in the ingress table", DEADLINE, || {
        reached = through_ingress(ingress, "web.any.default.atoll", &secure_app);
        reached
    })
    .unwrap();
    // The same service in a mesh without mTLS is not: the ingress would be a plaintext relay.
    assert!(!through_ingress(ingress, "web.any.plain.atoll", &plain_app));
    // Names nothing admitted serves: an address, the control plane, another mesh.
    for sni in [
        "127.0.0.1",
        "localhost",
        "api.any.default.atoll",
        "web.any.other.atoll",
    ] {
        assert!(
            !through_ingress(ingress, sni, &secure_app),
            "{sni} must not be routed"
        );
    }

    // A separate ingress without a zone token learns nothing and advertises nothing.
    let rogue = Ingress::start_with(&zone, None, "10.6.6.6").unwrap();
    eventually("the rogue ingress to be refused", DEADLINE, || {
        rogue
            .process
            .log_tail(50)
            .contains("zone token with scope ingress is required")
    })
    .unwrap();
    assert!(!through_ingress(
        rogue.port,
        "web.any.default.atoll",
        &secure_app
    ));
    let (_, ingresses) = http_get(global.http_port, "/zoneingresses").unwrap();
    assert!(!ingresses.contains("10.6.6.6"), "{ingresses}");
}

#[test]
fn atoll_dp_with_a_bad_token_stops_and_says_why() {
    let (_global, zone) = secure_zone(ZoneOptions::default());
    for (credential, why) in [
        (Credential::Without, "a data plane token is required"),
        (
            Credential::Token(foreign_token()),
            "signature does not verify",
        ),
    ] {
        let mut dp =
            Dataplane::launch(&zone, "web-1", &yaml("web-1", "web"), &[], credential).unwrap();
        eventually("atoll-dp to give up", DEADLINE, || {
            dp.process.check_alive().is_err()
        })
        .unwrap();
        let log = dp.process.log_tail(50);
        assert!(log.contains(why), "atoll-dp must say {why:?}:\n{log}");
        assert!(!stored(&zone, "web-1"));
    }
}

#[test]
fn a_new_signing_key_signs_new_tokens_and_old_ones_last_until_their_key_is_deleted() {
    let (global, zone) = secure_zone(ZoneOptions::default());
    let issue = || {
        zone.dataplane_token("default", Some("web-1"), &[], "dataplane")
            .unwrap()
    };
    let kid = |token: &str| atoll_auth::jwt::decode(token).unwrap().kid().to_string();
    let old = issue();
    assert_eq!(kid(&old), "1");

    // The operator adds key 2 on the global, as `atollctl generate signing-key` makes it.
    let run = atoll_e2e::cli::atollctl(&["generate", "signing-key"], "")
        .unwrap()
        .ok();
    put(
        &global,
        "/meshes/default/secrets/dataplane-token-signing-key-default-2",
        &serde_json::json!({"type": "Secret", "mesh": "default", "name": "dataplane-token-signing-key-default-2", "data": run.stdout.trim()}).to_string(),
    );
    let mut new = String::new();
    eventually("the zone to sign with key 2", DEADLINE, || {
        new = issue();
        kid(&new) == "2"
    })
    .unwrap();
    assert_eq!(
        register(&zone, Some(&old), &yaml("web-1", "web")).0,
        200,
        "old tokens stay valid"
    );
    assert_eq!(register(&zone, Some(&new), &yaml("web-1", "web")).0, 200);

    // Deleting key 1 ends the tokens it signed, and only those.
    let (code, body) = http_request(
        global.http_port,
        "DELETE",
        "/meshes/default/secrets/dataplane-token-signing-key-default-1",
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    eventually("tokens of key 1 to be refused", DEADLINE, || {
        register(&zone, Some(&old), &yaml("web-1", "web")).0 == 401
    })
    .unwrap();
    let (_, why) = register(&zone, Some(&old), &yaml("web-1", "web"));
    assert!(
        why.contains("kid \\\"1\\\"") || why.contains("kid \"1\""),
        "{why}"
    );
    assert_eq!(register(&zone, Some(&new), &yaml("web-1", "web")).0, 200);
}
