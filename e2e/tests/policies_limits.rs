//! MeshRateLimit, MeshFaultInjection and MeshAccessLog on sidecars, proven with real Envoy and
//! real traffic: limited requests and connections, injected aborts and delays, and access log
//! records in the configured formats.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::{Dataplane, sidecar_yaml};
use atoll_e2e::external::{ExternalServer, ServerOptions};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::http_call;
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

fn apply(global: &Global, yaml: &str) {
    global.apply(yaml).unwrap_or_else(|e| panic!("{e:#}"));
}

fn start() -> (Global, Zone) {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    apply(&global, "type: Mesh\nname: default\n");
    (global, zone)
}

/// A sidecar for `service` in front of `app` speaking `protocol`, with outbounds as (port,
/// service); returns it and its inbound port.
fn sidecar(
    zone: &Zone,
    name: &str,
    service: &str,
    protocol: &str,
    app_port: u16,
    outbounds: &[(u16, &str)],
) -> (Dataplane, u16) {
    let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
    let tags: Vec<[(&str, &str); 1]> = outbounds
        .iter()
        .map(|(_, to)| [("kuma.io/service", *to)])
        .collect();
    let outbound_tags: Vec<(u16, &[(&str, &str)])> = outbounds
        .iter()
        .zip(&tags)
        .map(|((port, _), tags)| (*port, &tags[..]))
        .collect();
    let yaml = sidecar_yaml(
        "default",
        name,
        service,
        (admin, inbound, app_port),
        &outbound_tags,
    )
    .replacen(
        "kuma.io/protocol: http",
        &format!("kuma.io/protocol: {protocol}"),
        1,
    );
    let mut dp = Dataplane::start_with(zone, name, &yaml, admin, &[])
        .unwrap_or_else(|e| panic!("{e:#}\n{}", zone.log()));
    dp.wait_listener(inbound).unwrap();
    for (port, _) in outbounds {
        dp.wait_listener(*port).unwrap();
    }
    (dp, inbound)
}

