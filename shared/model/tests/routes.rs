//! MeshHTTPRoute and MeshTCPRoute validation, rule by rule.

mod support;

use support::*;

/// A service-to-service HTTP route using a match of every kind and a filter.
const HTTP_BASE: &str = r#"
type: MeshHTTPRoute
name: backend-route
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: backend
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /api
        method: GET
        headers:
        - type: Exact
          name: x-version
          value: v1
        queryParams:
        - type: Exact
          name: debug
          value: "1"
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
            - name: x-routed-by
              value: atoll
        backendRefs:
        - kind: MeshService
          name: backend-v1
          port: 8080
          weight: 90
        - kind: MeshService
          name: backend-v2
          port: 8080
          weight: 10
"#;

/// An HTTP route attached to a MeshGateway's listeners.
const GATEWAY_HTTP_BASE: &str = r#"
type: MeshHTTPRoute
name: edge-route
mesh: default
spec:
  targetRef:
    kind: MeshGateway
    name: edge-gateway
  to:
  - targetRef:
      kind: Mesh
    hostnames:
    - foo.example.com
    - "*.example.com"
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /
      default:
        backendRefs:
        - kind: MeshService
          name: backend
          port: 8080
"#;

const TCP_BASE: &str = r#"
type: MeshTCPRoute
name: redis-route
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: redis
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: redis-v2
          port: 6379
"#;

const GATEWAY_TCP_BASE: &str = r#"
type: MeshTCPRoute
name: edge-tcp
mesh: default
spec:
  targetRef:
    kind: MeshGateway
    name: edge-gateway
  to:
  - targetRef:
      kind: Mesh
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: redis
          port: 6379
"#;

#[test]
fn http_top_level_target() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "targetRef MeshService",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshService", "name": "web"}),
                    )
                },
                PASS,
            ),
            edit(
                "targetRef MeshSubset",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshSubset", "tags": {"version": "v1"}}),
                    )
                },
                PASS,
            ),
            edit(
                "targetRef Dataplane by labels",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "Dataplane", "labels": {"app": "web"}}),
                    )
                },
                fail(
                    "spec.targetRef.labels",
                    "selecting by labels is not supported yet",
                ),
            ),
            edit(
                "targetRef missing",
                |v| remove(v, "spec.targetRef"),
                fail("spec.targetRef", "must be set"),
            ),
            edit(
                "kind missing",
                |v| set(v, "spec.targetRef", json!({})),
                fail("spec.targetRef.kind", "must be set"),
            ),
            edit(
                "kind unknown",
                |v| set(v, "spec.targetRef.kind", json!("Service")),
                fail("spec.targetRef.kind", "unknown value \"Service\""),
            ),
            edit(
                "kind MeshExternalService not allowed",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshExternalService", "name": "x"}),
                    )
                },
                fail(
                    "spec.targetRef.kind",
                    "MeshExternalService is not allowed here",
                ),
            ),
            edit(
                "kind MeshHTTPRoute not allowed",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshHTTPRoute", "name": "x"}),
                    )
                },
                fail("spec.targetRef.kind", "is not allowed here"),
            ),
            edit(
                "MeshService without a name",
                |v| set(v, "spec.targetRef", json!({"kind": "MeshService"})),
                fail("spec.targetRef.name", "must be set for kind MeshService"),
            ),
            edit(
                "Mesh with a name",
                |v| set(v, "spec.targetRef.name", json!("default")),
                fail("spec.targetRef.name", "must not be set for kind Mesh"),
            ),
        ],
    );
}

