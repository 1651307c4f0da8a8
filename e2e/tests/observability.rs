//! MADS and MeshMetric with a real Prometheus (Debian's 2.42) and real Envoys: Prometheus
//! finds every data plane a MeshMetric gives a Prometheus endpoint, from two zones' MADS
//! (plain HTTP and TLS), scrapes Envoy's statistics there, sees the traffic the test sent, and
//! drops a data plane that leaves. Debian builds Prometheus without xDS discovery, so it reads
//! MADS through its HTTP service discovery form; the MADS protocol `kuma_sd_configs` speaks
//! (protojson DiscoveryRequest, versions, the long poll's 304 and its wake-up on a change) is
//! exercised here directly.

use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::{Dataplane, edge_gateway_yaml};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::otlp::{OtlpReceiver, ReceivedSpan};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::{http_call, http_call_with};
use atoll_e2e::prometheus::{Prometheus, http_sd_job};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// A MeshMetric giving `service`'s proxies a Prometheus endpoint on `port`.
fn metric(service: &str, port: u16) -> String {
    format!(
        "type: MeshMetric
mesh: default
name: {service}-metrics
spec:
  targetRef:
    kind: MeshService
    name: {service}
  default:
    backends:
    - type: Prometheus
      prometheus:
        port: {port}
        path: /metrics
"
    )
}

