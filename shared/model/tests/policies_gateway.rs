//! MeshTimeout and MeshRetry aimed at a built-in gateway or one of its routes; the other policy
//! types refuse gateway targets.

mod support;

use support::*;

const TIMEOUT: &str = "
type: MeshTimeout
mesh: default
name: slow-route
spec:
  targetRef:
    kind: MeshHTTPRoute
    name: to-slow
  to:
  - targetRef:
      kind: Mesh
    default:
      http:
        requestTimeout: 500ms
";

#[test]
fn timeouts_on_a_gateway() {
    run_table(
        TIMEOUT,
        &[
            edit("a route", |_| {}, PASS),
            edit(
                "a gateway's listeners by tags",
                |v| {
                    v["spec"]["targetRef"] =
                        json!({"kind": "MeshGateway", "name": "edge", "tags": {"port": "http"}})
                },
                PASS,
            ),
            edit(
                "the route needs a name",
                |v| v["spec"]["targetRef"]["name"] = json!(""),
                fail("spec.targetRef.name", "must be set for kind MeshHTTPRoute"),
            ),
            edit(
                "a route has no tags",
                |v| v["spec"]["targetRef"]["tags"] = json!({"a": "b"}),
                fail(
                    "spec.targetRef.tags",
                    "must not be set for kind MeshHTTPRoute",
                ),
            ),
            edit(
                "per backend",
                |v| v["spec"]["to"][0]["targetRef"] = json!({"kind": "MeshService", "name": "api"}),
                fail(
                    "spec.to[0].targetRef.kind",
                    "must be Mesh with a top-level targetRef of kind MeshHTTPRoute",
                ),
            ),
            edit(
                "from[]",
                |v| {
                    v["spec"]["from"] =
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "1m"}}])
                },
                fail(
                    "spec.from",
                    "is not supported with a top-level targetRef of kind MeshHTTPRoute",
                ),
            ),
            edit(
                "a connection's timeouts",
                |v| v["spec"]["to"][0]["default"]["idleTimeout"] = json!("1m"),
                fail(
                    "spec.to[0].default.idleTimeout",
                    "is not supported yet with a top-level targetRef",
                ),
            ),
            edit(
                "stream idle",
                |v| v["spec"]["to"][0]["default"]["http"]["streamIdleTimeout"] = json!("1m"),
                fail(
                    "spec.to[0].default.http.streamIdleTimeout",
                    "is not supported yet",
                ),
            ),
        ],
    );
}

const RETRY: &str = "
type: MeshRetry
mesh: default
name: gw-retry
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    default:
      http:
        numRetries: 3
";

#[test]
fn retries_on_a_gateway() {
    run_table(
        RETRY,
        &[
            edit("http", |_| {}, PASS),
            edit(
                "tcp",
                |v| v["spec"]["to"][0]["default"]["tcp"] = json!({"maxConnectAttempt": 2}),
                fail(
                    "spec.to[0].default.tcp",
                    "is not supported yet with a top-level targetRef of kind MeshGateway",
                ),
            ),
            edit(
                "grpc",
                |v| v["spec"]["to"][0]["default"]["grpc"] = json!({"numRetries": 2}),
                fail("spec.to[0].default.grpc", "is not supported yet"),
            ),
        ],
    );
}

#[test]
fn traffic_permissions_do_not_target_gateways() {
    for kind in ["MeshGateway", "MeshHTTPRoute"] {
        let mut value = yaml(
            "
type: MeshTrafficPermission
mesh: default
name: gw
spec:
  targetRef:
    kind: MeshService
    name: edge
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Allow
",
        );
        value["spec"]["targetRef"]["kind"] = json!(kind);
        assert_exact_violations(
            kind,
            value,
            &[(
                "spec.targetRef.kind",
                "cannot be targeted by this policy type: it does not configure built-in gateways",
            )],
        );
    }
}

