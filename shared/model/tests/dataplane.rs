//! Dataplane validation: sidecars (inbounds and outbounds) and gateways.

mod support;

use support::*;

/// A sidecar with one inbound and one outbound.
const BASE: &str = r#"
type: Dataplane
mesh: default
name: backend-1
networking:
  address: 10.0.0.1
  admin:
    port: 9901
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
      version: v1
  outbound:
  - port: 10001
    tags:
      kuma.io/service: redis
"#;

/// A builtin gateway proxy.
const GATEWAY_BASE: &str = r#"
type: Dataplane
mesh: default
name: edge-gateway-1
networking:
  address: 10.0.0.2
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge-gateway
"#;

#[test]
fn networking_and_address() {
    run_table(
        BASE,
        &[
            edit(
                "DNS address",
                |v| set(v, "networking.address", json!("backend-1.internal")),
                PASS,
            ),
            edit(
                "IPv6 address",
                |v| set(v, "networking.address", json!("fd00::1")),
                PASS,
            ),
            edit(
                "networking missing",
                |v| remove(v, "networking"),
                fail("networking", "must be set"),
            ),
            edit(
                "address missing",
                |v| remove(v, "networking.address"),
                fail("networking.address", "must not be empty"),
            ),
            edit(
                "address not a host",
                |v| set(v, "networking.address", json!("10.0.0.1:8080")),
                fail("networking.address", "IP address or a DNS name"),
            ),
            edit(
                "advertisedAddress invalid",
                |v| set(v, "networking.advertisedAddress", json!("bad host")),
                fail("networking.advertisedAddress", "IP address or a DNS name"),
            ),
            edit(
                "admin port 0",
                |v| set(v, "networking.admin.port", json!(0)),
                fail("networking.admin.port", "1-65535"),
            ),
        ],
    );
}

#[test]
fn inbound_or_gateway() {
    run_table(
        BASE,
        &[
            edit(
                "neither inbound nor gateway",
                |v| remove(v, "networking.inbound"),
                fail("networking", "at least one inbound, or a gateway"),
            ),
            edit(
                "empty inbound list",
                |v| set(v, "networking.inbound", json!([])),
                fail("networking", "at least one inbound"),
            ),
            edit(
                "both inbound and gateway",
                |v| {
                    set(
                        v,
                        "networking.gateway",
                        json!({"type": "BUILTIN", "tags": {"kuma.io/service": "edge"}}),
                    )
                },
                fail("networking.inbound", "must be empty on a gateway"),
            ),
        ],
    );
}