#[test]
fn http_to_entries() {
    run_table(
        HTTP_BASE,
        &[
            // Kuma accepts a route that routes nothing.
            edit("to missing", |v| remove(v, "spec.to"), PASS),
            edit("to empty", |v| set(v, "spec.to", json!([])), PASS),
            edit(
                "to without targetRef",
                |v| remove(v, "spec.to[0].targetRef"),
                fail("spec.to[0].targetRef", "must be set"),
            ),
            edit(
                "to targetRef MeshGateway",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshGateway", "name": "g"}),
                    )
                },
                fail("spec.to[0].targetRef.kind", "not allowed here"),
            ),
            edit(
                "to targetRef MeshExternalService",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshExternalService", "name": "httpbin"}),
                    )
                },
                fail(
                    "spec.to[0].targetRef.kind",
                    "routes to a MeshExternalService are not supported yet",
                ),
            ),
            edit(
                "hostnames without a MeshGateway target",
                |v| set(v, "spec.to[0].hostnames", json!(["foo.example.com"])),
                fail(
                    "spec.to[0].hostnames",
                    "only be set when the top-level targetRef is a MeshGateway",
                ),
            ),
            edit(
                "rules missing",
                |v| remove(v, "spec.to[0].rules"),
                fail("spec.to[0].rules", "at least one rule"),
            ),
            edit(
                "rules empty",
                |v| set(v, "spec.to[0].rules", json!([])),
                fail("spec.to[0].rules", "at least one rule"),
            ),
            edit(
                "rule without default",
                |v| remove(v, "spec.to[0].rules[0].default"),
                fail("spec.to[0].rules[0].default", "must be set"),
            ),
            edit(
                "rule without matches",
                |v| remove(v, "spec.to[0].rules[0].matches"),
                PASS,
            ),
        ],
    );
}

#[test]
fn http_gateway_routes() {
    run_table(
        GATEWAY_HTTP_BASE,
        &[
            edit("no hostnames", |v| remove(v, "spec.to[0].hostnames"), PASS),
            edit(
                "to targetRef MeshService",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshService", "name": "backend"}),
                    )
                },
                fail(
                    "spec.to[0].targetRef.kind",
                    "must be Mesh when the top-level targetRef is a MeshGateway",
                ),
            ),
            edit(
                "second to entry targets a MeshService",
                |v| {
                    let mut second = get(v, "spec.to[0]");
                    set(
                        &mut second,
                        "targetRef",
                        json!({"kind": "MeshService", "name": "b"}),
                    );
                    push(v, "spec.to", second);
                },
                fail("spec.to[1].targetRef.kind", "must be Mesh"),
            ),
            edit(
                "hostname with a wildcard in the middle",
                |v| set(v, "spec.to[0].hostnames[1]", json!("foo.*.com")),
                fail("spec.to[0].hostnames[1]", "valid DNS name"),
            ),
            edit(
                "MeshGateway target without a name",
                |v| remove(v, "spec.targetRef.name"),
                fail("spec.targetRef.name", "must be set for kind MeshGateway"),
            ),
        ],
    );
}

