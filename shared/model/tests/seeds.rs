//! The MeshGateway examples of seeds 000 and 001 (Kuma's MeshGateway documentation), copied
//! literally, must validate. The seeds are documentation and are not read at run time.
//!
//! Seed 001 also shows a Kubernetes `Secret` manifest produced by a shell script; it is not a
//! universal-format document, so it has no counterpart here.

mod support;

use atoll_model::types::{GatewayProtocol, MeshGatewaySpec, TlsMode};
use atoll_model::{Kind, Resource, Spec, parse_documents};
use support::{decode, render};

/// Seed 001: one HTTP listener on port 8080 for `foo.example.com`.
const ONE_LISTENER: &str = r#"type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
    tags:
      port: http-8080 
"#;

/// Seed 001: two HTTP listeners sharing port 8080, one per hostname.
const TWO_LISTENERS_ON_8080: &str = r#"type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
    tags:
      vhost: foo.example.com
  - port: 8080
    protocol: HTTP
    hostname: bar.example.com
    tags:
      vhost: bar.example.com
"#;

/// Seed 001: HTTPS on port 8443, terminating TLS with the certificate in a secret.
const TLS_TERMINATION: &str = r#"type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    hostname: foo.example.com
    tls:
      mode: TERMINATE  
      certificates:
        - secret: foo-example-com-certificate
    tags:
      name: foo.example.com
"#;

/// Seed 000, "Cross-mesh": the seed describes this gateway in prose only. One selector (a
/// cross-mesh gateway may have only one), an HTTP listener on 8080 with `crossMesh: true`, and
/// the hostname `default.mesh` the seed's URL `http://default.mesh:8080` uses.
const CROSS_MESH: &str = r#"type: MeshGateway
mesh: default
name: cross-mesh-gateway
selectors:
- match:
    kuma.io/service: cross-mesh-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    crossMesh: true
    hostname: default.mesh
"#;

/// Seed 000, "Outbound": the outbound a client Dataplane adds to reach the cross-mesh gateway
/// without a transparent proxy (a fragment of the `networking` section, indented as in the seed).
const CROSS_MESH_OUTBOUND: &str = r#"  outbound:
    - port: 8080
      tags:
        kuma.io/service: cross-mesh-gateway
        kuma.io/mesh: default
"#;

fn accepted(name: &str, text: &str) -> Resource {
    match decode(text) {
        Ok(resource) => resource,
        Err(err) => panic!(
            "seed example {name:?} must validate, but:\n{}\n{text}",
            render(&err.violations)
        ),
    }
}

fn gateway(name: &str, text: &str) -> MeshGatewaySpec {
    let resource = accepted(name, text);
    assert_eq!(resource.kind(), Kind::MeshGateway, "{name}");
    assert_eq!(resource.mesh(), Some("default"), "{name}");
    match resource.spec {
        Spec::MeshGateway(spec) => spec,
        other => panic!("{name}: expected a MeshGateway, got {:?}", other.kind()),
    }
}

#[test]
fn one_listener() {
    let spec = gateway("one listener", ONE_LISTENER);
    let listeners = &spec.conf.expect("conf").listeners;
    assert_eq!(listeners.len(), 1);
    let listener = &listeners[0];
    assert_eq!(listener.port, 8080);
    assert_eq!(listener.protocol, GatewayProtocol::Http);
    assert_eq!(listener.hostname, "foo.example.com");
    // The seed's trailing space after the tag value is not part of the value.
    assert_eq!(
        listener.tags.get("port").map(String::as_str),
        Some("http-8080")
    );
    assert_eq!(
        spec.selectors[0]
            .match_tags
            .get("kuma.io/service")
            .map(String::as_str),
        Some("edge-gateway")
    );
}

#[test]
fn two_listeners_on_one_port() {
    let spec = gateway("two listeners on 8080", TWO_LISTENERS_ON_8080);
    let listeners = &spec.conf.expect("conf").listeners;
    let summary: Vec<(u32, &str)> = listeners
        .iter()
        .map(|l| (l.port, l.hostname.as_str()))
        .collect();
    assert_eq!(
        summary,
        [(8080, "foo.example.com"), (8080, "bar.example.com")]
    );
    assert!(
        listeners
            .iter()
            .all(|l| l.protocol == GatewayProtocol::Http)
    );
}

#[test]
fn tls_termination() {
    let spec = gateway("TLS termination", TLS_TERMINATION);
    let listener = &spec.conf.expect("conf").listeners[0];
    assert_eq!(listener.port, 8443);
    assert_eq!(listener.protocol, GatewayProtocol::Https);
    let tls = listener.tls.as_ref().expect("tls");
    assert_eq!(tls.mode, TlsMode::Terminate);
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(
        tls.certificates[0].secret.as_deref(),
        Some("foo-example-com-certificate")
    );
}

#[test]
fn cross_mesh() {
    let spec = gateway("cross-mesh", CROSS_MESH);
    assert_eq!(spec.selectors.len(), 1);
    let listener = &spec.conf.expect("conf").listeners[0];
    assert!(listener.cross_mesh);
    assert_eq!(
        (
            listener.port,
            &listener.protocol,
            listener.hostname.as_str()
        ),
        (8080, &GatewayProtocol::Http, "default.mesh")
    );
}

#[test]
fn cross_mesh_outbound_in_a_dataplane() {
    let text = format!(
        "type: Dataplane\nmesh: default\nname: client-1\nnetworking:\n  address: 10.0.0.5\n  inbound:\n  - port: 9090\n    tags:\n      kuma.io/service: client\n{CROSS_MESH_OUTBOUND}"
    );
    let resource = accepted("cross-mesh outbound", &text);
    let Spec::Dataplane(spec) = resource.spec else {
        panic!("expected a Dataplane");
    };
    let outbound = &spec.networking.expect("networking").outbound[0];
    assert_eq!(outbound.port, 8080);
    assert_eq!(
        outbound.tags.get("kuma.io/service").map(String::as_str),
        Some("cross-mesh-gateway")
    );
}

#[test]
fn all_examples_as_one_stream() {
    let stream = [
        ONE_LISTENER,
        TWO_LISTENERS_ON_8080,
        TLS_TERMINATION,
        CROSS_MESH,
    ]
    .join("---\n");
    let documents = parse_documents(&stream);
    assert_eq!(documents.len(), 4);
    for document in &documents {
        if let Err(err) = &document.outcome {
            panic!(
                "document at line {} must validate:\n{}",
                document.line,
                render(&err.violations)
            );
        }
    }
    let lines: Vec<usize> = documents.iter().map(|d| d.line).collect();
    assert_eq!(lines, [1, 15, 34, 52]);
}
