//! MeshRateLimit, MeshFaultInjection and MeshAccessLog validation: every field's rule, and
//! what Atoll refuses as not supported yet.

mod support;

use support::*;

const RATE_LIMIT: &str = r#"
type: MeshRateLimit
name: limits
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: web
  from:
  - targetRef:
      kind: Mesh
    default:
      local:
        http:
          requestRate:
            num: 5
            interval: 10s
          onRateLimit:
            status: 423
            headers:
              set:
              - name: x-kuma-rate-limited
                value: "true"
              add:
              - name: x-limit
                value: five
        tcp:
          connectionRate:
            num: 2
            interval: 1m
"#;

const LOCAL: &str = "spec.from[0].default.local";

#[test]
fn rate_limit_fields() {
    run_table(
        RATE_LIMIT,
        &[
            edit(
                "http only",
                |v| remove(v, "spec.from[0].default.local.tcp"),
                PASS,
            ),
            edit(
                "disabled needs no rate",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http",
                        json!({"disabled": true}),
                    )
                },
                PASS,
            ),
            edit(
                "to[] is not for this policy",
                |v| {
                    set(
                        v,
                        "spec.to",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {}}]),
                    )
                },
                fail("spec.to", "does not configure outbound"),
            ),
            edit(
                "one caller",
                |v| {
                    set(
                        v,
                        "spec.from[0].targetRef",
                        json!({"kind": "MeshService", "name": "client"}),
                    )
                },
                fail("spec.from[0].targetRef.kind", "not supported yet"),
            ),
            edit(
                "local missing",
                |v| remove(v, "spec.from[0].default.local"),
                fail(LOCAL, "must be set"),
            ),
            edit(
                "local empty",
                |v| set(v, "spec.from[0].default.local", json!({})),
                fail(LOCAL, "must set http, tcp or both"),
            ),
            edit(
                "request rate missing",
                |v| remove(v, "spec.from[0].default.local.http.requestRate"),
                fail(
                    "spec.from[0].default.local.http.requestRate",
                    "unless disabled",
                ),
            ),
            edit(
                "zero requests",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.requestRate.num",
                        json!(0),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.requestRate.num",
                    "at least 1",
                ),
            ),
            edit(
                "negative requests",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.requestRate.num",
                        json!(-1),
                    )
                },
                fail("spec.from[0].default.local.http.requestRate.num", ""),
            ),
            edit(
                "interval not a duration",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.requestRate.interval",
                        json!("soon"),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.requestRate.interval",
                    "not a duration",
                ),
            ),
            edit(
                "interval too short for Envoy",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.requestRate.interval",
                        json!("10ms"),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.requestRate.interval",
                    "at least 50ms",
                ),
            ),
            edit(
                "status Envoy cannot send",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.onRateLimit.status",
                        json!(299),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.onRateLimit.status",
                    "not an HTTP status Envoy can send",
                ),
            ),
            edit(
                "header without a name",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.onRateLimit.headers.add[0].name",
                        json!(""),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.onRateLimit.headers.add[0].name",
                    "",
                ),
            ),
            edit(
                "unknown header operation",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.http.onRateLimit.headers.remove",
                        json!(["x"]),
                    )
                },
                fail(
                    "spec.from[0].default.local.http.onRateLimit.headers.remove",
                    "unknown field",
                ),
            ),
            edit(
                "connection rate missing",
                |v| remove(v, "spec.from[0].default.local.tcp.connectionRate"),
                fail(
                    "spec.from[0].default.local.tcp.connectionRate",
                    "unless disabled",
                ),
            ),
            edit(
                "connection interval too short",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.local.tcp.connectionRate.interval",
                        json!("1ms"),
                    )
                },
                fail(
                    "spec.from[0].default.local.tcp.connectionRate.interval",
                    "at least 50ms",
                ),
            ),
            edit(
                "rules[] beside from[]",
                |v| {
                    set(
                        v,
                        "spec.rules",
                        json!([{"default": {"local": {"tcp": {"connectionRate": {"num": 1, "interval": "1s"}}}}}]),
                    )
                },
                fail("spec.rules", "cannot be combined with from[]"),
            ),
            edit(
                "rules[] instead of from[]",
                |v| {
                    let from = get(v, "spec.from[0].default");
                    remove(v, "spec.from");
                    set(v, "spec.rules", json!([{"default": from}]));
                },
                PASS,
            ),
            edit(
                "a rule is checked like a from[] entry",
                |v| {
                    remove(v, "spec.from");
                    set(v, "spec.rules", json!([{"default": {"local": {}}}]));
                },
                fail("spec.rules[0].default.local", "must set http, tcp or both"),
            ),
            edit(
                "a rule without default",
                |v| {
                    remove(v, "spec.from");
                    set(v, "spec.rules", json!([{}]));
                },
                fail("spec.rules[0].default", "must be set"),
            ),
        ],
    );
}