/// The status of a GET on `port`, or None when the connection fails or closes early. Only
/// the status line is read, so this also works through a TCP proxy to a keep-alive server.
fn status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A whole HTTP/1.1 response (head and body) to a GET on `port`.
fn raw_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Waits until Envoy's configuration (its admin config dump) mentions `text`.
fn configured(dp: &Dataplane, text: &str) {
    eventually(&format!("config with {text}"), DEADLINE, || {
        dp.config_dump().contains(text)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", dp.config_dump()));
}

/// A `kind` policy named `name` for `service`'s inbounds, from every caller, whose `default`
/// holds `field` with `body` (YAML indented to sit under `field:`).
fn inbound_policy(global: &Global, kind: &str, name: &str, service: &str, field: &str, body: &str) {
    apply(
        global,
        &format!(
            "type: {kind}
mesh: default
name: {name}
spec:
  targetRef:
    kind: MeshService
    name: {service}
  from:
  - targetRef:
      kind: Mesh
    default:
      {field}:
{body}"
        ),
    );
}

/// MeshRateLimit `web-limit` for `web` with `local`.
fn limit_web(global: &Global, local: &str) {
    inbound_policy(global, "MeshRateLimit", "web-limit", "web", "local", local);
}

#[test]
fn rate_limits_requests_and_connections() {
    let (global, zone) = start();
    let web = Backend::start("web").unwrap();
    let (web_dp, web_in) = sidecar(&zone, "web-1", "web", "http", web.port, &[]);
    let db = Backend::start("db").unwrap();
    let (db_dp, db_in) = sidecar(&zone, "db-1", "db", "tcp", db.port, &[]);
    assert_eq!(status(web_in, "/"), Some(200));
    assert_eq!(status(db_in, "/"), Some(200), "{}", db_dp.config_dump());

    limit_web(
        &global,
        "        http:
          requestRate:
            num: 3
            interval: 1m
",
    );
    configured(&web_dp, "envoy.filters.http.local_ratelimit");
    // A minute's bucket holds three requests; the fourth is refused with Kuma's default 429.
    let codes: Vec<Option<u16>> = (0..4).map(|_| status(web_in, "/x")).collect();
    assert_eq!(
        codes,
        [Some(200), Some(200), Some(200), Some(429)],
        "{}",
        web_dp.config_dump()
    );

    // The answer to a limited request is configurable: status and headers.
    limit_web(
        &global,
        "        http:
          requestRate:
            num: 1
            interval: 1m
          onRateLimit:
            status: 423
            headers:
              set:
              - name: x-kuma-rate-limited
                value: 'true'
              add:
              - name: x-limit
                value: one
",
    );
    configured(&web_dp, "x-kuma-rate-limited");
    assert_eq!(status(web_in, "/y"), Some(200));
    let limited = raw_get(web_in, "/y").expect("a response");
    let head = limited.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 423"), "{limited}");
    assert!(head.contains("x-kuma-rate-limited: true"), "{limited}");
    assert!(head.contains("x-limit: one"), "{limited}");

    // disabled turns the limit off.
    limit_web(
        &global,
        "        http:
          disabled: true
",
    );
    // (The old listener stays in the config dump while it drains: judge by the traffic.)
    eventually("five requests in a row served", DEADLINE, || {
        (0..5).all(|_| status(web_in, "/z") == Some(200))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", web_dp.config_dump()));

    // TCP: two connections a minute, the third is closed before it reaches the application.
    inbound_policy(
        &global,
        "MeshRateLimit",
        "db-limit",
        "db",
        "local",
        "        tcp:
          connectionRate:
            num: 2
            interval: 1m
",
    );
    configured(&db_dp, "envoy.filters.network.local_ratelimit");
    let served = db.served();
    let codes: Vec<Option<u16>> = (0..3).map(|_| status(db_in, "/t")).collect();
    assert_eq!(
        codes,
        [Some(200), Some(200), None],
        "{}",
        db_dp.config_dump()
    );
    // The backend counts a request after answering it: wait for the two, then check there
    // was no third.
    eventually("two requests served", DEADLINE, || {
        db.served() >= served + 2
    })
    .unwrap();
    assert_eq!(db.served(), served + 2);
}

/// MeshFaultInjection `web-faults` for `web` with `http`.
fn faults(global: &Global, http: &str) {
    inbound_policy(
        global,
        "MeshFaultInjection",
        "web-faults",
        "web",
        "http",
        http,
    );
}

#[test]
fn fault_injection_aborts_and_delays() {
    let (global, zone) = start();
    let web = Backend::start("web").unwrap();
    let (web_dp, web_in) = sidecar(&zone, "web-1", "web", "http", web.port, &[]);
    assert_eq!(status(web_in, "/"), Some(200));

    faults(
        &global,
        "      - abort:
          httpStatus: 418
          percentage: 100
",
    );
    eventually("every request aborted with 418", DEADLINE, || {
        status(web_in, "/a") == Some(418)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", web_dp.config_dump()));
    assert!((0..10).all(|_| status(web_in, "/a") == Some(418)));

    // Half the requests: over 200, the share aborted is roughly half.
    faults(
        &global,
        "      - abort:
          httpStatus: 503
          percentage: 50
",
    );
    configured(&web_dp, "\"http_status\": 503");
    let aborted = (0..200)
        .filter(|_| status(web_in, "/h") == Some(503))
        .count();
    assert!((50..=150).contains(&aborted), "{aborted} of 200 aborted");

    // A delay of 1s on every request.
    faults(
        &global,
        "      - delay:
          value: 1s
          percentage: 100
",
    );
    configured(&web_dp, "fixed_delay");
    let started = Instant::now();
    assert_eq!(status(web_in, "/d"), Some(200));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(950), "took {took:?}");

    // A response of 64 KiB at 100 kbps takes seconds rather than milliseconds.
    let big = ExternalServer::start(ServerOptions {
        mode: "http",
        name: "big".into(),
        ..Default::default()
    })
    .unwrap();
    let (big_dp, big_in) = sidecar(&zone, "big-1", "big", "http", big.port, &[]);
    let timed_body = || {
        let started = Instant::now();
        let response = raw_get(big_in, "/bytes/65536").expect("a response");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().len();
        (started.elapsed(), body)
    };
    let (unlimited, body) = timed_body();
    assert_eq!(body, 65536);
    inbound_policy(
        &global,
        "MeshFaultInjection",
        "big-bandwidth",
        "big",
        "http",
        "      - responseBandwidth:
          limit: 100kbps
          percentage: 100
",
    );
    configured(&big_dp, "response_rate_limit");
    let (limited, body) = timed_body();
    assert_eq!(body, 65536);
    assert!(
        limited >= Duration::from_secs(2),
        "took {limited:?} limited, {unlimited:?} before"
    );
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn access_logs_in_plain_default_and_json_formats() {
    let (global, zone) = start();
    let dir = tempfile::tempdir().unwrap();
    let (outbound_log, inbound_default, inbound_json, tcp_log) = (
        dir.path().join("outbound.log"),
        dir.path().join("inbound.log"),
        dir.path().join("inbound.json"),
        dir.path().join("tcp.log"),
    );
    let web = Backend::start("web").unwrap();
    let (_web_dp, _) = sidecar(&zone, "web-1", "web", "http", web.port, &[]);
    let db = Backend::start("db").unwrap();
    let (_db_dp, _) = sidecar(&zone, "db-1", "db", "tcp", db.port, &[]);
    let client = Backend::start("client").unwrap();
    let (outbound, db_outbound) = (free_port().unwrap(), free_port().unwrap());
    let (client_dp, _) = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client.port,
        &[(outbound, "web"), (db_outbound, "db")],
    );
    eventually("client -> web and db", DEADLINE, || {
        http_call(outbound, "web", "GET", "/", None).is_ok_and(|(c, _)| c == 200)
            && status(db_outbound, "/") == Some(200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client_dp.config_dump()));

    apply(
        &global,
        &format!(
            "type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: web
    default:
      backends:
      - file:
          path: {out}
          format:
            type: Plain
            plain: '%KUMA_MESH% %KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% %KUMA_TRAFFIC_DIRECTION% %REQ(:PATH)% %RESPONSE_CODE%'
  - targetRef:
      kind: MeshService
      name: db
    default:
      backends:
      - file:
          path: {tcp}
  from:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - file:
          path: {default}
      - file:
          path: {json}
          format:
            type: Json
            omitEmptyValues: true
            json:
            - key: destination
              value: '%KUMA_DESTINATION_SERVICE%'
            - key: path
              value: '%REQ(:PATH)%'
            - key: code
              value: '%RESPONSE_CODE%'
            - key: absent
              value: '%REQ(X-NOT-SENT)%'
",
            out = outbound_log.display(),
            default = inbound_default.display(),
            json = inbound_json.display(),
            tcp = tcp_log.display(),
        ),
    );
    // Each request after the logs are configured is recorded by both proxies (Envoy flushes
    // its log files about once a second).
    eventually("records of /logged", DEADLINE, || {
        let _ = http_call(outbound, "web", "GET", "/logged", None);
        let _ = status(db_outbound, "/tcp");
        lines(&outbound_log)
            .iter()
            .any(|l| l == "default client->web OUTBOUND /logged 200")
            && lines(&inbound_json).iter().any(|l| l.contains("/logged"))
            && !lines(&tcp_log).is_empty()
            && lines(&inbound_default)
                .iter()
                .any(|l| l.contains("/logged"))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nout: {:?}\nin: {:?}\njson: {:?}\ntcp: {:?}",
            lines(&outbound_log),
            lines(&inbound_default),
            lines(&inbound_json),
            lines(&tcp_log)
        )
    });

    let json: Vec<serde_json::Value> = lines(&inbound_json)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        json.contains(&serde_json::json!({"destination": "web", "path": "/logged", "code": 200})),
        "an empty value is left out with omitEmptyValues: {json:?}"
    );
    // Kuma's default TCP format, with this proxy's address and both services.
    let tcp = lines(&tcp_log);
    assert!(
        tcp.iter()
            .any(|l| l.contains(" default 127.0.0.1(client)->127.0.0.1:")
                && l.contains("(db) took ")
                && l.contains("ms, sent ")),
        "{tcp:?}"
    );
    // Kuma's default format: mesh, request line, status, then the services and addresses.
    let default = lines(&inbound_default);
    let line = default
        .iter()
        .find(|l| l.contains("/logged"))
        .expect("a default record");
    assert!(
        line.contains("] default \"GET /logged HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(line.contains("\"unknown\" \"web\" \"127.0.0.1\""), "{line}");
}

/// `atollctl apply` against a zone's API.
fn apply_in_zone(zone: &Zone, yaml: &str) -> Result<(), String> {
    let run = atoll_e2e::cli::atollctl(&["--api-address", &zone.api(), "apply", "-f", "-"], yaml)
        .map_err(|e| format!("{e:#}"))?;
    if run.code == 0 {
        Ok(())
    } else {
        Err(format!("{}{}", run.stdout, run.stderr))
    }
}

/// Kuma 2.x lets an operator apply a policy on a zone: it is in force in that zone only, the
/// global gets a read-only copy labelled with the zone, and each side's copies can be changed
/// only where they were written.
#[test]
fn a_policy_applied_in_a_zone_holds_there_only_and_is_synced_up() {
    let (global, zone1) = start();
    let zone2 = Zone::start("zone-2", &global, ZoneOptions::default()).unwrap();
    for zone in [&zone1, &zone2] {
        zone.wait_for("/meshes/default", DEADLINE)
            .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    }
    let web = Backend::start("web").unwrap();
    let (_web1, in1) = sidecar(&zone1, "web-1", "web", "http", web.port, &[]);
    let (_web2, in2) = sidecar(&zone2, "web-2", "web", "http", web.port, &[]);
    let policy = "type: MeshFaultInjection
mesh: default
name: zone-faults
labels:
  kuma.io/origin: global
spec:
  targetRef:
    kind: MeshService
    name: web
  from:
  - targetRef:
      kind: Mesh
    default:
      http:
      - abort:
          httpStatus: 418
          percentage: 100
";
    apply_in_zone(&zone1, policy).unwrap();
    eventually("zone-1's web aborts with 418", DEADLINE, || {
        status(in1, "/") == Some(418)
    })
    .unwrap();
    assert_eq!(status(in2, "/"), Some(200), "zone-2 is not affected");

    // The global's copy, named and labelled after the zone whatever the document claimed.
    let copy = "/meshes/default/meshfaultinjections/zone-1.zone-faults";
    eventually("the global holds zone-1's policy", DEADLINE, || {
        http_call(global.http_port, "global", "GET", copy, None).is_ok_and(|(s, _)| s == 200)
    })
    .unwrap();
    let (_, body) = http_call(global.http_port, "global", "GET", copy, None).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stored["labels"]["kuma.io/origin"], "zone", "{body}");
    assert_eq!(stored["labels"]["kuma.io/zone"], "zone-1", "{body}");
    assert_eq!(
        stored["labels"]["kuma.io/display-name"], "zone-faults",
        "{body}"
    );
    // Not sent down to zone-2.
    let (status2, _) = http_call(
        zone2.http_port,
        "zone",
        "GET",
        "/meshes/default/meshfaultinjections/zone-1.zone-faults",
        None,
    )
    .unwrap();
    assert_eq!(status2, 404);

    // Read-only where it was not written.
    let (refused, why) = http_call(global.http_port, "global", "DELETE", copy, None).unwrap();
    assert_eq!(refused, 400, "{why}");
    assert!(why.contains("applied in zone \\\"zone-1\\\""), "{why}");
    apply(
        &global,
        "type: MeshTimeout
mesh: default
name: from-global
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 1h
",
    );
    zone1
        .wait_for("/meshes/default/meshtimeouts/from-global", DEADLINE)
        .unwrap();
    let change = "type: MeshTimeout\nmesh: default\nname: from-global\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n  - targetRef:\n      kind: Mesh\n    default:\n      idleTimeout: 1m\n";
    let why = apply_in_zone(&zone1, change).unwrap_err();
    assert!(why.contains("applied on the global"), "{why}");

    // Deleting it in the zone lifts it there and removes the global's copy.
    let run = atoll_e2e::cli::atollctl(
        &[
            "--api-address",
            &zone1.api(),
            "delete",
            "meshfaultinjection",
            "zone-faults",
            "-m",
            "default",
        ],
        "",
    )
    .unwrap();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    eventually("zone-1's web answers again", DEADLINE, || {
        status(in1, "/") == Some(200)
    })
    .unwrap();
    eventually("the global's copy is gone", DEADLINE, || {
        http_call(global.http_port, "global", "GET", copy, None).is_ok_and(|(s, _)| s == 404)
    })
    .unwrap();
}

/// A TCP server collecting the lines it receives, on any number of connections.
fn line_collector() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = lines.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let collected = collected.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    collected.lock().unwrap().push(line);
                }
            });
        }
    });
    (port, lines)
}

