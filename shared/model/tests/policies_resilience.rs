//! MeshCircuitBreaker and MeshHealthCheck validation, rule by rule: each rule rejects one
//! document at its field path, and the valid values next to it are accepted.

mod support;

use support::*;

/// Every field of MeshCircuitBreaker's `to[].default` in use.
const CIRCUIT_BREAKER: &str = r#"
type: MeshCircuitBreaker
name: backend-breaker
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: web
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      connectionLimits:
        maxConnections: 2
        maxConnectionPools: 3
        maxPendingRequests: 4
        maxRetries: 5
        maxRequests: 6
      outlierDetection:
        disabled: false
        interval: 5s
        baseEjectionTime: 30s
        maxEjectionPercent: 20
        splitExternalAndLocalErrors: true
        detectors:
          totalFailures:
            consecutive: 10
          gatewayFailures:
            consecutive: 10
          localOriginFailures:
            consecutive: 10
          successRate:
            minimumHosts: 5
            requestVolume: 10
            standardDeviationFactor: "1.9"
          failurePercentage:
            requestVolume: 10
            minimumHosts: 5
            threshold: 85
"#;

/// Every field of MeshHealthCheck's `to[].default` in use.
const HEALTH_CHECK: &str = r#"
type: MeshHealthCheck
name: backend-checks
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      interval: 10s
      timeout: 2s
      unhealthyThreshold: 3
      healthyThreshold: 1
      initialJitter: 5s
      intervalJitter: 6s
      intervalJitterPercent: 10
      healthyPanicThreshold: 60
      failTrafficOnPanic: true
      noTrafficInterval: 10s
      eventLogPath: /tmp/health-check.log
      alwaysLogHealthCheckFailures: true
      reuseConnection: false
      http:
        disabled: false
        path: /health
        expectedStatuses: [200, 201]
        requestHeadersToAdd:
          set:
          - name: x-check
            value: "yes"
          add:
          - name: x-more
            value: a,b
      tcp:
        disabled: false
        send: ping
        receive: [pong]
"#;

#[test]
fn circuit_breaker_shape() {
    run_table(
        CIRCUIT_BREAKER,
        &[
            edit(
                "top-level Mesh",
                |v| set(v, "spec.targetRef", json!({"kind": "Mesh"})),
                PASS,
            ),
            edit(
                "top-level MeshSubset",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshSubset", "tags": {"version": "v2"}}),
                    )
                },
                PASS,
            ),
            edit(
                "no top-level targetRef",
                |v| remove(v, "spec.targetRef"),
                fail("spec.targetRef", "must be set"),
            ),
            edit(
                "top-level MeshGateway (its clusters)",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge"}),
                    )
                },
                PASS,
            ),
            edit(
                "a gateway's listener",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge", "tags": {"port": "80"}}),
                    )
                },
                fail("spec.targetRef.tags", "its listeners share them"),
            ),
            edit(
                "inbound on a gateway",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge"}),
                    );
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {"connectionLimits": {"maxConnections": 1}}}]),
                    );
                },
                fail(
                    "spec.from",
                    "with a top-level targetRef of kind MeshGateway",
                ),
            ),
            edit(
                "a route of a gateway",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshHTTPRoute", "name": "r"}),
                    )
                },
                fail("spec.targetRef.kind", "not supported here yet"),
            ),
            edit(
                "to Mesh",
                |v| set(v, "spec.to[0].targetRef", json!({"kind": "Mesh"})),
                PASS,
            ),
            edit(
                "to a MeshExternalService",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshExternalService", "name": "httpbin"}),
                    )
                },
                PASS,
            ),
            edit(
                "to a MeshExternalService without a name",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshExternalService"}),
                    )
                },
                fail("spec.to[0].targetRef.name", "must be set"),
            ),
            edit(
                "to a MeshHTTPRoute",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshHTTPRoute", "name": "r"}),
                    )
                },
                fail("spec.to[0].targetRef.kind", "not supported here yet"),
            ),
            edit(
                "no entries",
                |v| remove(v, "spec.to"),
                fail("spec", "must have to[] or from[] entries"),
            ),
            edit(
                "from[] (inbound clusters)",
                |v| {
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {"connectionLimits": {"maxConnections": 1}}}]),
                    )
                },
                PASS,
            ),
            edit(
                "from[] naming one caller",
                |v| {
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "MeshService", "name": "web"}, "default": {"connectionLimits": {"maxConnections": 1}}}]),
                    )
                },
                fail("spec.from[0].targetRef.kind", "every caller shares"),
            ),
            edit(
                "a from[] entry is checked like a to[] one",
                |v| {
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {}}]),
                    )
                },
                fail("spec.from[0].default", "at least one of connectionLimits"),
            ),
            edit(
                "rules[]",
                |v| {
                    set(
                        v,
                        "spec.rules",
                        json!([{"default": {"connectionLimits": {"maxConnections": 1}}}]),
                    )
                },
                PASS,
            ),
            edit(
                "no default",
                |v| remove(v, "spec.to[0].default"),
                fail("spec.to[0].default", "must be set"),
            ),
            edit(
                "an empty default",
                |v| set(v, "spec.to[0].default", json!({})),
                fail(
                    "spec.to[0].default",
                    "at least one of connectionLimits, outlierDetection",
                ),
            ),
            edit(
                "an unknown field",
                |v| {
                    set(
                        v,
                        "spec.to[0].default.connectionLimits.maxStreams",
                        json!(1),
                    )
                },
                fail(
                    "spec.to[0].default.connectionLimits.maxStreams",
                    "unknown field",
                ),
            ),
        ],
    );
}