const FAULTS: &str = r#"
type: MeshFaultInjection
name: faults
mesh: default
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      http:
      - abort:
          httpStatus: 500
          percentage: "2.5"
        delay:
          value: 5s
          percentage: 5
        responseBandwidth:
          limit: 50Mbps
          percentage: 50
      - abort:
          httpStatus: 503
          percentage: 10
"#;

#[test]
fn fault_injection_fields() {
    run_table(
        FAULTS,
        &[
            edit(
                "kbps and Gbps",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].responseBandwidth.limit",
                        json!("1Gbps"),
                    )
                },
                PASS,
            ),
            edit(
                "one caller",
                |v| {
                    set(
                        v,
                        "spec.from[0].targetRef",
                        json!({"kind": "MeshService", "name": "client"}),
                    )
                },
                fail("spec.from[0].targetRef.kind", "not supported yet"),
            ),
            edit(
                "to[] is not for this policy",
                |v| {
                    set(
                        v,
                        "spec.to",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {}}]),
                    )
                },
                fail("spec.to", "does not configure outbound"),
            ),
            edit(
                "no faults",
                |v| set(v, "spec.from[0].default.http", json!([])),
                fail("spec.from[0].default.http", "at least one entry"),
            ),
            edit(
                "empty fault",
                |v| set(v, "spec.from[0].default.http[1]", json!({})),
                fail("spec.from[0].default.http[1]", "must set abort, delay or"),
            ),
            edit(
                "abort status below 200",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].abort.httpStatus",
                        json!(100),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].abort.httpStatus",
                    "200 to 599",
                ),
            ),
            edit(
                "abort status missing",
                |v| remove(v, "spec.from[0].default.http[0].abort.httpStatus"),
                fail(
                    "spec.from[0].default.http[0].abort.httpStatus",
                    "200 to 599",
                ),
            ),
            edit(
                "percentage above 100",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].abort.percentage",
                        json!(101),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].abort.percentage",
                    "from 0 to 100",
                ),
            ),
            edit(
                "percentage not a number",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].delay.percentage",
                        json!("half"),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].delay.percentage",
                    "from 0 to 100",
                ),
            ),
            edit(
                "percentage missing",
                |v| {
                    remove(
                        v,
                        "spec.from[0].default.http[0].responseBandwidth.percentage",
                    )
                },
                fail(
                    "spec.from[0].default.http[0].responseBandwidth.percentage",
                    "must be set",
                ),
            ),
            edit(
                "delay not a duration",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].delay.value",
                        json!("later"),
                    )
                },
                fail("spec.from[0].default.http[0].delay.value", "not a duration"),
            ),
            edit(
                "bandwidth unit unknown",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].responseBandwidth.limit",
                        json!("50MB/s"),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].responseBandwidth.limit",
                    "not a bandwidth",
                ),
            ),
            edit(
                "bandwidth below Envoy's 1 KiB/s",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].responseBandwidth.limit",
                        json!("4kbps"),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].responseBandwidth.limit",
                    "at least 1 KiB/s",
                ),
            ),
            edit(
                "bandwidth zero",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.http[0].responseBandwidth.limit",
                        json!("0kbps"),
                    )
                },
                fail(
                    "spec.from[0].default.http[0].responseBandwidth.limit",
                    "at least 1 KiB/s",
                ),
            ),
            edit(
                "unknown fault field",
                |v| set(v, "spec.from[0].default.http[0].reset", json!({})),
                fail("spec.from[0].default.http[0].reset", "unknown field"),
            ),
        ],
    );
}

const ACCESS_LOG: &str = r#"
type: MeshAccessLog
name: logs
mesh: default
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
          path: /var/log/out.log
          format:
            type: Plain
            plain: "%KUMA_SOURCE_SERVICE% %RESPONSE_CODE%"
  from:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - file:
          path: /var/log/in.log
      - file:
          path: /var/log/in.json
          format:
            type: Json
            omitEmptyValues: true
            json:
            - key: mesh
              value: "%KUMA_MESH%"
"#;

const BACKEND: &str = "spec.from[0].default.backends[0]";