#[test]
fn http_matches() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "Exact path",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "Exact", "value": "/api/v1"}),
                    )
                },
                PASS,
            ),
            edit(
                "Exact path without leading slash",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "Exact", "value": "api"}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].path.value",
                    "must start with '/'",
                ),
            ),
            edit(
                "PathPrefix without leading slash",
                |v| set(v, "spec.to[0].rules[0].matches[0].path.value", json!("api")),
                fail(
                    "spec.to[0].rules[0].matches[0].path.value",
                    "must start with '/'",
                ),
            ),
            edit(
                "PathPrefix without value",
                |v| remove(v, "spec.to[0].rules[0].matches[0].path.value"),
                fail(
                    "spec.to[0].rules[0].matches[0].path.value",
                    "must start with '/'",
                ),
            ),
            edit(
                "path type missing",
                |v| remove(v, "spec.to[0].rules[0].matches[0].path.type"),
                fail("spec.to[0].rules[0].matches[0].path.type", "must be set"),
            ),
            edit(
                "path type Prefix",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path.type",
                        json!("Prefix"),
                    )
                },
                fail("spec.to[0].rules[0].matches[0].path.type", "unknown value"),
            ),
            edit(
                "valid regular expression",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "RegularExpression", "value": "^/api/v[0-9]+/.*$"}),
                    )
                },
                PASS,
            ),
            edit(
                "regular expression without leading slash",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "RegularExpression", "value": ".*\\.png"}),
                    )
                },
                PASS,
            ),
            edit(
                "unbalanced regular expression",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "RegularExpression", "value": "("}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].path.value",
                    "invalid regular expression",
                ),
            ),
            edit(
                "method POST",
                |v| set(v, "spec.to[0].rules[0].matches[0].method", json!("POST")),
                PASS,
            ),
            edit(
                "method FETCH",
                |v| set(v, "spec.to[0].rules[0].matches[0].method", json!("FETCH")),
                fail(
                    "spec.to[0].rules[0].matches[0].method",
                    "unknown value \"FETCH\"",
                ),
            ),
            edit(
                "method in lower case",
                |v| set(v, "spec.to[0].rules[0].matches[0].method", json!("get")),
                fail("spec.to[0].rules[0].matches[0].method", "unknown value"),
            ),
            edit(
                "Exact header without value",
                |v| remove(v, "spec.to[0].rules[0].matches[0].headers[0].value"),
                fail(
                    "spec.to[0].rules[0].matches[0].headers[0].value",
                    "must be set for type Exact",
                ),
            ),
            edit(
                "Present header without value",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].headers[0]",
                        json!({"type": "Present", "name": "x-debug"}),
                    )
                },
                PASS,
            ),
            edit(
                "Absent header with value",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].headers[0].type",
                        json!("Absent"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].headers[0].value",
                    "must not be set for type Absent",
                ),
            ),
            edit(
                "header without name",
                |v| remove(v, "spec.to[0].rules[0].matches[0].headers[0].name"),
                fail(
                    "spec.to[0].rules[0].matches[0].headers[0].name",
                    "must not be empty",
                ),
            ),
            edit(
                "header regular expression that does not compile",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].headers[0]",
                        json!({"type": "RegularExpression", "name": "x", "value": "[a-"}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].headers[0].value",
                    "invalid regular expression",
                ),
            ),
            edit(
                "query param regular expression",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].queryParams[0].type",
                        json!("RegularExpression"),
                    )
                },
                PASS,
            ),
            edit(
                "query param regular expression that does not compile",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].queryParams[0]",
                        json!({"type": "RegularExpression", "name": "q", "value": "(a"}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].queryParams[0].value",
                    "invalid regular expression",
                ),
            ),
        ],
    );
}

#[test]
fn http_filters() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "filter type does not match its config",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].type",
                        json!("ResponseHeaderModifier"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].responseHeaderModifier",
                    "must be set for type ResponseHeaderModifier",
                ),
            ),
            edit(
                "config of another filter type",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].type",
                        json!("ResponseHeaderModifier"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestHeaderModifier",
                    "must not be set for type ResponseHeaderModifier",
                ),
            ),
            edit(
                "filter type missing",
                |v| remove(v, "spec.to[0].rules[0].default.filters[0].type"),
                fail("spec.to[0].rules[0].default.filters[0].type", "must be set"),
            ),
            edit(
                "filter type unknown",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].type",
                        json!("HeaderModifier"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].type",
                    "unknown value",
                ),
            ),
            edit(
                "URLRewrite with prefix replacement",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0]",
                        json!({
                            "type": "URLRewrite",
                            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}},
                        }),
                    )
                },
                PASS,
            ),
            edit(
                "RequestMirror",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0]",
                        json!({
                            "type": "RequestMirror",
                            "requestMirror": {"backendRef": {"kind": "MeshService", "name": "shadow"}, "percentage": "12.5"},
                        }),
                    )
                },
                PASS,
            ),
            edit(
                "header modifier with an empty name",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].requestHeaderModifier.set[0].name",
                        json!(""),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestHeaderModifier.set[0].name",
                    "must not be empty",
                ),
            ),
        ],
    );
}