#[test]
fn circuit_breaker_connection_limits() {
    let mut cases = vec![
        edit(
            "limits only",
            |v| remove(v, "spec.to[0].default.outlierDetection"),
            PASS,
        ),
        edit(
            "one limit only",
            |v| {
                set(
                    v,
                    "spec.to[0].default.connectionLimits",
                    json!({"maxRequests": 1}),
                )
            },
            PASS,
        ),
        edit(
            "negative (not a uint32)",
            |v| {
                set(
                    v,
                    "spec.to[0].default.connectionLimits.maxConnections",
                    json!(-1),
                )
            },
            fail("spec.to[0].default.connectionLimits.maxConnections", ""),
        ),
    ];
    // Each limit: zero is refused at its own path, one is accepted.
    macro_rules! limit {
        ($field:literal) => {
            cases.push(edit(
                concat!($field, " 0"),
                |v| {
                    set(
                        v,
                        concat!("spec.to[0].default.connectionLimits.", $field),
                        json!(0),
                    )
                },
                fail(
                    concat!("spec.to[0].default.connectionLimits.", $field),
                    "must be greater than 0",
                ),
            ));
            cases.push(edit(
                concat!($field, " 1"),
                |v| {
                    set(
                        v,
                        concat!("spec.to[0].default.connectionLimits.", $field),
                        json!(1),
                    )
                },
                PASS,
            ));
        };
    }
    limit!("maxConnections");
    limit!("maxConnectionPools");
    limit!("maxPendingRequests");
    limit!("maxRetries");
    limit!("maxRequests");
    run_table(CIRCUIT_BREAKER, &cases);
}

