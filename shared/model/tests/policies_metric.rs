//! MeshMetric validation: a Prometheus endpoint per proxy is accepted; what Atoll does not
//! serve yet is refused at its field path.

mod support;

use support::*;

const METRIC: &str = r#"
type: MeshMetric
name: metrics
mesh: default
spec:
  targetRef:
    kind: Mesh
  default:
    sidecar:
      includeUnused: true
    backends:
    - type: Prometheus
      prometheus:
        clientId: main
        port: 5670
        path: /metrics
        tls:
          mode: Disabled
"#;

#[test]
fn metric_rules() {
    run_table(
        METRIC,
        &[
            edit(
                "defaults",
                |v| set(v, "spec.default.backends[0].prometheus", json!({})),
                PASS,
            ),
            edit(
                "no target",
                |v| remove(v, "spec.targetRef"),
                fail("spec.targetRef", "must be set"),
            ),
            edit(
                "a gateway target",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshGateway", "name": "edge"}),
                    )
                },
                fail("spec.targetRef.kind", "not supported here"),
            ),
            edit(
                "no default",
                |v| remove(v, "spec.default"),
                fail("spec.default", "must be set"),
            ),
            edit(
                "no backends",
                |v| set(v, "spec.default.backends", json!([])),
                fail("spec.default.backends", "at least one entry"),
            ),
            edit(
                "two backends on one port",
                |v| {
                    push(
                        v,
                        "spec.default.backends",
                        json!({"type": "Prometheus", "prometheus": {"port": 5670}}),
                    )
                },
                fail(
                    "spec.default.backends[1].prometheus.port",
                    "used by another backend",
                ),
            ),
            edit(
                "port zero",
                |v| set(v, "spec.default.backends[0].prometheus.port", json!(0)),
                fail(
                    "spec.default.backends[0].prometheus.port",
                    "from 1 to 65535",
                ),
            ),
            edit(
                "a relative path",
                |v| {
                    set(
                        v,
                        "spec.default.backends[0].prometheus.path",
                        json!("metrics"),
                    )
                },
                fail(
                    "spec.default.backends[0].prometheus.path",
                    "must start with /",
                ),
            ),
            edit(
                "TLS on the endpoint",
                |v| {
                    set(
                        v,
                        "spec.default.backends[0].prometheus.tls.mode",
                        json!("ProvidedTLS"),
                    )
                },
                fail(
                    "spec.default.backends[0].prometheus.tls.mode",
                    "not supported yet",
                ),
            ),
            edit(
                "OpenTelemetry",
                |v| {
                    set(
                        v,
                        "spec.default.backends[0]",
                        json!({"type": "OpenTelemetry", "openTelemetry": {"endpoint": "otel:4317"}}),
                    )
                },
                fail("spec.default.backends[0].type", "not supported yet"),
            ),
            edit(
                "application metrics",
                |v| set(v, "spec.default.applications", json!([{"port": 8080}])),
                fail("spec.default.applications", "not supported yet"),
            ),
            edit(
                "stat profiles",
                |v| {
                    set(
                        v,
                        "spec.default.sidecar.profiles",
                        json!({"appendProfiles": [{"name": "Basic"}]}),
                    )
                },
                fail("spec.default.sidecar.profiles", "not supported yet"),
            ),
            edit(
                "Prometheus without its settings",
                |v| remove(v, "spec.default.backends[0].prometheus"),
                fail(
                    "spec.default.backends[0].prometheus",
                    "must be set for type Prometheus",
                ),
            ),
        ],
    );
}