/// A rule that only redirects: no backendRefs needed.
fn redirect(v: &mut Value) {
    set(
        v,
        "spec.to[0].rules[0].default",
        json!({"filters": [{
            "type": "RequestRedirect",
            "requestRedirect": {"scheme": "https", "statusCode": 301},
        }]}),
    );
}

#[test]
fn gateway_rules_need_backends_unless_they_redirect() {
    run_table(
        GATEWAY_HTTP_BASE,
        &[
            edit(
                "backendRefs missing without a redirect",
                |v| remove(v, "spec.to[0].rules[0].default.backendRefs"),
                fail(
                    "spec.to[0].rules[0].default.backendRefs",
                    "at least one backend",
                ),
            ),
            edit(
                "backendRefs empty without a redirect",
                |v| set(v, "spec.to[0].rules[0].default.backendRefs", json!([])),
                fail(
                    "spec.to[0].rules[0].default.backendRefs",
                    "at least one backend",
                ),
            ),
        ],
    );
}

#[test]
fn http_redirects_and_backends() {
    run_table(
        HTTP_BASE,
        &[
            edit("redirect without backendRefs", redirect, PASS),
            edit(
                "redirect with status 308",
                |v| {
                    redirect(v);
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode",
                        json!(308),
                    );
                },
                PASS,
            ),
            edit(
                "redirect with status 404",
                |v| {
                    redirect(v);
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode",
                        json!(404),
                    );
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode",
                    "301, 302, 303, 307, 308",
                ),
            ),
            edit(
                "redirect with status 200",
                |v| {
                    redirect(v);
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode",
                        json!(200),
                    );
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestRedirect.statusCode",
                    "must be one of",
                ),
            ),
            edit(
                "redirect with scheme ftp",
                |v| {
                    redirect(v);
                    set(
                        v,
                        "spec.to[0].rules[0].default.filters[0].requestRedirect.scheme",
                        json!("ftp"),
                    );
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestRedirect.scheme",
                    "http or https",
                ),
            ),
            edit(
                "redirect without its config",
                |v| {
                    redirect(v);
                    remove(v, "spec.to[0].rules[0].default.filters[0].requestRedirect");
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestRedirect",
                    "must be set for type RequestRedirect",
                ),
            ),
            // A sidecar rule without backends goes to the service the `to` entry names.
            edit(
                "sidecar rule without backendRefs",
                |v| remove(v, "spec.to[0].rules[0].default.backendRefs"),
                PASS,
            ),
            edit(
                "sidecar rule with empty backendRefs",
                |v| set(v, "spec.to[0].rules[0].default.backendRefs", json!([])),
                PASS,
            ),
            edit(
                "backend selected by labels",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0]",
                        json!({"kind": "MeshService", "name": "b", "labels": {"app": "b"}}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].labels",
                    "not supported yet",
                ),
            ),
            edit(
                "backend in another mesh",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0]",
                        json!({"kind": "MeshService", "name": "b", "mesh": "other"}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].mesh",
                    "its own mesh",
                ),
            ),
            edit(
                "sectionName on the destination",
                |v| set(v, "spec.to[0].targetRef.sectionName", json!("http")),
                fail("spec.to[0].targetRef.sectionName", "not supported yet"),
            ),
            edit(
                "backend MeshExternalService",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0]",
                        json!({"kind": "MeshExternalService", "name": "httpbin"}),
                    )
                },
                PASS,
            ),
            edit(
                "backend MeshServiceSubset with tags",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0]",
                        json!({"kind": "MeshServiceSubset", "name": "backend", "tags": {"version": "v1"}}),
                    )
                },
                PASS,
            ),
            edit(
                "backend kind Mesh",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[1].kind",
                        json!("Mesh"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.backendRefs[1].kind",
                    "Mesh is not a backend",
                ),
            ),
            edit(
                "backend kind MeshGateway",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0].kind",
                        json!("MeshGateway"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].kind",
                    "is not a backend",
                ),
            ),
            edit(
                "backend kind missing",
                |v| remove(v, "spec.to[0].rules[0].default.backendRefs[0].kind"),
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].kind",
                    "must be set",
                ),
            ),
            edit(
                "backend without a name",
                |v| remove(v, "spec.to[0].rules[0].default.backendRefs[0].name"),
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].name",
                    "must be set",
                ),
            ),
            edit(
                "backend port 0",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0].port",
                        json!(0),
                    )
                },
                fail("spec.to[0].rules[0].default.backendRefs[0].port", "1-65535"),
            ),
        ],
    );
}