#[test]
fn circuit_breaker_outlier_detection() {
    const OD: &str = "spec.to[0].default.outlierDetection";
    run_table(
        CIRCUIT_BREAKER,
        &[
            edit(
                "outlier detection only",
                |v| remove(v, "spec.to[0].default.connectionLimits"),
                PASS,
            ),
            edit(
                "disabled",
                |v| set(v, &format!("{OD}.disabled"), json!(true)),
                PASS,
            ),
            edit(
                "interval 0",
                |v| set(v, &format!("{OD}.interval"), json!("0s")),
                fail(
                    "spec.to[0].default.outlierDetection.interval",
                    "greater than 0",
                ),
            ),
            edit(
                "interval not a duration",
                |v| set(v, &format!("{OD}.interval"), json!("often")),
                fail(
                    "spec.to[0].default.outlierDetection.interval",
                    "not a duration",
                ),
            ),
            edit(
                "interval 100ms",
                |v| set(v, &format!("{OD}.interval"), json!("100ms")),
                PASS,
            ),
            edit(
                "baseEjectionTime 0",
                |v| set(v, &format!("{OD}.baseEjectionTime"), json!("0")),
                fail(
                    "spec.to[0].default.outlierDetection.baseEjectionTime",
                    "greater than 0",
                ),
            ),
            edit(
                "maxEjectionPercent 101",
                |v| set(v, &format!("{OD}.maxEjectionPercent"), json!(101)),
                fail(
                    "spec.to[0].default.outlierDetection.maxEjectionPercent",
                    "percentage",
                ),
            ),
            edit(
                "maxEjectionPercent 100",
                |v| set(v, &format!("{OD}.maxEjectionPercent"), json!(100)),
                PASS,
            ),
            edit(
                "maxEjectionPercent 0",
                |v| set(v, &format!("{OD}.maxEjectionPercent"), json!(0)),
                PASS,
            ),
            edit(
                "no detectors (required, as in Kuma)",
                |v| remove(v, &format!("{OD}.detectors")),
                fail(
                    "spec.to[0].default.outlierDetection.detectors",
                    "must be set",
                ),
            ),
            edit(
                "empty detectors",
                |v| set(v, &format!("{OD}.detectors"), json!({})),
                fail(
                    "spec.to[0].default.outlierDetection.detectors",
                    "at least one of totalFailures",
                ),
            ),
            edit(
                "one detector only",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors"),
                        json!({"gatewayFailures": {"consecutive": 1}}),
                    )
                },
                PASS,
            ),
            edit(
                "a detector without its count",
                |v| set(v, &format!("{OD}.detectors"), json!({"totalFailures": {}})),
                PASS,
            ),
            edit(
                "totalFailures 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.totalFailures.consecutive"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.totalFailures.consecutive",
                    "greater than 0",
                ),
            ),
            edit(
                "gatewayFailures 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.gatewayFailures.consecutive"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.gatewayFailures.consecutive",
                    "greater than 0",
                ),
            ),
            edit(
                "localOriginFailures 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.localOriginFailures.consecutive"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.localOriginFailures.consecutive",
                    "greater than 0",
                ),
            ),
            edit(
                "successRate minimumHosts 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.successRate.minimumHosts"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.successRate.minimumHosts",
                    "greater than 0",
                ),
            ),
            edit(
                "successRate requestVolume 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.successRate.requestVolume"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.successRate.requestVolume",
                    "greater than 0",
                ),
            ),
            edit(
                "standardDeviationFactor as an integer",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.successRate.standardDeviationFactor"),
                        json!(2),
                    )
                },
                PASS,
            ),
            edit(
                "standardDeviationFactor 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.successRate.standardDeviationFactor"),
                        json!("0.0"),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.successRate.standardDeviationFactor",
                    "greater than 0",
                ),
            ),
            edit(
                "standardDeviationFactor not a number",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.successRate.standardDeviationFactor"),
                        json!("high"),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.successRate.standardDeviationFactor",
                    "must be a number",
                ),
            ),
            edit(
                "failurePercentage threshold 101",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.failurePercentage.threshold"),
                        json!(101),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.failurePercentage.threshold",
                    "percentage",
                ),
            ),
            edit(
                "failurePercentage minimumHosts 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.failurePercentage.minimumHosts"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.failurePercentage.minimumHosts",
                    "greater than 0",
                ),
            ),
            edit(
                "failurePercentage requestVolume 0",
                |v| {
                    set(
                        v,
                        &format!("{OD}.detectors.failurePercentage.requestVolume"),
                        json!(0),
                    )
                },
                fail(
                    "spec.to[0].default.outlierDetection.detectors.failurePercentage.requestVolume",
                    "greater than 0",
                ),
            ),
        ],
    );
}