#[test]
fn inbounds() {
    run_table(
        BASE,
        &[
            edit(
                "port 1",
                |v| set(v, "networking.inbound[0].port", json!(1)),
                PASS,
            ),
            edit(
                "protocol grpc",
                |v| {
                    set(
                        v,
                        "networking.inbound[0].tags[\"kuma.io/protocol\"]",
                        json!("grpc"),
                    )
                },
                PASS,
            ),
            edit(
                "protocol kafka",
                |v| {
                    set(
                        v,
                        "networking.inbound[0].tags[\"kuma.io/protocol\"]",
                        json!("kafka"),
                    )
                },
                PASS,
            ),
            edit(
                "no protocol tag",
                |v| remove(v, "networking.inbound[0].tags[\"kuma.io/protocol\"]"),
                PASS,
            ),
            edit(
                "state NotReady",
                |v| set(v, "networking.inbound[0].state", json!("NotReady")),
                PASS,
            ),
            edit(
                "port 0",
                |v| set(v, "networking.inbound[0].port", json!(0)),
                fail("networking.inbound[0].port", "1-65535"),
            ),
            edit(
                "port 70000",
                |v| set(v, "networking.inbound[0].port", json!(70000)),
                fail("networking.inbound[0].port", "1-65535"),
            ),
            edit(
                "port missing",
                |v| remove(v, "networking.inbound[0].port"),
                fail("networking.inbound[0].port", "1-65535"),
            ),
            edit(
                "servicePort 70000",
                |v| set(v, "networking.inbound[0].servicePort", json!(70000)),
                fail("networking.inbound[0].servicePort", "1-65535"),
            ),
            edit(
                "service tag missing",
                |v| remove(v, "networking.inbound[0].tags[\"kuma.io/service\"]"),
                fail(
                    r#"networking.inbound[0].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "no tags",
                |v| remove(v, "networking.inbound[0].tags"),
                fail(
                    r#"networking.inbound[0].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "unknown protocol",
                |v| {
                    set(
                        v,
                        "networking.inbound[0].tags[\"kuma.io/protocol\"]",
                        json!("foo"),
                    )
                },
                fail(
                    r#"networking.inbound[0].tags["kuma.io/protocol"]"#,
                    "unknown protocol \"foo\"",
                ),
            ),
            edit(
                "protocol in upper case",
                |v| {
                    set(
                        v,
                        "networking.inbound[0].tags[\"kuma.io/protocol\"]",
                        json!("HTTP"),
                    )
                },
                fail(
                    r#"networking.inbound[0].tags["kuma.io/protocol"]"#,
                    "unknown protocol",
                ),
            ),
            edit(
                "empty tag value",
                |v| set(v, "networking.inbound[0].tags.version", json!("")),
                fail(
                    r#"networking.inbound[0].tags["version"]"#,
                    "must not be empty",
                ),
            ),
            edit(
                "tag value with a space",
                |v| set(v, "networking.inbound[0].tags.version", json!("v 1")),
                fail(
                    r#"networking.inbound[0].tags["version"]"#,
                    "tag value may contain only",
                ),
            ),
            edit(
                "unknown state",
                |v| set(v, "networking.inbound[0].state", json!("Broken")),
                fail("networking.inbound[0].state", "unknown value"),
            ),
            edit(
                "second inbound without service tag",
                |v| {
                    push(
                        v,
                        "networking.inbound",
                        json!({"port": 8081, "tags": {"version": "v1"}}),
                    )
                },
                fail(
                    r#"networking.inbound[1].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
        ],
    );
}

#[test]
fn outbounds() {
    run_table(
        BASE,
        &[
            edit(
                "outbound by backendRef",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"kind": "MeshService", "name": "redis", "port": 6379}}),
                    )
                },
                PASS,
            ),
            edit(
                "outbound to a gateway kind",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"kind": "MeshGateway", "name": "edge"}}),
                    )
                },
                fail(
                    "networking.outbound[0].backendRef.kind",
                    "cannot be an outbound's destination",
                ),
            ),
            edit(
                "outbound by labels",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"kind": "MeshService", "name": "redis", "labels": {"a": "b"}}}),
                    )
                },
                fail(
                    "networking.outbound[0].backendRef.labels",
                    "not supported yet",
                ),
            ),
            edit(
                "outbound to a MeshExternalService with a port",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"kind": "MeshExternalService", "name": "httpbin", "port": 443}}),
                    )
                },
                fail(
                    "networking.outbound[0].backendRef.port",
                    "reached on its match.port",
                ),
            ),
            edit("no outbounds", |v| remove(v, "networking.outbound"), PASS),
            edit(
                "neither service tag nor backendRef",
                |v| set(v, "networking.outbound[0]", json!({"port": 10001})),
                fail(
                    r#"networking.outbound[0].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "tags without the service tag",
                |v| set(v, "networking.outbound[0].tags", json!({"version": "v1"})),
                fail(
                    r#"networking.outbound[0].tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "backendRef without kind",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"name": "redis"}}),
                    )
                },
                fail("networking.outbound[0].backendRef.kind", "must be set"),
            ),
            edit(
                "backendRef without name",
                |v| {
                    set(
                        v,
                        "networking.outbound[0]",
                        json!({"port": 10001, "backendRef": {"kind": "MeshService"}}),
                    )
                },
                fail(
                    "networking.outbound[0].backendRef.name",
                    "must not be empty",
                ),
            ),
            edit(
                "port 0",
                |v| set(v, "networking.outbound[0].port", json!(0)),
                fail("networking.outbound[0].port", "1-65535"),
            ),
        ],
    );
}

#[test]
fn gateways() {
    run_table(
        GATEWAY_BASE,
        &[
            edit(
                "delegated gateway",
                |v| set(v, "networking.gateway.type", json!("DELEGATED")),
                PASS,
            ),
            edit(
                "type omitted",
                |v| remove(v, "networking.gateway.type"),
                PASS,
            ),
            edit(
                "service tag missing",
                |v| set(v, "networking.gateway.tags", json!({"zone": "east"})),
                fail(
                    r#"networking.gateway.tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "no tags",
                |v| remove(v, "networking.gateway.tags"),
                fail(
                    r#"networking.gateway.tags["kuma.io/service"]"#,
                    "must be set",
                ),
            ),
            edit(
                "unknown type",
                |v| set(v, "networking.gateway.type", json!("EXTERNAL")),
                fail("networking.gateway.type", "unknown value"),
            ),
            edit(
                "protocol tag on a gateway",
                |v| {
                    set(
                        v,
                        "networking.gateway.tags[\"kuma.io/protocol\"]",
                        json!("http"),
                    )
                },
                fail(
                    r#"networking.gateway.tags["kuma.io/protocol"]"#,
                    "must not be set",
                ),
            ),
        ],
    );
}