/// MeshAccessLog TCP backends: Envoy formats each record and `atoll-dp` relays it to the
/// backend as one line, plain or JSON as configured.
#[test]
fn access_logs_reach_a_tcp_backend_as_lines() {
    let (global, zone) = start();
    let (collector, received) = line_collector();
    let web = Backend::start("web").unwrap();
    let (_web_dp, _) = sidecar(&zone, "web-1", "web", "http", web.port, &[]);
    let client = Backend::start("client").unwrap();
    let outbound = free_port().unwrap();
    let (client_dp, _) = sidecar(
        &zone,
        "client-1",
        "client",
        "http",
        client.port,
        &[(outbound, "web")],
    );
    eventually("client -> web", DEADLINE, || {
        http_call(outbound, "web", "GET", "/", None).is_ok_and(|(c, _)| c == 200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", client_dp.config_dump()));
    apply(
        &global,
        &format!(
            "type: MeshAccessLog
mesh: default
name: to-logstash
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: web
    default:
      backends:
      - tcp:
          address: 127.0.0.1:{collector}
          format:
            type: Plain
            plain: 'plain %KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% %REQ(:PATH)% %RESPONSE_CODE%'
  from:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - tcp:
          address: localhost:{collector}
          format:
            type: Json
            json:
            - key: direction
              value: '%KUMA_TRAFFIC_DIRECTION%'
            - key: path
              value: '%REQ(:PATH)%'
            - key: code
              value: '%RESPONSE_CODE%'
"
        ),
    );
    let has = |wanted: &dyn Fn(&str) -> bool| received.lock().unwrap().iter().any(|l| wanted(l));
    eventually("both records of /relayed at the backend", DEADLINE, || {
        let _ = http_call(outbound, "web", "GET", "/relayed", None);
        has(&|l| l == "plain client->web /relayed 200")
            && has(&|l| l == r#"{"code":200,"direction":"INBOUND","path":"/relayed"}"#)
    })
    .unwrap_or_else(|e| panic!("{e}\nreceived: {:?}", received.lock().unwrap()));
    // Nothing but records arrives: no relay envelope, no stray lines.
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|l| l.starts_with("plain client->web ") || l.starts_with(r#"{"code":"#)),
        "{:?}",
        received.lock().unwrap()
    );
}