#[test]
fn tcp_routes() {
    run_table(
        TCP_BASE,
        &[
            edit(
                "targetRef missing",
                |v| remove(v, "spec.targetRef"),
                fail("spec.targetRef", "must be set"),
            ),
            edit(
                "targetRef kind unknown",
                |v| set(v, "spec.targetRef.kind", json!("Gateway")),
                fail("spec.targetRef.kind", "unknown value"),
            ),
            edit(
                "targetRef kind MeshServiceSubset",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshServiceSubset", "name": "x", "tags": {"version": "v1"}}),
                    )
                },
                PASS,
            ),
            edit(
                "targetRef kind MeshExternalService not allowed",
                |v| {
                    set(
                        v,
                        "spec.targetRef",
                        json!({"kind": "MeshExternalService", "name": "x"}),
                    )
                },
                fail("spec.targetRef.kind", "is not allowed here"),
            ),
            edit("to empty", |v| set(v, "spec.to", json!([])), PASS),
            edit(
                "rules empty",
                |v| set(v, "spec.to[0].rules", json!([])),
                fail("spec.to[0].rules", "at least one rule"),
            ),
            edit(
                "rule without default",
                |v| set(v, "spec.to[0].rules[0]", json!({})),
                fail("spec.to[0].rules[0].default", "must be set"),
            ),
            edit(
                "default without backendRefs",
                |v| set(v, "spec.to[0].rules[0].default", json!({})),
                fail(
                    "spec.to[0].rules[0].default.backendRefs",
                    "at least one backend",
                ),
            ),
            edit(
                "backend kind Mesh",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default.backendRefs[0].kind",
                        json!("Mesh"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.backendRefs[0].kind",
                    "is not a backend",
                ),
            ),
            edit(
                "HTTP-only field hostnames",
                |v| set(v, "spec.to[0].hostnames", json!(["a.example.com"])),
                fail("spec.to[0].hostnames", "unknown field"),
            ),
            edit(
                "HTTP-only field matches",
                |v| set(v, "spec.to[0].rules[0].matches", json!([])),
                fail("spec.to[0].rules[0].matches", "unknown field"),
            ),
        ],
    );
}

#[test]
fn tcp_gateway_routes() {
    run_table(
        GATEWAY_TCP_BASE,
        &[
            edit(
                "to targetRef MeshService",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshService", "name": "redis"}),
                    )
                },
                fail("spec.to[0].targetRef.kind", "must be Mesh"),
            ),
            edit(
                "to targetRef missing",
                |v| remove(v, "spec.to[0].targetRef"),
                fail("spec.to[0].targetRef", "must be set"),
            ),
        ],
    );
}

#[test]
fn routes_are_mesh_scoped() {
    run_table(
        TCP_BASE,
        &[
            edit(
                "mesh missing",
                |v| remove(v, "mesh"),
                fail("mesh", "must be set"),
            ),
            edit(
                "content beside spec",
                |v| set(v, "targetRef", json!({"kind": "Mesh"})),
                fail("targetRef", "unknown field"),
            ),
            edit(
                "spec is a string",
                |v| set(v, "spec", json!("Mesh")),
                fail("spec", "invalid type"),
            ),
        ],
    );
}