#[test]
fn access_log_fields() {
    run_table(
        ACCESS_LOG,
        &[
            edit("inbound only", |v| remove(v, "spec.to"), PASS),
            edit(
                "one caller",
                |v| {
                    set(
                        v,
                        "spec.from[0].targetRef",
                        json!({"kind": "MeshService", "name": "client"}),
                    )
                },
                fail("spec.from[0].targetRef.kind", "not supported yet"),
            ),
            edit(
                "no sections",
                |v| {
                    remove(v, "spec.to");
                    remove(v, "spec.from");
                },
                fail("spec", "must have to[] or from[] entries"),
            ),
            edit(
                "no backends",
                |v| set(v, "spec.from[0].default.backends", json!([])),
                fail("spec.from[0].default.backends", "at least one entry"),
            ),
            edit(
                "backend of no kind",
                |v| set(v, "spec.from[0].default.backends[0]", json!({})),
                fail(BACKEND, "exactly one of file, tcp, otelLogs"),
            ),
            edit(
                "two kinds in one backend",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0].tcp",
                        json!({"address": "127.0.0.1:5000"}),
                    )
                },
                fail(BACKEND, "exactly one of file, tcp, otelLogs"),
            ),
            edit(
                "OpenTelemetry backend",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0]",
                        json!({"otelLogs": {"endpoint": "otel:4317"}}),
                    )
                },
                fail(
                    "spec.from[0].default.backends[0].otelLogs",
                    "not supported yet",
                ),
            ),
            edit(
                "TCP backend",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0]",
                        json!({"tcp": {"address": "logstash.internal:5000", "format": {"type": "Json", "json": [{"key": "code", "value": "%RESPONSE_CODE%"}]}}}),
                    )
                },
                PASS,
            ),
            edit(
                "TCP backend without a port",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0]",
                        json!({"tcp": {"address": "logstash.internal"}}),
                    )
                },
                fail(
                    "spec.from[0].default.backends[0].tcp.address",
                    "is not host:port",
                ),
            ),
            edit(
                "TCP backend with a bad format",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0]",
                        json!({"tcp": {"address": "127.0.0.1:5000", "format": {"type": "Plain"}}}),
                    )
                },
                fail(
                    "spec.from[0].default.backends[0].tcp.format.plain",
                    "must be set",
                ),
            ),
            edit(
                "TCP backend with a reserved key",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0]",
                        json!({"tcp": {"address": "127.0.0.1:5000", "format": {"type": "Json", "json": [{"key": "@atoll.address", "value": "x"}]}}}),
                    )
                },
                fail(
                    "spec.from[0].default.backends[0].tcp.format.json[0].key",
                    "reserved",
                ),
            ),
            edit(
                "relative path",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[0].file.path",
                        json!("in.log"),
                    )
                },
                fail("spec.from[0].default.backends[0].file.path", "absolute"),
            ),
            edit(
                "format without type",
                |v| remove(v, "spec.to[0].default.backends[0].file.format.type"),
                fail("spec.to[0].default.backends[0].file.format.type", ""),
            ),
            edit(
                "unknown format type",
                |v| {
                    set(
                        v,
                        "spec.to[0].default.backends[0].file.format.type",
                        json!("Xml"),
                    )
                },
                fail("spec.to[0].default.backends[0].file.format.type", ""),
            ),
            edit(
                "Plain without plain",
                |v| remove(v, "spec.to[0].default.backends[0].file.format.plain"),
                fail(
                    "spec.to[0].default.backends[0].file.format.plain",
                    "must be set for type Plain",
                ),
            ),
            edit(
                "Plain with json",
                |v| {
                    set(
                        v,
                        "spec.to[0].default.backends[0].file.format.json",
                        json!([{"key": "a", "value": "b"}]),
                    )
                },
                fail(
                    "spec.to[0].default.backends[0].file.format.json",
                    "must not be set for type Plain",
                ),
            ),
            edit(
                "Json without fields",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[1].file.format.json",
                        json!([]),
                    )
                },
                fail(
                    "spec.from[0].default.backends[1].file.format.json",
                    "at least one entry",
                ),
            ),
            edit(
                "Json with plain",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[1].file.format.plain",
                        json!("%KUMA_MESH%"),
                    )
                },
                fail(
                    "spec.from[0].default.backends[1].file.format.plain",
                    "must not be set for type Json",
                ),
            ),
            edit(
                "Json key twice",
                |v| {
                    push(
                        v,
                        "spec.from[0].default.backends[1].file.format.json",
                        json!({"key": "mesh", "value": "%KUMA_MESH%"}),
                    )
                },
                fail(
                    "spec.from[0].default.backends[1].file.format.json[1].key",
                    "appears twice",
                ),
            ),
            edit(
                "Json field without a value",
                |v| {
                    set(
                        v,
                        "spec.from[0].default.backends[1].file.format.json[0].value",
                        json!(""),
                    )
                },
                fail(
                    "spec.from[0].default.backends[1].file.format.json[0].value",
                    "",
                ),
            ),
            edit(
                "to[] of a subset",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshServiceSubset", "name": "web", "tags": {"v": "1"}}),
                    )
                },
                fail("spec.to[0].targetRef.kind", "not supported here yet"),
            ),
        ],
    );
}