/// On sidecars, MeshTimeout and MeshRetry `to[]` may name one MeshHTTPRoute (its routes) or a
/// MeshExternalService; a gateway's routes take `to[]` of kind Mesh only, and no `rules[]`.
#[test]
fn timeouts_and_retries_to_routes_and_external_services() {
    for kind in ["MeshTimeout", "MeshRetry"] {
        let conf = if kind == "MeshTimeout" {
            json!({"http": {"requestTimeout": "1s"}})
        } else {
            json!({"http": {"numRetries": 2}})
        };
        for target in [
            json!({"kind": "MeshHTTPRoute", "name": "r"}),
            json!({"kind": "MeshExternalService", "name": "httpbin"}),
        ] {
            let value = json!({
                "type": kind, "mesh": "default", "name": "p",
                "spec": {"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": target, "default": conf}]},
            });
            assert_exact_violations(kind, value, &[]);
        }
        let on_gateway = json!({
            "type": kind, "mesh": "default", "name": "p",
            "spec": {
                "targetRef": {"kind": "MeshGateway", "name": "edge"},
                "to": [{"targetRef": {"kind": "MeshHTTPRoute", "name": "r"}, "default": conf}],
            },
        });
        assert_exact_violations(
            kind,
            on_gateway,
            &[(
                "spec.to[0].targetRef.kind",
                "must be Mesh with a top-level targetRef of kind MeshGateway",
            )],
        );
    }
    let gateway_rules = json!({
        "type": "MeshTimeout", "mesh": "default", "name": "p",
        "spec": {
            "targetRef": {"kind": "MeshGateway", "name": "edge"},
            "rules": [{"default": {"idleTimeout": "1s"}}],
        },
    });
    assert_exact_violations(
        "rules on a gateway",
        gateway_rules,
        &[(
            "spec.rules",
            "is not supported with a top-level targetRef of kind MeshGateway",
        )],
    );
}

/// MeshRateLimit on a gateway: request rates on its routes through `to[]` (kind Mesh); no
/// connection rates, no inbound sections; a sidecar's rate limits stay inbound.
#[test]
fn rate_limits_on_a_gateway() {
    let limit = |top: Value, to_kind: &str, local: Value| {
        json!({
            "type": "MeshRateLimit", "mesh": "default", "name": "p",
            "spec": {"targetRef": top, "to": [{"targetRef": {"kind": to_kind}, "default": {"local": local}}]},
        })
    };
    let http = json!({"http": {"requestRate": {"num": 2, "interval": "1s"}}});
    for top in [
        json!({"kind": "MeshGateway", "name": "edge"}),
        json!({"kind": "MeshGateway", "name": "edge", "tags": {"listener": "public"}}),
        json!({"kind": "MeshHTTPRoute", "name": "r"}),
    ] {
        assert_exact_violations("per route", limit(top, "Mesh", http.clone()), &[]);
    }
    let gateway = json!({"kind": "MeshGateway", "name": "edge"});
    assert_exact_violations(
        "connection rates",
        limit(
            gateway.clone(),
            "Mesh",
            json!({"tcp": {"connectionRate": {"num": 2, "interval": "1s"}}}),
        ),
        &[(
            "spec.to[0].default.local.tcp",
            "not supported yet with a top-level targetRef of kind MeshGateway",
        )],
    );
    assert_exact_violations(
        "per backend",
        json!({
            "type": "MeshRateLimit", "mesh": "default", "name": "p",
            "spec": {"targetRef": gateway, "to": [{"targetRef": {"kind": "MeshService", "name": "api"}, "default": {"local": http}}]},
        }),
        &[("spec.to[0].targetRef.kind", "must be Mesh")],
    );
    assert_exact_violations(
        "to[] on a sidecar",
        limit(json!({"kind": "Mesh"}), "Mesh", http),
        &[
            ("spec.to", "does not configure outbound"),
            ("spec.from", "at least one entry"),
        ],
    );
}

/// MeshAccessLog on a gateway: its listeners (optionally by tags) with `to[]` of kind Mesh.
#[test]
fn access_logs_on_a_gateway() {
    let logs = |top: Value, section: &str, entry: Value| {
        json!({
            "type": "MeshAccessLog", "mesh": "default", "name": "p",
            "spec": {"targetRef": top, section: [entry]},
        })
    };
    let mesh_entry = json!({"targetRef": {"kind": "Mesh"}, "default": {"backends": [{"file": {"path": "/tmp/g.log"}}]}});
    assert_exact_violations(
        "a gateway's listeners",
        logs(
            json!({"kind": "MeshGateway", "name": "edge", "tags": {"listener": "public"}}),
            "to",
            mesh_entry.clone(),
        ),
        &[],
    );
    assert_exact_violations(
        "inbound on a gateway",
        logs(
            json!({"kind": "MeshGateway", "name": "edge"}),
            "from",
            mesh_entry.clone(),
        ),
        &[(
            "spec.from",
            "with a top-level targetRef of kind MeshGateway",
        )],
    );
    assert_exact_violations(
        "one route",
        logs(
            json!({"kind": "MeshHTTPRoute", "name": "r"}),
            "to",
            mesh_entry,
        ),
        &[("spec.targetRef.kind", "not supported here yet")],
    );
}
