//! Global and zones as separate processes over real KDS (mutual TLS), with the global on a
//! real PostgreSQL: sync both ways, faults, stalls, and identity checks.

use std::time::Duration;

use atoll_e2e::cli::atollctl;
use atoll_e2e::faults::proxy::LinkProxy;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::{http_get, http_request};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const SYNC: Duration = Duration::from_secs(15);

const MESH_AND_GATEWAY: &str = "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
";

const DATAPLANE: &str = r#"{"type":"Dataplane","mesh":"default","name":"dp-1",
  "networking":{"address":"127.0.0.1","inbound":[{"port":20001,"tags":{"kuma.io/service":"backend"}}]}}"#;

fn global_on_postgres(pg: &TempPostgres, env: &[(&str, &str)]) -> Global {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Global::start(GlobalOptions {
        postgres_url: Some(pg.url()),
        env,
        ..Default::default()
    })
    .expect("global starts")
}

fn apply(global: &Global, yaml: &str) {
    atollctl(&["--api-address", &global.api(), "apply", "-f", "-"], yaml)
        .unwrap()
        .ok();
}

fn status(port: u16, path: &str) -> u16 {
    http_get(port, path).map(|(s, _)| s).unwrap_or(0)
}

#[test]
fn resources_flow_down_to_every_zone_and_dataplanes_flow_up() {
    let pg = TempPostgres::start().unwrap();
    let global = global_on_postgres(&pg, &[]);
    apply(&global, MESH_AND_GATEWAY);
    let zone1 = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let zone2 = Zone::start("zone-2", &global, ZoneOptions::default()).unwrap();
    for zone in [&zone1, &zone2] {
        eventually("the gateway in the zone", SYNC, || {
            status(zone.http_port, "/meshes/default/meshgateways/edge-gateway") == 200
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    }
    let (_, body) = http_get(zone1.http_port, "/meshes/default/meshgateways/edge-gateway").unwrap();
    assert!(body.contains(r#""kuma.io/origin":"global""#), "{body}");

    // A change on the global reaches the zones in well under a second.
    let changed = MESH_AND_GATEWAY.replace("port: 8080", "port: 9090");
    apply(&global, &changed);
    let took = eventually("the change in zone-2", SYNC, || {
        http_get(zone2.http_port, "/meshes/default/meshgateways/edge-gateway")
            .is_ok_and(|(_, b)| b.contains("9090"))
    })
    .unwrap();
    assert!(took < Duration::from_secs(2), "propagation took {took:?}");

    // Zones refuse writes of global-owned types.
    let (code, body) = http_request(
        zone1.http_port,
        "PUT",
        "/meshes/other",
        Some(r#"{"type":"Mesh","name":"other"}"#),
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("apply it there"), "{body}");

    // A Dataplane registered in zone-1 reaches the global with its zone's labels.
    let (code, body) = http_request(
        zone1.http_port,
        "PUT",
        "/meshes/default/dataplanes/dp-1",
        Some(DATAPLANE),
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");
    eventually("the dataplane on the global", SYNC, || {
        status(global.http_port, "/meshes/default/dataplanes/zone-1.dp-1") == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone1.log()));
    let (_, body) = http_get(global.http_port, "/meshes/default/dataplanes/zone-1.dp-1").unwrap();
    assert!(
        body.contains(r#""kuma.io/zone":"zone-1""#) && body.contains(r#""kuma.io/origin":"zone""#),
        "{body}"
    );

    // Insights: both zones online.
    eventually("both zones online", SYNC, || {
        atollctl(&["--api-address", &global.api(), "inspect", "zones"], "")
            .is_ok_and(|run| run.stdout.lines().filter(|l| l.contains("Online")).count() == 2)
    })
    .unwrap();
}

#[test]
fn zones_converge_after_their_own_crash_and_after_the_globals() {
    let pg = TempPostgres::start().unwrap();
    let mut global = global_on_postgres(&pg, &[]);
    apply(&global, MESH_AND_GATEWAY);
    apply(
        &global,
        &MESH_AND_GATEWAY.replace("name: edge-gateway", "name: second"),
    );
    let mut zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    eventually("initial sync", SYNC, || {
        status(zone.http_port, "/meshes/default/meshgateways/second") == 200
    })
    .unwrap();

    // The zone dies; meanwhile one gateway changes and one is deleted.
    zone.process.kill();
    apply(
        &global,
        &MESH_AND_GATEWAY.replace("port: 8080", "port: 7070"),
    );
    atollctl(
        &[
            "--api-address",
            &global.api(),
            "delete",
            "meshgateway",
            "second",
        ],
        "",
    )
    .unwrap()
    .ok();
    zone.crash_and_restart().unwrap();
    eventually("the deletion in the zone", SYNC, || {
        status(zone.http_port, "/meshes/default/meshgateways/second") == 404
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    eventually("the change in the zone", SYNC, || {
        http_get(zone.http_port, "/meshes/default/meshgateways/edge-gateway")
            .is_ok_and(|(_, b)| b.contains("7070"))
    })
    .unwrap();

    // The global dies: the zone keeps serving its last state.
    global.process.kill();
    assert_eq!(
        status(zone.http_port, "/meshes/default/meshgateways/edge-gateway"),
        200
    );
    global.crash_and_restart().unwrap();
    apply(
        &global,
        &MESH_AND_GATEWAY.replace("port: 8080", "port: 6060"),
    );
    eventually(
        "a change after the global's restart",
        Duration::from_secs(30),
        || {
            http_get(zone.http_port, "/meshes/default/meshgateways/edge-gateway")
                .is_ok_and(|(_, b)| b.contains("6060"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
}

#[test]
fn a_stalled_stream_is_detected_and_re_established() {
    let pg = TempPostgres::start().unwrap();
    let global = global_on_postgres(
        &pg,
        &[("KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL", "300ms")],
    );
    apply(&global, MESH_AND_GATEWAY);
    let proxy = LinkProxy::start(&[([127, 0, 0, 1], global.kds_port).into()]).unwrap();
    let options = ZoneOptions {
        kds_port: Some(proxy.port),
        env: [(
            "KUMA_MULTIZONE_ZONE_KDS_LIVENESS_TIMEOUT".to_string(),
            "2s".to_string(),
        )]
        .into(),
        ..Default::default()
    };
    let zone = Zone::start("zone-1", &global, options).unwrap();
    eventually("initial sync", SYNC, || {
        status(zone.http_port, "/meshes/default/meshgateways/edge-gateway") == 200
    })
    .unwrap();
    let connections = proxy.connections();

    // The connection stays open but delivers nothing; the global itself is healthy.
    proxy.freeze_existing();
    apply(
        &global,
        &MESH_AND_GATEWAY.replace("port: 8080", "port: 9191"),
    );
    assert_eq!(status(global.diagnostics_port, "/ready"), 200);
    let took = eventually(
        "the change through a new stream",
        Duration::from_secs(20),
        || {
            http_get(zone.http_port, "/meshes/default/meshgateways/edge-gateway")
                .is_ok_and(|(_, b)| b.contains("9191"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    assert!(
        proxy.connections() > connections,
        "the zone must have reconnected"
    );
    assert!(
        took < Duration::from_secs(10),
        "stall detection took {took:?}"
    );
}

#[test]
fn a_large_sync_cut_midway_converges() {
    let pg = TempPostgres::start().unwrap();
    let global = global_on_postgres(
        &pg,
        &[("KUMA_MULTIZONE_GLOBAL_KDS_MAX_MESSAGE_BYTES", "65536")],
    );
    let mut yaml = String::from("type: Mesh\nname: default\n");
    for i in 0..1000 {
        yaml.push_str(&format!(
            "---\ntype: MeshGateway\nmesh: default\nname: gw-{i:04}\nselectors:\n- match:\n    kuma.io/service: gw-{i}\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n"
        ));
    }
    apply(&global, &yaml);
    let proxy = LinkProxy::start(&[([127, 0, 0, 1], global.kds_port).into()]).unwrap();
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            kds_port: Some(proxy.port),
            ..Default::default()
        },
    )
    .unwrap();
    // Cut as soon as the first gateways have arrived.
    eventually("the sync under way", SYNC, || {
        http_get(zone.http_port, "/meshes/default/meshgateways?size=1")
            .is_ok_and(|(_, b)| !b.contains(r#""total":0"#))
    })
    .unwrap();
    proxy.cut_existing();
    eventually("all 1000 gateways", Duration::from_secs(60), || {
        http_get(zone.http_port, "/meshes/default/meshgateways?size=1")
            .is_ok_and(|(_, b)| b.contains(r#""total":1000"#))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
}

#[test]
fn identities_are_enforced() {
    let pg = TempPostgres::start().unwrap();
    let global = global_on_postgres(&pg, &[]);
    apply(&global, MESH_AND_GATEWAY);

    // zone-2 presenting zone-1's certificate is refused.
    let impostor = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            certificate_zone: Some("zone-1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    eventually("the refusal in the zone's log", SYNC, || {
        impostor
            .log()
            .contains("does not match the zone \\\"zone-1\\\"")
            || impostor.log().contains("does not match the zone")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", impostor.log()));
    assert_eq!(
        status(
            impostor.http_port,
            "/meshes/default/meshgateways/edge-gateway"
        ),
        404
    );

    // A zone that does not trust the global's certificate refuses to connect, and says why.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.crt");
    atollctl(
        &[
            "generate",
            "tls-certificate",
            "--type=server",
            "--hostname=elsewhere",
            &format!("--cert-file={}", other_ca.display()),
            "--key-file=/dev/null",
        ],
        "",
    )
    .unwrap()
    .ok();
    let wary = Zone::start(
        "zone-3",
        &global,
        ZoneOptions {
            root_ca: Some(other_ca),
            ..Default::default()
        },
    )
    .unwrap();
    eventually("the trust error in the zone's log", SYNC, || {
        wary.log().contains("not trusted")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", wary.log()));
    assert_eq!(
        status(wary.http_port, "/meshes/default/meshgateways/edge-gateway"),
        404
    );
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let global = Global::start(GlobalOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = global.zone_certificate("zone-1", dir.path()).unwrap();
    let ca = std::fs::read_to_string(&files.ca).unwrap();
    let kds = format!("https://127.0.0.1:{}", global.kds_port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result: Result<(), String> = runtime.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(kds)
            .map_err(|e| e.to_string())?
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let mut client = atoll_proto::KdsSyncServiceClient::new(channel);
        let mut request = tonic::Request::new(tokio_stream::iter(Vec::<
            atoll_proto::DeltaDiscoveryRequest,
        >::new()));
        request
            .metadata_mut()
            .insert("client-id", "zone-1".parse().unwrap());
        let mut stream = client
            .global_to_zone_sync(request)
            .await
            .map_err(|s| format!("rpc: {s}"))?
            .into_inner();
        stream.message().await.map_err(|s| format!("stream: {s}"))?;
        Ok(())
    });
    let err = result.expect_err("a client without a certificate must not get a stream");
    assert!(
        !global.process.log_tail(200).contains("zone connected"),
        "{err}"
    );
}

#[test]
fn a_zone_on_postgres_keeps_its_synced_state_across_its_own_restart() {
    let (pg_global, pg_zone) = (
        TempPostgres::start().unwrap(),
        TempPostgres::start().unwrap(),
    );
    let mut global = global_on_postgres(&pg_global, &[]);
    apply(&global, MESH_AND_GATEWAY);
    let env = [
        ("KUMA_STORE_TYPE".to_string(), "postgres".to_string()),
        ("KUMA_STORE_POSTGRES_URL".to_string(), pg_zone.url()),
    ];
    let mut zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            env: env.into(),
            ..Default::default()
        },
    )
    .unwrap();
    eventually("the gateway in the zone", SYNC, || {
        status(zone.http_port, "/meshes/default/meshgateways/edge-gateway") == 200
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    // With the global gone, a restarted zone still serves what it had synced.
    global.process.kill();
    zone.crash_and_restart().unwrap();
    eventually("the API back up", SYNC, || {
        status(zone.http_port, "/") == 200
    })
    .unwrap();
    assert_eq!(
        status(zone.http_port, "/meshes/default/meshgateways/edge-gateway"),
        200
    );
}