const RULE: &str = "spec.to[0].rules[0]";
const FILTER: &str = "spec.to[0].rules[0].default.filters[0]";

/// Replaces the base rule's filter with a URLRewrite configured by `rewrite`.
fn url_rewrite(v: &mut Value, rewrite: Value) {
    set(
        v,
        FILTER,
        json!({"type": "URLRewrite", "urlRewrite": rewrite}),
    );
}

fn prefix_rewrite(v: &mut Value) {
    url_rewrite(
        v,
        json!({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}),
    );
}

#[test]
fn http_path_and_query_matches_as_kuma() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "PathPrefix with a trailing slash",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path.value",
                        json!("/api/"),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].path.value",
                    "must not end with '/'",
                ),
            ),
            edit(
                "PathPrefix /",
                |v| set(v, "spec.to[0].rules[0].matches[0].path.value", json!("/")),
                PASS,
            ),
            edit(
                "Exact with a trailing slash",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].matches[0].path",
                        json!({"type": "Exact", "value": "/api/"}),
                    )
                },
                PASS,
            ),
            edit(
                "query parameter named twice",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].matches[0].queryParams",
                        json!({"type": "RegularExpression", "name": "debug", "value": "[0-9]"}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].matches[0].queryParams[1].name",
                    "\"debug\" is already matched by an earlier entry",
                ),
            ),
            edit(
                "two different query parameters",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].matches[0].queryParams",
                        json!({"type": "Exact", "name": "trace", "value": "1"}),
                    )
                },
                PASS,
            ),
            // Kuma refuses repeated query parameters, not repeated header matches.
            edit(
                "header matched twice",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].matches[0].headers",
                        json!({"type": "Prefix", "name": "x-version", "value": "v"}),
                    )
                },
                PASS,
            ),
        ],
    );
}

#[test]
fn http_header_modifiers_as_kuma() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "request header modifier with nothing to do",
                |v| set(v, &format!("{FILTER}.requestHeaderModifier"), json!({})),
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestHeaderModifier",
                    "must set at least one of set, add, remove",
                ),
            ),
            edit(
                "response header modifier with nothing to do",
                |v| {
                    set(
                        v,
                        FILTER,
                        json!({"type": "ResponseHeaderModifier", "responseHeaderModifier": {}}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].responseHeaderModifier",
                    "must set at least one of set, add, remove",
                ),
            ),
            edit(
                "header modifier that only removes",
                |v| {
                    set(
                        v,
                        &format!("{FILTER}.requestHeaderModifier"),
                        json!({"remove": ["x-internal"]}),
                    )
                },
                PASS,
            ),
            edit(
                "header both set and removed",
                |v| {
                    set(
                        v,
                        &format!("{FILTER}.requestHeaderModifier.remove"),
                        json!(["x-routed-by"]),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestHeaderModifier.remove[0]",
                    "\"x-routed-by\" is already modified by an earlier entry",
                ),
            ),
            edit(
                "header both set and added",
                |v| {
                    set(
                        v,
                        &format!("{FILTER}.requestHeaderModifier.add"),
                        json!([{"name": "x-routed-by", "value": "b"}]),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestHeaderModifier.add[0].name",
                    "already modified",
                ),
            ),
            edit(
                "different headers set, added and removed",
                |v| {
                    set(
                        v,
                        &format!("{FILTER}.requestHeaderModifier.add"),
                        json!([{"name": "x-extra", "value": "b"}]),
                    );
                    set(
                        v,
                        &format!("{FILTER}.requestHeaderModifier.remove"),
                        json!(["x-internal"]),
                    );
                },
                PASS,
            ),
        ],
    );
}