#[test]
fn health_check_shape() {
    run_table(
        HEALTH_CHECK,
        &[
            edit(
                "top-level MeshServiceSubset",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "v1"}}),
                    )
                },
                PASS,
            ),
            edit(
                "no top-level targetRef",
                |v| remove(v, "spec.targetRef"),
                fail("spec.targetRef", "must be set"),
            ),
            edit(
                "to Mesh",
                |v| set(v, "spec.to[0].targetRef", json!({"kind": "Mesh"})),
                PASS,
            ),
            edit(
                "to a MeshService without a name",
                |v| remove(v, "spec.to[0].targetRef.name"),
                fail("spec.to[0].targetRef.name", "must be set"),
            ),
            edit(
                "no to",
                |v| remove(v, "spec.to"),
                fail("spec.to", "at least one entry"),
            ),
            edit(
                "from[] (Kuma has none)",
                |v| {
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {}}}]),
                    )
                },
                fail("spec.from", "does not configure inbound"),
            ),
            edit(
                "no checker",
                |v| {
                    remove(v, "spec.to[0].default.http");
                    remove(v, "spec.to[0].default.tcp");
                },
                fail("spec.to[0].default", "at least one of http, tcp, grpc"),
            ),
            edit(
                "tcp only, connect only",
                |v| {
                    remove(v, "spec.to[0].default.http");
                    set(v, "spec.to[0].default.tcp", json!({}));
                },
                PASS,
            ),
            edit(
                "http only, all defaults",
                |v| {
                    remove(v, "spec.to[0].default.tcp");
                    set(v, "spec.to[0].default.http", json!({}));
                },
                PASS,
            ),
            edit(
                "grpc",
                |v| {
                    set(
                        v,
                        "spec.to[0].default.grpc",
                        json!({"serviceName": "health", "authority": "grpc.internal"}),
                    )
                },
                PASS,
            ),
            edit(
                "grpc disabled (tcp checks gRPC services, as in Kuma)",
                |v| set(v, "spec.to[0].default.grpc", json!({"disabled": true})),
                PASS,
            ),
            edit(
                "an unknown field",
                |v| set(v, "spec.to[0].default.unhealthyInterval", json!("1s")),
                fail("spec.to[0].default.unhealthyInterval", "unknown field"),
            ),
        ],
    );
}

