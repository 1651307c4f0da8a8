//! Policies on a built-in gateway, with traffic: a MeshTimeout on one MeshHTTPRoute cuts that
//! route's requests to a slow backend short while another route to the same backend still
//! waits for it (the zone's `_rules` API and `atollctl inspect dataplane` say why); a
//! MeshRateLimit limits one route only; a MeshHealthCheck on the gateway's clusters keeps its
//! traffic off a failing instance; a MeshAccessLog on the gateway records its requests.

use std::time::{Duration, Instant};

use atoll_e2e::cli::atollctl;
use atoll_e2e::dataplane::{Dataplane, edge_gateway_yaml};
use atoll_e2e::external::{ExternalServer, ServerOptions};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::{http_call, http_call_with, http_get};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn route(name: &str, path: &str) -> String {
    format!(
        "type: MeshHTTPRoute
mesh: default
name: {name}
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
          value: {path}
      default:
        backendRefs:
        - kind: MeshService
          name: slow
"
    )
}

#[test]
fn a_timeout_on_one_gateway_route_leaves_the_other_alone() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let http = free_port().unwrap();
    let edge = edge_gateway_yaml(http);
    let resources = format!(
        "{edge}---
{}---
{}---
type: MeshTimeout
mesh: default
name: impatient-route
spec:
  targetRef:
    kind: MeshHTTPRoute
    name: impatient
  to:
  - targetRef:
      kind: Mesh
    default:
      http:
        requestTimeout: 500ms
",
        route("impatient", "/impatient"),
        route("patient", "/patient")
    );
    global.apply(&resources).unwrap_or_else(|e| panic!("{e:#}"));
    zone.wait_for("/meshes/default/meshtimeouts/impatient-route", DEADLINE)
        .unwrap();
    zone.wait_for("/meshes/default/meshhttproutes/patient", DEADLINE)
        .unwrap();

    let slow = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "slow".into(),
        delay_ms: 2000,
        ..Default::default()
    })
    .unwrap();
    let (_slow_dp, _) =
        Dataplane::start_sidecar(&zone, "default", "slow-1", "slow", slow.port, &[], &[])
            .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge").unwrap();
    gateway.wait_listener(http).unwrap();

    // The patient route waits the 2 s the backend takes.
    let mut patient = None;
    eventually(
        "the patient route reaches the slow backend",
        DEADLINE,
        || {
            let started = Instant::now();
            let answer = http_call(http, "edge", "GET", "/patient/x", None).ok();
            let ok = answer
                .as_ref()
                .is_some_and(|(code, body)| *code == 200 && body == "external slow /patient/x");
            if ok {
                patient = Some(started.elapsed());
            }
            ok
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", gateway.config_dump()));
    let took = patient.unwrap();
    assert!(
        took >= Duration::from_millis(1900),
        "the backend answers after 2 s, got {took:?}"
    );

    // The impatient route gives up after 500 ms with 504.
    let started = Instant::now();
    let (code, body) = http_call(http, "edge", "GET", "/impatient/x", None).unwrap();
    let took = started.elapsed();
    assert_eq!(code, 504, "{body}\n{}", gateway.config_dump());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1800),
        "the route's timeout is 500 ms, the request took {took:?}"
    );

    // The zone says which policy configures which route of the gateway.
    let (code, text) =
        http_get(zone.http_port, "/meshes/default/dataplanes/edge-1/_rules").unwrap();
    assert_eq!(code, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let timeout = answer["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "MeshTimeout")
        .unwrap_or_else(|| panic!("no MeshTimeout rules: {answer}"));
    let gateway_rules = timeout["gatewayRules"].as_array().unwrap();
    assert_eq!(gateway_rules.len(), 1, "{answer}");
    assert_eq!(gateway_rules[0]["route"], "impatient");
    assert_eq!(
        gateway_rules[0]["conf"]["http"]["requestTimeout"], "500ms",
        "{answer}"
    );
    assert_eq!(gateway_rules[0]["origins"][0]["name"], "impatient-route");

    // The same through atollctl, as a table and as JSON.
    let table = atollctl(
        &[
            "--api-address",
            &zone.api(),
            "inspect",
            "dataplane",
            "edge-1",
            "--mesh",
            "default",
        ],
        "",
    )
    .unwrap()
    .ok()
    .stdout;
    let row = table
        .lines()
        .find(|l| l.starts_with("MeshTimeout"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("gateway")
            && row.contains("impatient on default:edge:")
            && row.contains("impatient-route")
            && row.contains(r#"{"http":{"requestTimeout":"500ms"}}"#),
        "{table}"
    );
    let json = atollctl(
        &[
            "--api-address",
            &zone.api(),
            "inspect",
            "dataplane",
            "edge-1",
            "-m",
            "default",
            "-o",
            "json",
        ],
        "",
    )
    .unwrap()
    .ok()
    .stdout;
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), answer);

    // The same authentication as every read: a refused token is 401; an unknown proxy, 404.
    let (code, _) = http_call_with(
        zone.http_port,
        "localhost",
        "GET",
        "/meshes/default/dataplanes/edge-1/_rules",
        None,
        &[("Authorization", "Bearer not-a-token")],
    )
    .unwrap();
    assert_eq!(code, 401);
    let (code, _) = http_get(zone.http_port, "/meshes/default/dataplanes/nobody/_rules").unwrap();
    assert_eq!(code, 404);
}

/// A MeshRateLimit on one gateway route answers 429 beyond its rate there only; a
/// MeshHealthCheck aimed at the gateway keeps its traffic off the instance failing its checks.
#[test]
fn a_rate_limit_on_one_gateway_route_and_health_checks_on_its_clusters() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let http = free_port().unwrap();
    let edge = edge_gateway_yaml(http);
    let backend_route =
        |name: &str, path: &str| route(name, path).replace("name: slow", "name: api");
    let resources = format!(
        "{edge}---
{}---
{}---
type: MeshRateLimit
mesh: default
name: limited-route
spec:
  targetRef:
    kind: MeshHTTPRoute
    name: limited
  to:
  - targetRef:
      kind: Mesh
    default:
      local:
        http:
          requestRate:
            num: 2
            interval: 1m
          onRateLimit:
            status: 429
            headers:
              set:
              - name: x-limited
                value: route
---
type: MeshHealthCheck
mesh: default
name: edge-checks
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      interval: 1s
      timeout: 1s
      unhealthyThreshold: 1
      healthyThreshold: 1
      noTrafficInterval: 1s
      http:
        path: /health
",
        backend_route("limited", "/limited"),
        backend_route("free", "/free")
    );
    let logs = tempfile::tempdir().unwrap();
    let log_file = logs.path().join("edge.log");
    let resources = format!(
        "{resources}---
type: MeshAccessLog
mesh: default
name: edge-logs
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - file:
          path: {}
          format:
            type: Plain
            plain: '%KUMA_DESTINATION_SERVICE% %REQ(:PATH)% %RESPONSE_CODE%'
",
        log_file.display()
    );
    global.apply(&resources).unwrap_or_else(|e| panic!("{e:#}"));
    zone.wait_for("/meshes/default/meshhealthchecks/edge-checks", DEADLINE)
        .unwrap();
    let good = atoll_e2e::backend::Backend::start("good").unwrap();
    let sick = atoll_e2e::backend::Backend::start("sick").unwrap();
    sick.set_health(503);
    let (_good_dp, _) =
        Dataplane::start_sidecar(&zone, "default", "api-1", "api", good.port, &[], &[])
            .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    let (_sick_dp, _) =
        Dataplane::start_sidecar(&zone, "default", "api-2", "api", sick.port, &[], &[])
            .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge").unwrap();
    gateway.wait_listener(http).unwrap();
    let who = |path: &str| -> String {
        match http_call(http, "edge", "GET", path, None) {
            Ok((200, body)) => body.split(' ').next().unwrap_or_default().to_string(),
            Ok((code, body)) => format!("{code}: {body}"),
            Err(e) => format!("{e}"),
        }
    };
    // Health checks keep the free route on the instance that passes them.
    eventually("only the healthy instance answers", DEADLINE, || {
        (0..10).all(|_| who("/free/x") == "good")
    })
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", who("/free/x"), gateway.config_dump()));

    // The limited route: two requests a minute, then 429 with the configured header.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (code, _) = http_call(http, "edge", "GET", "/limited/x", None).unwrap();
        codes.push(code);
    }
    assert_eq!(codes, [200, 200, 429, 429], "{}", gateway.config_dump());
    let head = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /limited/x HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.to_lowercase()
    };
    assert!(
        head.starts_with("http/1.1 429") && head.contains("x-limited: route"),
        "{head}"
    );
    // The other route is not limited.
    assert!((0..10).all(|_| who("/free/y") == "good"));
    // The gateway's access log has its requests, in the configured format.
    eventually(
        "access log lines for the gateway's requests",
        DEADLINE,
        || {
            let _ = who("/free/logged");
            std::fs::read_to_string(&log_file)
                .is_ok_and(|text| text.lines().any(|l| l == "edge /free/logged 200"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", std::fs::read_to_string(&log_file)));
}