#[test]
fn http_replace_prefix_match_needs_prefix_matches() {
    run_table(
        HTTP_BASE,
        &[
            edit("rewrite under a PathPrefix match", prefix_rewrite, PASS),
            edit(
                "rewrite without any match",
                |v| {
                    prefix_rewrite(v);
                    remove(v, &format!("{RULE}.matches"));
                },
                PASS,
            ),
            edit(
                "rewrite under an Exact match",
                |v| {
                    prefix_rewrite(v);
                    set(
                        v,
                        &format!("{RULE}.matches[0].path"),
                        json!({"type": "Exact", "value": "/api"}),
                    );
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].urlRewrite.path.replacePrefixMatch",
                    "every match of the rule has a path of type PathPrefix",
                ),
            ),
            edit(
                "rewrite when one match has no path",
                |v| {
                    prefix_rewrite(v);
                    push(v, &format!("{RULE}.matches"), json!({"method": "POST"}));
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].urlRewrite.path.replacePrefixMatch",
                    "PathPrefix",
                ),
            ),
            edit(
                "full path rewrite under an Exact match",
                |v| {
                    url_rewrite(
                        v,
                        json!({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2"}}),
                    );
                    set(
                        v,
                        &format!("{RULE}.matches[0].path"),
                        json!({"type": "Exact", "value": "/api"}),
                    );
                },
                PASS,
            ),
            edit(
                "redirect under a RegularExpression match",
                |v| {
                    set(
                        v,
                        &format!("{RULE}.default"),
                        json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                        }}]}),
                    );
                    set(
                        v,
                        &format!("{RULE}.matches[0].path"),
                        json!({"type": "RegularExpression", "value": "/a.*"}),
                    );
                },
                fail(
                    "spec.to[0].rules[0].default.filters[0].requestRedirect.path.replacePrefixMatch",
                    "PathPrefix",
                ),
            ),
        ],
    );
}

#[test]
fn http_redirect_and_rewrite_hostnames_are_precise() {
    let rewrite_host = "spec.to[0].rules[0].default.filters[0].urlRewrite.hostname";
    let redirect_host = "spec.to[0].rules[0].default.filters[0].requestRedirect.hostname";
    run_table(
        HTTP_BASE,
        &[
            edit(
                "rewrite to a host name",
                |v| url_rewrite(v, json!({"hostname": "api.example.com"})),
                PASS,
            ),
            edit(
                "rewrite to an IPv4 address",
                |v| url_rewrite(v, json!({"hostname": "10.0.0.1"})),
                fail(rewrite_host, "not an IP address"),
            ),
            edit(
                "rewrite to an IPv6 address",
                |v| url_rewrite(v, json!({"hostname": "::1"})),
                fail(rewrite_host, "not an IP address"),
            ),
            edit(
                "rewrite to an upper-case name",
                |v| url_rewrite(v, json!({"hostname": "Api.example.com"})),
                fail(rewrite_host, "lower-case DNS name"),
            ),
            edit(
                "rewrite to a wildcard",
                |v| url_rewrite(v, json!({"hostname": "*.example.com"})),
                fail(rewrite_host, "lower-case DNS name"),
            ),
            edit(
                "redirect to an IP address",
                |v| {
                    redirect(v);
                    set(
                        v,
                        &format!("{FILTER}.requestRedirect.hostname"),
                        json!("192.168.1.1"),
                    );
                },
                fail(redirect_host, "not an IP address"),
            ),
            edit(
                "redirect to a host name",
                |v| {
                    redirect(v);
                    set(
                        v,
                        &format!("{FILTER}.requestRedirect.hostname"),
                        json!("www.example.com"),
                    );
                },
                PASS,
            ),
            edit(
                "hostToBackendHostname on a sidecar route",
                |v| url_rewrite(v, json!({"hostToBackendHostname": true})),
                fail(
                    "spec.to[0].rules[0].default.filters[0].urlRewrite.hostToBackendHostname",
                    "only be set when the top-level targetRef is a MeshGateway",
                ),
            ),
        ],
    );
}