#[test]
fn health_check_timing() {
    let mut cases = vec![
        edit(
            "no timing at all (Kuma's defaults)",
            |v| {
                let d = "spec.to[0].default";
                for field in [
                    "interval",
                    "timeout",
                    "unhealthyThreshold",
                    "healthyThreshold",
                    "initialJitter",
                    "intervalJitter",
                    "intervalJitterPercent",
                    "noTrafficInterval",
                    "healthyPanicThreshold",
                ] {
                    remove(v, &format!("{d}.{field}"));
                }
            },
            PASS,
        ),
        edit(
            "interval not a duration",
            |v| set(v, "spec.to[0].default.interval", json!("10")),
            fail("spec.to[0].default.interval", "not a duration"),
        ),
        edit(
            "unhealthyThreshold 0",
            |v| set(v, "spec.to[0].default.unhealthyThreshold", json!(0)),
            fail("spec.to[0].default.unhealthyThreshold", "greater than 0"),
        ),
        edit(
            "healthyThreshold -1",
            |v| set(v, "spec.to[0].default.healthyThreshold", json!(-1)),
            fail("spec.to[0].default.healthyThreshold", "greater than 0"),
        ),
        edit(
            "healthyThreshold 2",
            |v| set(v, "spec.to[0].default.healthyThreshold", json!(2)),
            PASS,
        ),
        edit(
            "intervalJitterPercent -1",
            |v| set(v, "spec.to[0].default.intervalJitterPercent", json!(-1)),
            fail("spec.to[0].default.intervalJitterPercent", "percentage"),
        ),
        edit(
            "intervalJitterPercent 101",
            |v| set(v, "spec.to[0].default.intervalJitterPercent", json!(101)),
            fail("spec.to[0].default.intervalJitterPercent", "percentage"),
        ),
        edit(
            "intervalJitterPercent 100",
            |v| set(v, "spec.to[0].default.intervalJitterPercent", json!(100)),
            PASS,
        ),
        edit(
            "healthyPanicThreshold as a decimal string",
            |v| set(v, "spec.to[0].default.healthyPanicThreshold", json!("50.5")),
            PASS,
        ),
        edit(
            "healthyPanicThreshold 0 (panic mode off)",
            |v| set(v, "spec.to[0].default.healthyPanicThreshold", json!(0)),
            PASS,
        ),
        edit(
            "healthyPanicThreshold 100.1",
            |v| {
                set(
                    v,
                    "spec.to[0].default.healthyPanicThreshold",
                    json!("100.1"),
                )
            },
            fail("spec.to[0].default.healthyPanicThreshold", "percentage"),
        ),
        edit(
            "healthyPanicThreshold not a number",
            |v| set(v, "spec.to[0].default.healthyPanicThreshold", json!("half")),
            fail("spec.to[0].default.healthyPanicThreshold", "percentage"),
        ),
        edit(
            "eventLogPath relative",
            |v| set(v, "spec.to[0].default.eventLogPath", json!("hc.log")),
            fail("spec.to[0].default.eventLogPath", "absolute path"),
        ),
        edit(
            "eventLogPath a directory",
            |v| set(v, "spec.to[0].default.eventLogPath", json!("/tmp/")),
            fail("spec.to[0].default.eventLogPath", "absolute path"),
        ),
        edit(
            "eventLogPath /dev/stdout",
            |v| set(v, "spec.to[0].default.eventLogPath", json!("/dev/stdout")),
            PASS,
        ),
    ];
    // Each duration: zero is refused at its own path, a millisecond is accepted.
    macro_rules! positive_duration {
        ($field:literal) => {
            cases.push(edit(
                concat!($field, " 0s"),
                |v| set(v, concat!("spec.to[0].default.", $field), json!("0s")),
                fail(
                    concat!("spec.to[0].default.", $field),
                    "must be greater than 0",
                ),
            ));
            cases.push(edit(
                concat!($field, " 1ms"),
                |v| set(v, concat!("spec.to[0].default.", $field), json!("1ms")),
                PASS,
            ));
        };
    }
    positive_duration!("interval");
    positive_duration!("timeout");
    positive_duration!("initialJitter");
    positive_duration!("intervalJitter");
    positive_duration!("noTrafficInterval");
    run_table(HEALTH_CHECK, &cases);
}

