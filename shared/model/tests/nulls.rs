//! `field: null` reads as an absent field, as in Kuma, for every kind of optional field.

mod support;

use atoll_model::encode_value;
use support::*;

/// Decodes a document that must be accepted.
fn accepted(text: &str) -> atoll_model::Resource {
    decode(text).unwrap_or_else(|err| {
        panic!(
            "expected acceptance, got:\n{}\n{text}",
            render(&err.violations)
        )
    })
}

#[test]
fn null_optional_fields_of_a_mesh_are_absent() {
    let with_nulls = accepted(
        "
type: Mesh
name: default
labels: null
mtls:
  enabledBackend: ca-1
  skipValidation: null
  backends:
  - name: ca-1
    type: builtin
    mode: null
    dpCert: null
    conf:
      caCert:
        RSAbits: null
routing: null
networking:
  outbound: null
skipCreatingInitialPolicies: null
",
    );
    let without = accepted(
        "
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    conf:
      caCert: {}
networking: {}
",
    );
    assert_eq!(with_nulls, without);
    // Nothing of the nulls survives into the stored form.
    assert!(!encode_value(&with_nulls).to_string().contains("null"));
}

#[test]
fn null_fields_of_a_route_are_absent() {
    let route = accepted(
        "
type: MeshHTTPRoute
name: r
mesh: default
spec:
  targetRef:
    kind: Mesh
    tags: null
  to:
  - targetRef:
      kind: MeshService
      name: backend
    hostnames: null
    rules:
    - matches: null
      default:
        filters: null
        backendRefs:
        - kind: MeshService
          name: backend
          port: null
          weight: null
",
    );
    let atoll_model::Spec::MeshHttpRoute(spec) = &route.spec else {
        panic!("not a route: {route:?}");
    };
    let rule = &spec.to[0].rules[0];
    assert!(rule.matches.is_empty());
    let conf = rule.default.as_ref().expect("default");
    assert!(conf.filters.is_empty());
    assert_eq!(conf.backend_refs[0].port, None);
    assert_eq!(conf.backend_refs[0].weight, None);
}

#[test]
fn a_null_required_field_is_reported_as_missing() {
    let err = decode(
        "
type: MeshExternalService
name: httpbin
mesh: default
spec:
  match:
    type: null
    port: 80
    protocol: null
  endpoints:
  - address: httpbin.org
    port: null
  tls: null
",
    )
    .expect_err("an endpoint without a port");
    assert_eq!(
        err.violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        ["spec.endpoints[0].port"],
        "{}",
        render(&err.violations)
    );
}

#[test]
fn nulls_inside_free_form_values_are_kept() {
    // Extensions are refused by validation (no plug-in runs them), so this reads the shape
    // only, as the store does.
    let value: serde_json::Value = serde_norway::from_str(
        "
type: MeshExternalService
name: httpbin
mesh: default
spec:
  match:
    port: 80
  extension:
    type: my-extension
    config:
      keep: null
      list: [null, 1]
",
    )
    .expect("YAML");
    let service = atoll_model::decode_stored(value).expect("the shape reads");
    let atoll_model::Spec::MeshExternalService(spec) = &service.spec else {
        panic!("not a MeshExternalService: {service:?}");
    };
    let config = spec.extension.as_ref().and_then(|e| e.config.clone());
    assert_eq!(config, Some(json!({"keep": null, "list": [null, 1]})));
}

#[test]
fn a_null_map_entry_or_list_item_is_still_an_error() {
    let err = decode(
        "
type: Dataplane
name: web-1
mesh: default
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
      version: null
",
    )
    .expect_err("a tag without a value");
    assert!(
        err.violations
            .iter()
            .any(|v| v.field.starts_with("networking.inbound[0].tags")),
        "{}",
        render(&err.violations)
    );
    let err = decode(
        "
type: MeshGateway
name: edge
mesh: default
selectors:
- null
conf:
  listeners:
  - port: 8080
    protocol: HTTP
",
    )
    .expect_err("a null selector must not pass as an empty one");
    assert!(
        err.violations
            .iter()
            .any(|v| v.field == "selectors[0]" && v.message.contains("null")),
        "{}",
        render(&err.violations)
    );
}