fn mads(zone: &Zone, version: &str, timeout: &str) -> (u16, Value) {
    let body = json!({
        "node": {"id": "test"},
        "version_info": version,
        "type_url": "type.googleapis.com/kuma.observability.v1.MonitoringAssignment",
    })
    .to_string();
    let (status, text) = http_call(
        zone.mads_port,
        "mads",
        "POST",
        &format!("/v3/discovery:monitoringassignments?fetch-timeout={timeout}"),
        Some(&body),
    )
    .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn prometheus_discovers_scrapes_and_forgets_data_planes_through_mads() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply("type: Mesh\nname: default\n").unwrap();
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    let tls_zone = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            env: [(
                "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED".to_string(),
                "true".to_string(),
            )]
            .into(),
            ..Default::default()
        },
    )
    .unwrap();
    let (web_metrics, api_metrics, db_metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    global
        .apply(&format!(
            "{}---\n{}---\n{}",
            metric("web", web_metrics),
            metric("api", api_metrics),
            metric("db", db_metrics)
        ))
        .unwrap();
    zone.wait_for("/meshes/default/meshmetrics/api-metrics", DEADLINE)
        .unwrap();
    tls_zone
        .wait_for("/meshes/default/meshmetrics/db-metrics", DEADLINE)
        .unwrap();
    let api_app = Backend::start("api").unwrap();
    let (mut api, _) =
        Dataplane::start_sidecar(&zone, "default", "api-1", "api", api_app.port, &[], &[]).unwrap();
    let outbound = free_port().unwrap();
    let (web, _) = Dataplane::start_sidecar(
        &zone,
        "default",
        "web-1",
        "web",
        api_app.port,
        &[(outbound, &[("kuma.io/service", "api")])],
        &[],
    )
    .unwrap();
    let db_app = Backend::start("db").unwrap();
    let (_db, _) =
        Dataplane::start_sidecar(&tls_zone, "default", "db-1", "db", db_app.port, &[], &[])
            .unwrap();

    // MADS itself: both of zone-1's proxies, then a long poll that times out unchanged.
    let mut answer = Value::Null;
    eventually("MADS lists api, web and the zone ingress", DEADLINE, || {
        let (status, body) = mads(&zone, "", "1s");
        answer = body;
        status == 200 && answer["resources"].as_array().is_some_and(|r| r.len() == 3)
    })
    .unwrap_or_else(|e| panic!("{e}: {answer}"));
    let api_target = answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "api")
        .unwrap()["targets"][0]
        .clone();
    assert_eq!(api_target["name"], "api-1");
    assert_eq!(api_target["address"], format!("127.0.0.1:{api_metrics}"));
    assert_eq!(api_target["labels"]["kuma.io/zone"], "zone-1");
    assert_eq!(
        answer["type_url"],
        "type.googleapis.com/kuma.observability.v1.MonitoringAssignment"
    );
    assert_eq!(answer["resources"][0]["@type"], answer["type_url"]);
    let version = answer["version_info"].as_str().unwrap().to_string();
    let (status, _) = mads(&zone, &version, "1s");
    assert_eq!(status, 304, "nothing changed");

    // The gRPC variant on the same port: the same assignments and version.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime
        .block_on(async {
            use atoll_proto::mads::monitoring_assignment_discovery_service_client::MonitoringAssignmentDiscoveryServiceClient;
            let mut client = MonitoringAssignmentDiscoveryServiceClient::connect(format!(
                "http://127.0.0.1:{}",
                zone.mads_port
            ))
            .await?;
            let request = envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest {
                node: Some(envoy_types::pb::envoy::config::core::v3::Node {
                    id: "test".into(),
                    ..Default::default()
                }),
                type_url: "type.googleapis.com/kuma.observability.v1.MonitoringAssignment".into(),
                ..Default::default()
            };
            Ok::<_, Box<dyn std::error::Error>>(
                client.fetch_monitoring_assignments(request).await?.into_inner(),
            )
        })
        .unwrap_or_else(|e| panic!("gRPC fetch: {e}"));
    assert_eq!(reply.version_info, version, "one version for both forms");
    let services: Vec<String> = reply
        .resources
        .iter()
        .map(|any| {
            use prost::Message;
            atoll_proto::mads::MonitoringAssignment::decode(any.value.as_slice())
                .unwrap()
                .service
        })
        .collect();
    assert_eq!(services, ["zone-ingress", "api", "web"], "{services:?}");

    // An Envoy egress run by atoll-dp in zone-2, with a Prometheus endpoint of its own on a
    // path of its own: Prometheus scrapes the path MADS gives, so a path Envoy ignored fails.
    let (egress_port, egress_admin, egress_metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut egress = Dataplane::launch(
        &tls_zone,
        "egress-1",
        &format!(
            "type: ZoneEgress\nname: egress-1\nnetworking:\n  address: 127.0.0.1\n  port: {egress_port}\n  admin:\n    port: {egress_admin}\n  prometheus:\n    port: {egress_metrics}\n    path: /egress-stats\n"
        ),
        &[],
        atoll_e2e::dataplane::Credential::Token(global.zone_token("zone-2", "egress").unwrap()),
    )
    .unwrap();
    egress.admin_port = egress_admin;
    egress.wait_listener(egress_metrics).unwrap();

    let ca = tls_zone.dir().join("work").join("mads-server-ca.crt");
    let prometheus = Prometheus::start(&format!(
        "{}{}",
        http_sd_job(
            "zone-1",
            &format!("http://127.0.0.1:{}", zone.mads_port),
            None
        ),
        http_sd_job(
            "zone-2",
            &format!("https://127.0.0.1:{}", tls_zone.mads_port),
            Some(&ca)
        ),
    ))
    .unwrap();
    let healthy = |wanted: &[&str]| {
        let targets = prometheus.targets().unwrap_or_default();
        wanted
            .iter()
            .all(|w| targets.iter().any(|(i, h, _)| i == w && h == "up"))
    };
    eventually(
        "Prometheus scrapes the three data planes, the ingress and the Envoy egress",
        DEADLINE,
        || healthy(&["api-1", "web-1", "db-1", "zone-1.zone-ingress", "egress-1"]),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            prometheus.targets(),
            prometheus.process.log_tail(30)
        )
    });

    for i in 0..5 {
        let (status, _) =
            http_call_with(outbound, "api", "GET", &format!("/counted/{i}"), None, &[]).unwrap();
        assert_eq!(status, 200);
    }
    let query =
        r#"sum(envoy_cluster_upstream_rq_total{instance="web-1",envoy_cluster_name="api"})"#;
    eventually("the requests counted by web-1's Envoy", DEADLINE, || {
        prometheus
            .scalar(query)
            .ok()
            .flatten()
            .is_some_and(|n| n >= 5.0)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", prometheus.scalar(query), web.config_dump()));
    // What is scraped at the egress's endpoint is its Envoy's own statistics.
    let live = r#"envoy_server_live{instance="egress-1",job="zone-2"}"#;
    eventually("the egress Envoy's server.live", DEADLINE, || {
        prometheus.scalar(live).ok().flatten() == Some(1.0)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", prometheus.scalar(live)));

    // The zone's own metrics: real histograms of its store operations, and MADS' answers.
    let (_, metrics) = atoll_e2e::process::http_get(zone.diagnostics_port, "/metrics").unwrap();
    for wanted in [
        "atoll_store_operation_seconds_bucket{",
        "atoll_mads_responses_total{status=\"304\"}",
        "atoll_mads_responses_total{status=\"http_sd\"}",
    ] {
        assert!(
            metrics.contains(wanted),
            "{wanted} missing from:\n{metrics}"
        );
    }

    // api-1 leaves: a long poll holding the current version is answered with the change,
    // and Prometheus forgets api-1.
    let (status, current) = mads(&zone, "", "1s");
    assert_eq!(status, 200);
    let current = current["version_info"].as_str().unwrap().to_string();
    let waiting = {
        let zone_port = zone.mads_port;
        let current = current.clone();
        std::thread::spawn(move || {
            let body = json!({"node": {"id": "test"}, "version_info": current}).to_string();
            http_call(
                zone_port,
                "mads",
                "POST",
                "/v3/discovery:monitoringassignments?fetch-timeout=50s",
                Some(&body),
            )
        })
    };
    api.process.terminate(Duration::from_secs(10));
    let (status, text) = waiting.join().unwrap().unwrap();
    assert_eq!(status, 200, "the long poll answers the change: {text}");
    let changed: Value = serde_json::from_str(&text).unwrap();
    assert_ne!(changed["version_info"], current.as_str());
    assert_eq!(
        changed["resources"].as_array().map(Vec::len),
        Some(2),
        "{text}"
    );
    eventually("api-1 dropped from the targets", DEADLINE, || {
        let targets = prometheus.targets().unwrap_or_default();
        !targets.iter().any(|(i, _, _)| i == "api-1") && healthy(&["web-1", "db-1"])
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", prometheus.targets()));
    // So does the egress once it stops and its ZoneEgress is gone.
    egress.process.terminate(Duration::from_secs(10));
    eventually("egress-1 dropped from the targets", DEADLINE, || {
        let targets = prometheus.targets().unwrap_or_default();
        !targets.iter().any(|(i, _, _)| i == "egress-1") && healthy(&["db-1"])
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", prometheus.targets()));
}

/// The global knows each zone's data planes and whether they are online: DataplaneInsights
/// sync up, `GET /meshes/{mesh}/dataplanes+insights` and `atollctl inspect dataplanes` show
/// them, and a data plane that leaves is gone from there too.
#[test]
fn the_global_lists_every_zones_data_planes_and_their_status() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    global.apply(&edge_gateway_yaml(8080)).unwrap();
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    zone.wait_for("/meshes/default", DEADLINE).unwrap();
    let app = Backend::start("web").unwrap();
    let (mut web, _) =
        Dataplane::start_sidecar(&zone, "default", "web-1", "web", app.port, &[], &[]).unwrap();
    let overview = || -> Value {
        let (_, text) =
            atoll_e2e::process::http_get(global.http_port, "/meshes/default/dataplanes+insights")
                .unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    eventually("the global sees web-1 online", DEADLINE, || {
        let o = overview();
        o["items"].as_array().is_some_and(|items| {
            items.iter().any(|i| {
                i["name"] == "zone-1.web-1"
                    && i["online"] == true
                    && i["labels"]["kuma.io/zone"] == "zone-1"
                    && i["dataplaneInsight"]["responsesSent"].as_u64() > Some(0)
            })
        })
    })
    .unwrap_or_else(|e| panic!("{e}: {}", overview()));
    // Kuma's `_overview` spellings answer the same.
    let (status, listed) =
        atoll_e2e::process::http_get(global.http_port, "/meshes/default/dataplanes/_overview")
            .unwrap();
    assert_eq!(status, 200, "{listed}");
    assert!(listed.contains("zone-1.web-1"), "{listed}");
    let (status, one) = atoll_e2e::process::http_get(
        global.http_port,
        "/meshes/default/dataplanes/zone-1.web-1/_overview",
    )
    .unwrap();
    assert_eq!(status, 200, "{one}");
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["name"], "zone-1.web-1", "{one}");
    let run = atoll_e2e::cli::atollctl(
        &[
            "--api-address",
            &global.api(),
            "inspect",
            "dataplanes",
            "-m",
            "default",
        ],
        "",
    )
    .unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("zone-1.web-1"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        row.contains("zone-1") && row.contains("web") && row.contains("Online"),
        "{row}"
    );
    let inspect = |what: &str| {
        let run = atoll_e2e::cli::atollctl(&["--api-address", &global.api(), "inspect", what], "")
            .unwrap();
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        run.stdout
    };
    let meshes = inspect("meshes");
    assert!(
        meshes
            .lines()
            .any(|l| l.starts_with("default") && l.ends_with("1/1")),
        "{meshes}"
    );
    let gateways = inspect("gateways");
    assert!(
        gateways.contains("edge") && gateways.contains("HTTP:8080"),
        "{gateways}"
    );
    eventually("zone-1's ingress listed on the global", DEADLINE, || {
        inspect("zoneingresses")
            .lines()
            .any(|l| l.contains("zone-1"))
    })
    .unwrap();

    web.process.terminate(Duration::from_secs(10));
    eventually("web-1 gone from the global", DEADLINE, || {
        overview()["items"].as_array().is_some_and(|i| i.is_empty())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", overview()));
    eventually("its insight deleted too", DEADLINE, || {
        atoll_e2e::process::http_get(
            global.http_port,
            "/meshes/default/dataplaneinsights/zone-1.web-1",
        )
        .is_ok_and(|(status, _)| status == 404)
    })
    .unwrap();
}

/// The one span named `name` exported by `service` among `spans`.
fn span<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    let all: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{}/{} {}<-{}",
                s.service, s.name, s.span_id, s.parent_span_id
            )
        })
        .collect();
    assert_eq!(found.len(), 1, "{service}/{name} in {all:#?}");
    found[0]
}

#[test]
fn one_global_write_is_traced_through_kds_to_the_push_it_causes() {
    let otlp = OtlpReceiver::start().unwrap();
    let postgres = TempPostgres::start().unwrap();
    let global = Global::start(GlobalOptions {
        postgres_url: Some(postgres.url()),
        env: otlp.env(),
        ..Default::default()
    })
    .unwrap();
    global.apply("type: Mesh\nname: default\n").unwrap();
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            env: otlp.env(),
            ..Default::default()
        },
    )
    .unwrap();
    let app = Backend::start("web").unwrap();
    let (web, _) =
        Dataplane::start_sidecar(&zone, "default", "web-1", "web", app.port, &[], &[]).unwrap();
    let (_api, _) =
        Dataplane::start_sidecar(&zone, "default", "api-1", "api", app.port, &[], &[]).unwrap();

    // The caller's own trace: the write continues it (W3C traceparent on the request).
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let policy = json!({
        "type": "MeshTimeout", "mesh": "default", "name": "web-timeout",
        "spec": {
            "targetRef": {"kind": "MeshService", "name": "web"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "17s"}}],
        },
    })
    .to_string();
    let token = format!("Bearer {}", global.admin_token().unwrap());
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let (status, body) = http_call_with(
        global.http_port,
        "global",
        "PUT",
        "/meshes/default/meshtimeouts/web-timeout",
        Some(&policy),
        &[("Authorization", &token), ("traceparent", &traceparent)],
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");

    let spans = otlp
        .wait_trace(trace_id, DEADLINE, |spans| {
            // Each process exports on its own schedule: wait for every step.
            [
                ("atoll-global", "api"),
                ("atoll-global", "kds.send"),
                ("atoll-zone", "kds.apply"),
                ("atoll-zone", "xds.reconcile"),
                ("atoll-zone", "xds.push"),
            ]
            .iter()
            .all(|(service, name)| {
                spans
                    .iter()
                    .any(|s| s.service == *service && s.name == *name)
            })
        })
        .unwrap();
    // One chain of parents: caller → REST write → KDS send → KDS apply → reconcile → push.
    let api = span(&spans, "atoll-global", "api");
    assert_eq!(api.parent_span_id, caller_span);
    assert_eq!(api.attributes["method"], "PUT");
    let send = span(&spans, "atoll-global", "kds.send");
    assert_eq!(send.parent_span_id, api.span_id);
    assert_eq!(send.attributes["resource"], "web-timeout.default");
    let apply = span(&spans, "atoll-zone", "kds.apply");
    assert_eq!(apply.parent_span_id, send.span_id);
    let reconcile = span(&spans, "atoll-zone", "xds.reconcile");
    assert_eq!(reconcile.parent_span_id, apply.span_id);
    let push = span(&spans, "atoll-zone", "xds.push");
    assert_eq!(push.parent_span_id, reconcile.span_id);
    assert_eq!(push.attributes["proxy"], "web-1");
    assert!(push.attributes["types"].contains("Listener"), "{push:?}");
    // The policy reached Envoy, and only the proxy it targets was pushed.
    eventually(
        "web-1's Envoy holds the 17 s idle timeout",
        DEADLINE,
        || web.config_dump().contains("17s"),
    )
    .unwrap();
    assert!(
        !spans
            .iter()
            .any(|s| s.attributes.get("proxy").map(String::as_str) == Some("api-1")),
        "api-1 is not affected by the write: {spans:#?}"
    );
}