#[test]
fn health_check_http_and_tcp() {
    const HTTP: &str = "spec.to[0].default.http";
    run_table(
        HEALTH_CHECK,
        &[
            edit(
                "http disabled, tcp left",
                |v| set(v, &format!("{HTTP}.disabled"), json!(true)),
                PASS,
            ),
            edit(
                "empty path",
                |v| set(v, &format!("{HTTP}.path"), json!("")),
                fail("spec.to[0].default.http.path", "must not be empty"),
            ),
            edit(
                "path with a line break",
                |v| set(v, &format!("{HTTP}.path"), json!("/health\r\nx: y")),
                fail("spec.to[0].default.http.path", "CR or LF"),
            ),
            edit(
                "path with a query",
                |v| set(v, &format!("{HTTP}.path"), json!("/health?deep=1")),
                PASS,
            ),
            edit(
                "expected status 99",
                |v| set(v, &format!("{HTTP}.expectedStatuses"), json!([200, 99])),
                fail(
                    "spec.to[0].default.http.expectedStatuses[1]",
                    "from 100 to 599",
                ),
            ),
            edit(
                "expected status 600",
                |v| set(v, &format!("{HTTP}.expectedStatuses"), json!([600])),
                fail(
                    "spec.to[0].default.http.expectedStatuses[0]",
                    "from 100 to 599",
                ),
            ),
            edit(
                "expected statuses 100 and 599",
                |v| set(v, &format!("{HTTP}.expectedStatuses"), json!([100, 599])),
                PASS,
            ),
            edit(
                "header without a name",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.add[0].name"),
                        json!(""),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.add[0].name",
                    "must be set",
                ),
            ),
            edit(
                "header name with a space",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.set[0].name"),
                        json!("x check"),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.set[0].name",
                    "not a header name",
                ),
            ),
            edit(
                "setting host",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.set[0].name"),
                        json!("Host"),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.set[0].name",
                    "cannot be changed",
                ),
            ),
            edit(
                "adding a pseudo-header",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.add[0].name"),
                        json!(":authority"),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.add[0].name",
                    "cannot be changed",
                ),
            ),
            edit(
                "header value with a line break",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.add[0].value"),
                        json!("a\nb"),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.add[0].value",
                    "CR or LF",
                ),
            ),
            edit(
                "header with an upper-case name and an empty value",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.add[0]"),
                        json!({"name": "X-Empty", "value": ""}),
                    )
                },
                PASS,
            ),
            edit(
                "17 headers to set",
                |v| {
                    let many: Vec<Value> = (0..17)
                        .map(|i| json!({"name": format!("x-{i}"), "value": "v"}))
                        .collect();
                    set(v, &format!("{HTTP}.requestHeadersToAdd.set"), json!(many));
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.set",
                    "at most 16",
                ),
            ),
            edit(
                "16 headers to set",
                |v| {
                    let many: Vec<Value> = (0..16)
                        .map(|i| json!({"name": format!("x-{i}"), "value": "v"}))
                        .collect();
                    set(v, &format!("{HTTP}.requestHeadersToAdd.set"), json!(many));
                },
                PASS,
            ),
            edit(
                "remove (routes only)",
                |v| {
                    set(
                        v,
                        &format!("{HTTP}.requestHeadersToAdd.remove"),
                        json!(["x"]),
                    )
                },
                fail(
                    "spec.to[0].default.http.requestHeadersToAdd.remove",
                    "unknown field",
                ),
            ),
            edit(
                "tcp send empty",
                |v| set(v, "spec.to[0].default.tcp.send", json!("")),
                fail("spec.to[0].default.tcp.send", "must not be empty"),
            ),
            edit(
                "tcp receive with an empty block",
                |v| set(v, "spec.to[0].default.tcp.receive", json!(["pong", ""])),
                fail("spec.to[0].default.tcp.receive[1]", "must not be empty"),
            ),
            edit(
                "tcp receive empty (connect only)",
                |v| set(v, "spec.to[0].default.tcp.receive", json!([])),
                PASS,
            ),
            edit(
                "tcp disabled, http left",
                |v| set(v, "spec.to[0].default.tcp.disabled", json!(true)),
                PASS,
            ),
        ],
    );
}

/// Every violation of a document is reported at once, each at its path.
#[test]
fn every_violation_at_once() {
    let mut doc = yaml(HEALTH_CHECK);
    set(&mut doc, "spec.to[0].default.interval", json!("0s"));
    set(&mut doc, "spec.to[0].default.unhealthyThreshold", json!(0));
    set(
        &mut doc,
        "spec.to[0].default.http.expectedStatuses",
        json!([700]),
    );
    set(&mut doc, "spec.to[0].default.healthyThreshold", json!(-1));
    assert_exact_violations(
        "four broken rules",
        doc,
        &[
            ("spec.to[0].default.interval", "greater than 0"),
            ("spec.to[0].default.unhealthyThreshold", "greater than 0"),
            ("spec.to[0].default.http.expectedStatuses[0]", "100 to 599"),
            ("spec.to[0].default.healthyThreshold", "greater than 0"),
        ],
    );
}

/// Both types round-trip through YAML and JSON exactly, every field included.
#[test]
fn documents_round_trip() {
    for text in [CIRCUIT_BREAKER, HEALTH_CHECK] {
        let resource = decode(text).unwrap_or_else(|e| panic!("{e:?}"));
        for encoded in [
            atoll_model::to_json(&resource),
            atoll_model::to_yaml(&resource),
        ] {
            let again = atoll_model::parse_documents(&encoded)
                .remove(0)
                .outcome
                .unwrap_or_else(|e| panic!("{e:?}\n{encoded}"));
            assert_eq!(resource, again, "{encoded}");
        }
        assert_eq!(
            atoll_model::encode_value(&resource)["spec"],
            yaml(text)["spec"],
            "every field survives"
        );
    }
}