#[test]
fn gateway_rules_as_kuma() {
    run_table(
        GATEWAY_HTTP_BASE,
        &[
            edit(
                "hostToBackendHostname on a gateway route",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].default.filters",
                        json!({"type": "URLRewrite", "urlRewrite": {"hostToBackendHostname": true}}),
                    )
                },
                PASS,
            ),
            edit(
                "gateway rule without backendRefs",
                |v| remove(v, "spec.to[0].rules[0].default.backendRefs"),
                fail(
                    "spec.to[0].rules[0].default.backendRefs",
                    "at least one backend",
                ),
            ),
            edit(
                "gateway rule that only redirects",
                |v| {
                    set(
                        v,
                        "spec.to[0].rules[0].default",
                        json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}),
                    )
                },
                PASS,
            ),
        ],
    );
}

#[test]
fn destinations_and_backends_as_kuma() {
    run_table(
        HTTP_BASE,
        &[
            edit(
                "sidecar to Mesh",
                |v| set(v, "spec.to[0].targetRef", json!({"kind": "Mesh"})),
                fail(
                    "spec.to[0].targetRef.kind",
                    "Mesh is not allowed here; use one of MeshService, MeshMultiZoneService",
                ),
            ),
            edit(
                "sidecar to a MeshMultiZoneService",
                |v| {
                    set(
                        v,
                        "spec.to[0].targetRef",
                        json!({"kind": "MeshMultiZoneService", "name": "backend"}),
                    )
                },
                fail(
                    "spec.to[0].targetRef.kind",
                    "MeshMultiZoneService is not supported yet",
                ),
            ),
            edit(
                "mirror to a MeshExternalService",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].default.filters",
                        json!({"type": "RequestMirror", "requestMirror": {
                            "backendRef": {"kind": "MeshExternalService", "name": "httpbin"},
                        }}),
                    )
                },
                fail(
                    "spec.to[0].rules[0].default.filters[1].requestMirror.backendRef.kind",
                    "MeshExternalService is not a backend here; use one of MeshService, MeshServiceSubset",
                ),
            ),
            edit(
                "mirror to a MeshServiceSubset",
                |v| {
                    push(
                        v,
                        "spec.to[0].rules[0].default.filters",
                        json!({"type": "RequestMirror", "requestMirror": {
                            "backendRef": {"kind": "MeshServiceSubset", "name": "backend", "tags": {"version": "v2"}},
                        }}),
                    )
                },
                PASS,
            ),
        ],
    );
}

#[test]
fn multi_zone_service_backends_need_a_port() {
    let backend = "spec.to[0].rules[0].default.backendRefs[0]";
    let mut without_port = yaml(HTTP_BASE);
    set(
        &mut without_port,
        backend,
        json!({"kind": "MeshMultiZoneService", "name": "backend"}),
    );
    assert_exact_violations(
        "MeshMultiZoneService backend without a port",
        without_port.clone(),
        &[
            (
                "spec.to[0].rules[0].default.backendRefs[0].kind",
                "MeshMultiZoneService is not supported yet",
            ),
            (
                "spec.to[0].rules[0].default.backendRefs[0].port",
                "must be set for kind MeshMultiZoneService",
            ),
        ],
    );
    // With its port, only the refusal of the kind itself remains.
    let mut with_port = without_port;
    set(&mut with_port, &format!("{backend}.port"), json!(8080));
    assert_exact_violations(
        "MeshMultiZoneService backend with a port",
        with_port,
        &[(
            "spec.to[0].rules[0].default.backendRefs[0].kind",
            "MeshMultiZoneService is not supported yet",
        )],
    );

    let mut tcp = yaml(TCP_BASE);
    set(
        &mut tcp,
        backend,
        json!({"kind": "MeshMultiZoneService", "name": "redis"}),
    );
    let found = violations(tcp);
    assert!(
        found.iter().any(|v| v.field == format!("{backend}.port")
            && v.message == "must be set for kind MeshMultiZoneService"),
        "{}",
        render(&found)
    );
}
