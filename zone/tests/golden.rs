//! Golden files of the generated xDS for representative inputs, each also checked by a real
//! `envoy --mode validate`. `UPDATE_GOLDEN=1 cargo test -p atoll-zone --test golden` rewrites
//! the files after an intended change; review the diff.

use std::path::PathBuf;
use std::time::Instant;

use atoll_zone::proxy::build::build;
use atoll_zone::proxy::identity::Identities;
use atoll_zone::proxy::meta::ProxyMeta;
use atoll_zone::world::World;
use atoll_zone::xds::clusters;
use atoll_zone::xds::snapshot::{CLUSTER, ENDPOINT, LISTENER, SECRET, Snapshot};
use envoy_types::pb::envoy::config::bootstrap::v3::{Bootstrap, bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, GrpcService, api_config_source, grpc_service,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, Secret, UpstreamTlsContext,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

fn world(yaml: &str) -> World {
    let mut world = World::default();
    for doc in atoll_model::parse_documents(yaml) {
        let resource = doc
            .outcome
            .unwrap_or_else(|e| panic!("invalid fixture at line {}: {e:?}", doc.line));
        let meta = resource.meta.clone();
        world.apply(
            resource.kind(),
            meta.mesh.as_deref(),
            &meta.name,
            Some(&resource),
        );
    }
    world
}

/// Replaces PEM text (random keys) so the golden files are stable.
fn redact_pem(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\"-----BEGIN") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('"').map_or(after.len(), |e| e + 1);
        out.push_str("\"<PEM>\"");
        rest = &after[end.min(after.len())..];
    }
    out.push_str(rest);
    out
}

/// An `Any` shown as its decoded message where the type is known.
fn unpack(any: &Any) -> String {
    let v = any.value.as_slice();
    let t = any.type_url.rsplit('/').next().unwrap_or_default();
    let decoded = match t {
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" => {
            HttpConnectionManager::decode(v).map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy" => {
            TcpProxy::decode(v).map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit" => {
            envoy_types::pb::envoy::extensions::filters::network::local_ratelimit::v3::LocalRateLimit::decode(v)
                .map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit" => {
            ConnectionLimit::decode(v).map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext" => {
            DownstreamTlsContext::decode(v).map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" => {
            UpstreamTlsContext::decode(v).map(|m| format!("{m:#?}"))
        }
        "envoy.extensions.health_check.event_sinks.file.v3.HealthCheckEventFileSink" => {
            HealthCheckEventFileSink::decode(v).map(|m| format!("{m:#?}"))
        }
        _ => return format!("<{t}>"),
    };
    format!(
        "{t} {}",
        decoded.unwrap_or_else(|e| format!("<undecodable: {e}>"))
    )
}

/// The listener with its typed configs printed decoded after it.
fn describe_listener(listener: &Listener) -> String {
    let mut shallow = listener.clone();
    let mut nested = Vec::new();
    for chain in &mut shallow.filter_chains {
        for f in &mut chain.filters {
            if let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type {
                nested.push(format!("{} / {}: {}", chain.name, f.name, unpack(any)));
                any.value.clear();
            }
        }
        if let Some(socket) = &mut chain.transport_socket
            && let Some(
                envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                    any,
                ),
            ) = &mut socket.config_type
        {
            nested.push(format!(
                "{} / transport socket: {}",
                chain.name,
                unpack(any)
            ));
            any.value.clear();
        }
    }
    for f in &mut shallow.listener_filters {
        if let Some(
            envoy_types::pb::envoy::config::listener::v3::listener_filter::ConfigType::TypedConfig(
                any,
            ),
        ) = &mut f.config_type
        {
            any.value.clear();
        }
    }
    format!("{shallow:#?}\n{}", nested.join("\n"))
}

fn describe_cluster(cluster: &Cluster) -> String {
    let mut shallow = cluster.clone();
    let mut nested = String::new();
    if let Some(socket) = &mut shallow.transport_socket
        && let Some(
            envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                any,
            ),
        ) = &mut socket.config_type
    {
        nested = format!("\ntransport socket: {}", unpack(any));
        any.value.clear();
    }
    for check in &mut shallow.health_checks {
        for logger in &mut check.event_logger {
            if let Some(any) = &mut logger.typed_config {
                nested.push_str(&format!("\nhealth check event logger: {}", unpack(any)));
                any.value.clear();
            }
        }
    }
    format!("{shallow:#?}{nested}")
}

fn describe(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for l in snapshot.decoded::<Listener>(LISTENER) {
        out.push_str(&format!(
            "=== Listener {}\n{}\n",
            l.name,
            describe_listener(&l)
        ));
    }
    for c in snapshot.decoded::<Cluster>(CLUSTER) {
        out.push_str(&format!(
            "=== Cluster {}\n{}\n",
            c.name,
            describe_cluster(&c)
        ));
    }
    for e in snapshot.decoded::<ClusterLoadAssignment>(ENDPOINT) {
        out.push_str(&format!("=== Endpoints {}\n{e:#?}\n", e.cluster_name));
    }
    for s in snapshot.decoded::<Secret>(SECRET) {
        out.push_str(&format!("=== Secret {}\n{s:#?}\n", s.name));
    }
    redact_pem(&out)
}

fn check_golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    // A missing file is a failure, not a new golden: CI must never bless what it generated.
    assert!(
        path.exists(),
        "{} is missing; create it with UPDATE_GOLDEN=1 and review it",
        path.display()
    );
    let expected = std::fs::read_to_string(&path).unwrap();
    if expected != text {
        let first = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the generated configuration at line {}:\n  golden:    {:?}\n  generated: {:?}\nrerun with UPDATE_GOLDEN=1 if the change is intended",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            text.lines().nth(first)
        );
    }
}

/// `envoy --mode validate` on a bootstrap holding the snapshot's listeners and clusters, with
/// ADS configured so EDS clusters and SDS secrets are accepted as they are served.
fn envoy_validate(snapshot: &Snapshot) -> Result<(), String> {
    let envoy = atoll_e2e::envoy::binary().expect("an Envoy binary");
    let mut clusters_list = snapshot.decoded::<Cluster>(CLUSTER);
    // Static clusters in a bootstrap are set up before the ADS stream exists, so one whose TLS
    // reads an SDS secret crashes Envoy there; served over CDS they are set up after it, as
    // EDS clusters are here. Validate such a cluster as EDS.
    for cluster in &mut clusters_list {
        let is_static = cluster.cluster_discovery_type
            == Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            ));
        if is_static && cluster.transport_socket.is_some() {
            let name = cluster.name.clone();
            *cluster = Cluster {
                transport_socket: cluster.transport_socket.take(),
                typed_extension_protocol_options: std::mem::take(
                    &mut cluster.typed_extension_protocol_options,
                ),
                ..clusters::eds(&name, None)
            };
        }
    }
    clusters_list.push(clusters::with_http2(clusters::fixed("xds", "127.0.0.1", 1)));
    let bootstrap = Bootstrap {
        node: Some(envoy_types::pb::envoy::config::core::v3::Node {
            id: "golden.proxy".into(),
            cluster: "golden".into(),
            ..Default::default()
        }),
        static_resources: Some(bootstrap::StaticResources {
            listeners: snapshot.decoded::<Listener>(LISTENER),
            clusters: clusters_list,
            ..Default::default()
        }),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_config_source::ApiType::Grpc as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: "xds".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap.pb");
    std::fs::write(&file, bootstrap.encode_to_vec()).unwrap();
    let output = std::process::Command::new(envoy)
        .args(["--mode", "validate", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn generate(world: &World, mesh: &str, name: &str) -> (Snapshot, Vec<String>) {
    generate_with(world, None, mesh, name)
}

/// `generate` for a proxy that told `meta` about itself when it connected.
fn generate_with(
    world: &World,
    meta: Option<&ProxyMeta>,
    mesh: &str,
    name: &str,
) -> (Snapshot, Vec<String>) {
    let built = build(
        world,
        meta,
        &mut Identities::default(),
        &(mesh.to_string(), name.to_string()),
        Instant::now(),
    )
    .expect("the Dataplane exists");
    (built.snapshot, built.problems)
}

fn pem_secret(mesh: &str, name: &str, cert: &str, key: &str) -> String {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(format!("{cert}{key}"));
    format!("---\ntype: Secret\nmesh: {mesh}\nname: {name}\ndata: {data}\n")
}

/// An RSA certificate from openssl (rcgen on ring cannot generate RSA keys).
fn rsa_certificate(host: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg(format!("/CN={host}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

const SERVICES: &str = "
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.2
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: web
      kuma.io/protocol: http
---
type: Dataplane
mesh: default
name: api-1
networking:
  address: 10.0.0.3
  inbound:
  - port: 8080
    tags:
      kuma.io/service: api
      kuma.io/protocol: http
---
type: Dataplane
mesh: default
name: db-1
networking:
  address: 10.0.0.4
  inbound:
  - port: 5432
    tags:
      kuma.io/service: db
";

const GATEWAY_DP: &str = "
---
type: Dataplane
mesh: default
name: edge-1
networking:
  address: 10.0.0.1
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
";

#[test]
fn gateway_http_listeners_with_every_route_feature() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
    resources:
      connectionLimit: 100
  - port: 8080
    protocol: HTTP
    hostname: '*.bar.example.com'
    tags:
      vhost: bar
  - port: 9090
    protocol: HTTP
---
type: MeshHTTPRoute
mesh: default
name: foo
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    hostnames: [foo.example.com]
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /api
        method: GET
        queryParams:
        - type: Exact
          name: v
          value: '2'
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
            - name: X-Version
              value: '2'
            remove: [X-Debug]
        - type: URLRewrite
          urlRewrite:
            path:
              type: ReplacePrefixMatch
              replacePrefixMatch: /v2
        - type: RequestMirror
          requestMirror:
            percentage: 10
            backendRef:
              kind: MeshService
              name: api
        backendRefs:
        - kind: MeshService
          name: web
          weight: 90
        - kind: MeshService
          name: api
          weight: 10
    - matches:
      - path:
          type: Exact
          value: /old
      default:
        filters:
        - type: RequestRedirect
          requestRedirect:
            statusCode: 301
            path:
              type: ReplaceFullPath
              replaceFullPath: /new
---
type: MeshHTTPRoute
mesh: default
name: bar-only
spec:
  targetRef:
    kind: MeshGateway
    name: edge
    tags:
      vhost: bar
  to:
  - targetRef:
      kind: Mesh
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: api
{SERVICES}{GATEWAY_DP}"
    ));
    let (snapshot, problems) = generate(&world, "default", "edge-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    // The tag-targeted route attaches to the bar listener only.
    assert!(text.contains("*.bar.example.com"));
    check_golden("gateway_http", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

#[test]
fn gateway_tls_terminate_with_two_certificates_passthrough_and_tcp() {
    let (ec_cert, ec_key) = atoll_tls::self_signed(&["secure.example.com".into()], false).unwrap();
    let (rsa_cert, rsa_key) = rsa_certificate("secure.example.com");
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8443
    protocol: HTTPS
    hostname: secure.example.com
    tls:
      mode: TERMINATE
      certificates:
      - secret: ec-cert
      - secret: rsa-cert
  - port: 9443
    protocol: TLS
    hostname: db.example.com
    tls:
      mode: PASSTHROUGH
  - port: 5432
    protocol: TCP
---
type: MeshHTTPRoute
mesh: default
name: secure
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: web
---
type: MeshTCPRoute
mesh: default
name: db
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: db
{}{}{SERVICES}{GATEWAY_DP}",
        pem_secret("default", "ec-cert", &ec_cert, &ec_key),
        pem_secret("default", "rsa-cert", &rsa_cert, &rsa_key),
    ));
    let (snapshot, problems) = generate(&world, "default", "edge-1");
    assert!(problems.is_empty(), "{problems:?}");
    let listeners = snapshot.decoded::<Listener>(LISTENER);
    assert_eq!(listeners.len(), 3);
    check_golden("gateway_tls_tcp", &describe(&snapshot));
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

#[test]
fn sidecar_with_mesh_mtls() {
    let ca = atoll_tls::Authority::generate("mesh secure").unwrap();
    let bundle = ca.to_bundle();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(bundle);
    let world = world(&format!(
        "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
---
type: Secret
mesh: secure
name: ca-builtin-ca-1
data: {data}
---
type: Dataplane
mesh: secure
name: client-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: client
      kuma.io/protocol: http
  outbound:
  - port: 10001
    tags:
      kuma.io/service: echo
  - port: 10002
    tags:
      kuma.io/service: cache
---
type: Dataplane
mesh: secure
name: echo-1
networking:
  address: 10.0.0.6
  inbound:
  - port: 8080
    tags:
      kuma.io/service: echo
      kuma.io/protocol: http
---
type: Dataplane
mesh: secure
name: cache-1
networking:
  address: 10.0.0.7
  inbound:
  - port: 6379
    tags:
      kuma.io/service: cache
"
    ));
    let (snapshot, problems) = generate(&world, "secure", "client-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    assert!(
        text.contains("spiffe://secure/echo"),
        "outbound checks the server identity"
    );
    check_golden("sidecar_mtls", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

#[test]
fn a_second_matching_gateway_is_reported_not_picked() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
---
type: MeshGateway
mesh: default
name: edge-too
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8081
    protocol: HTTP
{GATEWAY_DP}"
    ));
    let (snapshot, problems) = generate(&world, "default", "edge-1");
    assert!(snapshot.decoded::<Listener>(LISTENER).is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("edge, edge-too"), "{problems:?}");
}

/// A client in mesh `m` with an outbound to `backend`.
const CLIENT_OF_BACKEND: &str = "---
type: Dataplane
mesh: m
name: client-1
networking:
  address: 10.1.1.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: client
  outbound:
  - port: 10080
    tags:
      kuma.io/service: backend
";

/// Cross-zone routing modes: the mesh's `routing.zoneEgress` (local) and the outbound's
/// `atoll.io/cross-zone-mode` override, and failing closed without an egress.
#[test]
fn cross_zone_modes_pick_the_egress_or_the_remote_ingress() {
    let ca = atoll_tls::Authority::generate("mesh m").unwrap();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(ca.to_bundle());
    let fixture = |outbound_tag: &str, with_egress: bool| {
        let egress = if with_egress {
            "---\ntype: ZoneEgress\nname: egress\nzone: zone-1\nnetworking:\n  address: 10.9.9.9\n  port: 10002\n"
        } else {
            ""
        };
        let mut w = world(&format!(
            "type: Mesh
name: m
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
routing:
  zoneEgress: true
---
type: Secret
mesh: m
name: ca-builtin-ca-1
data: {data}
---
type: ZoneIngress
name: zone-2.ingress
zone: zone-2
networking:
  address: 10.2.2.2
  port: 10001
availableServices:
- mesh: m
  instances: 3
  endpoints: ['10.7.7.7:8080']
  tags:
    kuma.io/service: backend
{egress}{CLIENT_OF_BACKEND}{outbound_tag}"
        ));
        w.local_zone = "zone-1".into();
        let (snapshot, problems) = generate(&w, "m", "client-1");
        let endpoints: Vec<String> = snapshot
            .decoded::<ClusterLoadAssignment>(ENDPOINT)
            .iter()
            .flat_map(|c| &c.endpoints)
            .flat_map(|l| &l.lb_endpoints)
            .map(|e| format!("{e:?}"))
            .collect();
        (endpoints.join(" "), problems)
    };
    let (via_egress, problems) = fixture("", true);
    assert!(
        via_egress.contains("10.9.9.9") && !via_egress.contains("10.2.2.2"),
        "{via_egress}"
    );
    assert!(
        via_egress.contains("value: 3"),
        "weighted by the remote instances: {via_egress}"
    );
    assert!(problems.is_empty(), "{problems:?}");
    let (overridden, _) = fixture("      atoll.io/cross-zone-mode: remote\n", true);
    assert!(
        overridden.contains("10.2.2.2") && !overridden.contains("10.9.9.9"),
        "{overridden}"
    );
    let (direct, _) = fixture("      atoll.io/cross-zone-mode: none\n", true);
    assert!(
        direct.contains("10.7.7.7") && !direct.contains("10.2.2.2") && !direct.contains("10.9.9.9"),
        "mode none goes straight to the instance: {direct}"
    );
    let (closed, problems) = fixture("", false);
    assert!(
        !closed.contains("10.2.2.2"),
        "no silent direct route: {closed}"
    );
    assert!(
        problems.iter().any(|p| p.contains("zone egress")),
        "{problems:?}"
    );
}

/// A mesh `name` with mTLS from a builtin CA (its Secret included), `extra` added to the
/// backend (e.g. its mode) and `rest` added to the Mesh (e.g. routing).
fn mtls_mesh(name: &str, extra: &str, rest: &str) -> String {
    use base64::Engine;
    let ca = atoll_tls::Authority::generate(&format!("mesh {name}")).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(ca.to_bundle());
    format!(
        "type: Mesh
name: {name}
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
{extra}{rest}---
type: Secret
mesh: {name}
name: ca-builtin-ca-1
data: {data}
"
    )
}

/// PERMISSIVE: the inbound takes mesh mTLS and plain text, told apart by the TLS inspector;
/// STRICT keeps one mTLS-only chain.
#[test]
fn sidecar_permissive_inbound_takes_plain_text_too() {
    let world_in = |mode: &str| {
        world(&format!(
            "{}{SERVICES}",
            mtls_mesh("default", &format!("    mode: {mode}\n"), "")
        ))
    };
    let (snapshot, problems) = generate(&world_in("PERMISSIVE"), "default", "web-1");
    assert!(problems.is_empty(), "{problems:?}");
    let listeners = snapshot.decoded::<Listener>(LISTENER);
    let transports: Vec<String> = listeners[0]
        .filter_chains
        .iter()
        .map(|c| {
            c.filter_chain_match
                .clone()
                .unwrap_or_default()
                .transport_protocol
        })
        .collect();
    assert_eq!(transports, ["tls", "raw_buffer"]);
    assert_eq!(
        listeners[0].listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    assert!(listeners[0].filter_chains[0].transport_socket.is_some());
    assert!(listeners[0].filter_chains[1].transport_socket.is_none());
    check_golden("sidecar_permissive", &describe(&snapshot));
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));

    let (strict, _) = generate(&world_in("STRICT"), "default", "web-1");
    let strict = strict.decoded::<Listener>(LISTENER);
    assert_eq!(strict[0].filter_chains.len(), 1);
    assert!(strict[0].filter_chains[0].transport_socket.is_some());
    assert!(strict[0].listener_filters.is_empty());
}

/// A MeshHTTPRoute on the client's outbound to `web`: `/v2` split between a subset of web's
/// instances (tag `version: v2`) and the service on port 8080; everything else to web.
#[test]
fn sidecar_route_with_a_subset_backend() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshHTTPRoute
mesh: default
name: web-v2
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: web
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v2
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
            - name: x-routed
              value: v2
        backendRefs:
        - kind: MeshServiceSubset
          name: web
          tags:
            version: v2
          weight: 90
        - kind: MeshService
          name: web
          port: 8080
          weight: 10
---
type: Dataplane
mesh: default
name: web-2
networking:
  address: 10.0.0.9
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
      kuma.io/protocol: http
      version: v2
---
type: Dataplane
mesh: default
name: client-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    tags:
      kuma.io/service: client
  outbound:
  - port: 10001
    tags:
      kuma.io/service: web
{SERVICES}"
    ));
    let (snapshot, problems) = generate(&world, "default", "client-1");
    assert!(problems.is_empty(), "{problems:?}");
    let subset: Vec<String> = snapshot
        .decoded::<ClusterLoadAssignment>(ENDPOINT)
        .iter()
        .filter(|c| c.cluster_name == "web[version=v2]")
        .flat_map(|c| &c.endpoints)
        .flat_map(|l| &l.lb_endpoints)
        .map(|e| format!("{e:?}"))
        .collect();
    assert_eq!(subset.len(), 1, "only the tagged instance: {subset:?}");
    assert!(subset[0].contains("10.0.0.9"), "{subset:?}");
    let text = describe(&snapshot);
    assert!(text.contains("\"web[version=v2]\"") && text.contains("\"web_8080\""));
    check_golden("sidecar_route_subset", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// `routing.localityAwareLoadBalancing`: this zone's instances at priority 0, other zones'
/// (through their ingress) at 1; without it, one priority for all.
#[test]
fn locality_aware_load_balancing_prefers_the_local_zone() {
    let fixture = |routing: &str| {
        let mut w = world(&format!(
            "{}---
type: ZoneIngress
name: zone-2.ingress
zone: zone-2
networking:
  address: 10.2.2.2
  port: 10001
availableServices:
- mesh: m
  instances: 2
  tags:
    kuma.io/service: backend
---
type: Dataplane
mesh: m
name: backend-1
networking:
  address: 10.1.1.2
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
{CLIENT_OF_BACKEND}",
            mtls_mesh("m", "", routing)
        ));
        w.local_zone = "zone-1".into();
        let (snapshot, problems) = generate(&w, "m", "client-1");
        assert!(problems.is_empty(), "{problems:?}");
        snapshot
    };
    let on = fixture("routing:\n  localityAwareLoadBalancing: true\n");
    let backend = on
        .decoded::<ClusterLoadAssignment>(ENDPOINT)
        .into_iter()
        .find(|c| c.cluster_name == "backend")
        .unwrap();
    let tiers: Vec<(u32, String)> = backend
        .endpoints
        .iter()
        .map(|l| (l.priority, format!("{:?}", l.lb_endpoints)))
        .collect();
    assert_eq!(tiers.len(), 2, "{tiers:?}");
    assert!(
        tiers[0].0 == 0 && tiers[0].1.contains("10.1.1.2"),
        "{tiers:?}"
    );
    assert!(
        tiers[1].0 == 1 && tiers[1].1.contains("10.2.2.2"),
        "{tiers:?}"
    );
    check_golden("sidecar_locality", &describe(&on));
    envoy_validate(&on).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));

    let off = fixture("");
    let backend = off
        .decoded::<ClusterLoadAssignment>(ENDPOINT)
        .into_iter()
        .find(|c| c.cluster_name == "backend")
        .unwrap();
    assert_eq!(backend.endpoints.len(), 1);
    assert_eq!(backend.endpoints[0].lb_endpoints.len(), 2);
}

/// A `provided` CA: workload certificates are issued from the operator's CA, read from mesh
/// Secrets, and its key reaches no proxy.
#[test]
fn a_provided_ca_issues_workload_certificates() {
    use base64::Engine;
    let operator = atoll_tls::Authority::generate("Operator CA").unwrap();
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let world = world(&format!(
        "type: Mesh
name: m
mtls:
  enabledBackend: mine
  backends:
  - name: mine
    type: provided
    conf:
      cert:
        secret: operator-ca-cert
      key:
        secret: operator-ca-key
---
type: Secret
mesh: m
name: operator-ca-cert
data: {}
---
type: Secret
mesh: m
name: operator-ca-key
data: {}
---
type: Dataplane
mesh: m
name: web-1
networking:
  address: 10.0.0.2
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
",
        b64(operator.cert_pem()),
        b64(&operator.key_pem()),
    ));
    let built = build(
        &world,
        None,
        &mut Identities::default(),
        &("m".to_string(), "web-1".to_string()),
        Instant::now(),
    )
    .unwrap();
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    assert!(
        built.deps.contains(&atoll_zone::world::Dep::Secret(
            "m".into(),
            "operator-ca-key".into()
        )),
        "a changed key secret recomputes the proxy"
    );
    let secrets = built.snapshot.decoded::<Secret>(SECRET);
    let text = format!("{secrets:?}");
    assert!(text.contains("BEGIN CERTIFICATE"));
    let operator_key = operator.key_pem();
    let key_body = operator_key.lines().nth(1).unwrap();
    assert!(!text.contains(key_body), "the CA key reached the proxy");
    let identity = secrets
        .iter()
        .find_map(|s| match &s.r#type {
            Some(envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type::TlsCertificate(c)) => c.certificate_chain.clone(),
            _ => None,
        })
        .and_then(|d| match d.specifier {
            Some(envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineString(s)) => Some(s),
            _ => None,
        })
        .unwrap();
    // The chain verifies against the operator's CA.
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, leaf_file) = (dir.path().join("ca.pem"), dir.path().join("leaf.pem"));
    std::fs::write(&ca_file, operator.cert_pem()).unwrap();
    std::fs::write(&leaf_file, &identity).unwrap();
    let verified = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca_file)
        .arg(&leaf_file)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Every kind of MeshExternalService endpoint and TLS setting, on a sidecar outbound and a
/// gateway route, with the DNS listener answering the generated hostnames.
#[test]
fn external_services_on_a_sidecar_and_a_gateway() {
    let (client_cert, client_key) = rsa_certificate("client.example");
    let (ca_cert, _) = rsa_certificate("ca.example");
    let indent = |pem: &str| pem.trim_end().replace('\n', "\n          ");
    let world = world(&format!(
        "type: Mesh
name: default
---
type: HostnameGenerator
name: extsvc
spec:
  selector:
    meshExternalService:
      matchLabels:
        kuma.io/origin: global
  template: '{{{{ .DisplayName }}}}.extsvc.mesh.local'
---
type: MeshExternalService
mesh: default
name: tcp-plain
labels:
  kuma.io/origin: global
spec:
  match:
    type: HostnameGenerator
    port: 4242
    protocol: tcp
  endpoints:
  - address: 192.0.2.10
    port: 4242
---
type: MeshExternalService
mesh: default
name: https-dns
labels:
  kuma.io/origin: global
spec:
  match:
    port: 443
    protocol: http
  endpoints:
  - address: api.example.com
    port: 443
  tls:
    enabled: true
    version:
      min: TLS12
      max: TLS13
    verification:
      subjectAltNames:
      - type: Prefix
        value: api.
      caCert:
        inlineString: |
          {ca}
---
type: MeshExternalService
mesh: default
name: grpc-mtls
spec:
  match:
    port: 9000
    protocol: grpc
  endpoints:
  - address: grpc.example.com
    port: 9001
  tls:
    enabled: true
    allowRenegotiation: true
    verification:
      mode: SkipCA
      serverName: grpc.internal
      clientCert:
        secret: grpc-client
      clientKey:
        secret: grpc-client
---
type: MeshExternalService
mesh: default
name: socket
spec:
  match:
    port: 80
    protocol: http2
  endpoints:
  - address: unix:///var/run/app.sock
---
type: MeshExternalService
mesh: default
name: system-ca
spec:
  match:
    port: 443
    protocol: tcp
  endpoints:
  - address: 192.0.2.20
    port: 443
  tls:
    enabled: true
    verification:
      mode: SkipSAN
---
type: MeshExternalService
mesh: default
name: skip-all
spec:
  match:
    port: 443
    protocol: tcp
  endpoints:
  - address: 192.0.2.30
    port: 443
  tls:
    enabled: true
    verification:
      mode: SkipAll
{secret}---
type: Dataplane
mesh: default
name: app-1
networking:
  address: 10.0.0.9
  inbound:
  - port: 8080
    tags:
      kuma.io/service: app
  outbound:
  - port: 10001
    backendRef: {{kind: MeshExternalService, name: tcp-plain}}
  - port: 10002
    backendRef: {{kind: MeshExternalService, name: https-dns}}
  - port: 10003
    backendRef: {{kind: MeshExternalService, name: grpc-mtls}}
  - port: 10004
    backendRef: {{kind: MeshExternalService, name: socket}}
  - port: 10005
    backendRef: {{kind: MeshExternalService, name: system-ca}}
  - port: 10006
    backendRef: {{kind: MeshExternalService, name: skip-all}}
",
        ca = indent(&ca_cert),
        secret = pem_secret("default", "grpc-client", &client_cert, &client_key),
    ));
    let meta = ProxyMeta {
        dns_port: Some(15054),
        system_ca_path: Some("/etc/ssl/certs/ca-certificates.crt".into()),
        ..Default::default()
    };
    let (snapshot, problems) = generate_with(&world, Some(&meta), "default", "app-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    assert!(
        !text.contains("BEGIN PRIVATE KEY"),
        "key material only over SDS"
    );
    for name in [
        "mes_ca:default:https-dns",
        "mes_client:default:grpc-mtls",
        "system_ca",
    ] {
        assert!(text.contains(&format!("=== Secret {name}")), "{name}");
    }
    let listeners = snapshot.decoded::<Listener>(LISTENER);
    let dns = listeners
        .iter()
        .find(|l| l.name == atoll_zone::xds::dns::LISTENER)
        .expect("a DNS listener");
    let dns_config = dns.listener_filters[0]
        .config_type
        .as_ref()
        .map(|c| match c {
            envoy_types::pb::envoy::config::listener::v3::listener_filter::ConfigType::TypedConfig(any) => {
                envoy_types::pb::envoy::extensions::filters::udp::dns_filter::v3::DnsFilterConfig::decode(any.value.as_slice()).unwrap()
            }
            _ => panic!("typed config"),
        })
        .unwrap();
    let dns_text = format!("{dns_config:#?}");
    assert!(
        dns_text.contains("tcp-plain.extsvc.mesh.local"),
        "{dns_text}"
    );
    assert!(dns_text.contains("https-dns.extsvc.mesh.local"));
    assert!(
        !dns_text.contains("grpc-mtls.extsvc"),
        "not selected by the generator"
    );
    assert!(
        dns_text.contains("\"242."),
        "answers with a VIP from 242.0.0.0/8"
    );
    check_golden(
        "sidecar_external_services",
        &redact_pem(&format!("{text}=== DNS table\n{dns_text}\n")),
    );
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));

    // A gateway route whose backend is a MeshExternalService reaches the same cluster.
    let mut with_gateway = world.clone();
    for doc in atoll_model::parse_documents(&format!(
        "{GATEWAY_DP}---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
---
type: MeshHTTPRoute
mesh: default
name: to-api
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
          value: /
      default:
        backendRefs:
        - kind: MeshExternalService
          name: https-dns
"
    )) {
        let r = doc.outcome.expect("valid gateway fixture");
        let meta = r.meta.clone();
        with_gateway.apply(r.kind(), meta.mesh.as_deref(), &meta.name, Some(&r));
    }
    let (gateway, problems) = generate(&with_gateway, "default", "edge-1");
    assert!(problems.is_empty(), "{problems:?}");
    let gateway_text = describe(&gateway);
    assert!(gateway_text.contains("=== Cluster meshexternalservice_https-dns"));
    let listeners_text = gateway_text.split("=== Cluster").next().unwrap_or_default();
    assert!(
        listeners_text.contains("\"meshexternalservice_https-dns\""),
        "the route sends to the external cluster:\n{listeners_text}"
    );
    envoy_validate(&gateway).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));

    // The Mesh switch: no cluster, no listener, and a problem saying why.
    let mut forbidding = world.clone();
    let mut mesh = forbidding.meshes["default"].clone();
    mesh.routing = Some(atoll_model::types::MeshRouting {
        default_forbid_mesh_external_service_access: true,
        ..Default::default()
    });
    forbidding.meshes.insert("default".into(), mesh);
    let (snapshot, problems) = generate(&forbidding, "default", "app-1");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("forbids traffic to external services")),
        "{problems:?}"
    );
    let clusters = snapshot.decoded::<Cluster>(CLUSTER);
    assert!(
        !clusters
            .iter()
            .any(|c| c.name.starts_with("meshexternalservice_")),
        "no external cluster when the mesh forbids them"
    );
    assert!(
        !snapshot
            .decoded::<Listener>(LISTENER)
            .iter()
            .any(|l| l.name.starts_with("outbound:")),
        "no outbound listener either"
    );
}

/// `backendRef.port` on an outbound reaches only the instances serving that port.
#[test]
fn an_outbound_backend_ref_port_keeps_only_that_port() {
    let world = world(
        "type: Mesh
name: default
---
type: Dataplane
mesh: default
name: cache-1
networking:
  address: 10.0.0.7
  inbound:
  - port: 6379
    tags:
      kuma.io/service: cache
  - port: 6380
    tags:
      kuma.io/service: cache
---
type: Dataplane
mesh: default
name: app-1
networking:
  address: 10.0.0.8
  inbound:
  - port: 8080
    tags:
      kuma.io/service: app
  outbound:
  - port: 10001
    backendRef:
      kind: MeshService
      name: cache
      port: 6380
",
    );
    let (snapshot, problems) = generate(&world, "default", "app-1");
    assert!(problems.is_empty(), "{problems:?}");
    let endpoints = snapshot.decoded::<ClusterLoadAssignment>(ENDPOINT);
    let cache = endpoints
        .iter()
        .find(|e| e.cluster_name == "cache_6380")
        .expect("a cluster for the port");
    let text = format!("{cache:?}");
    assert!(
        text.contains("PortValue(6380)") && !text.contains("PortValue(6379)"),
        "{text}"
    );
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

const POLICIES: &str = "
---
type: MeshTrafficPermission
mesh: secure
name: allow-all
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Allow
---
type: MeshTrafficPermission
mesh: secure
name: no-cache-for-client
spec:
  targetRef:
    kind: MeshService
    name: client
  from:
  - targetRef:
      kind: MeshService
      name: cache
    default:
      action: Deny
---
type: MeshTimeout
mesh: secure
name: timeouts
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionTimeout: 2s
      idleTimeout: 30s
      http:
        requestTimeout: 3s
        streamIdleTimeout: 10s
  - targetRef:
      kind: MeshService
      name: echo
    default:
      http:
        requestTimeout: 750ms
  from:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 1m
---
type: MeshRetry
mesh: secure
name: retries
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: echo
    default:
      http:
        numRetries: 3
        perTryTimeout: 250ms
        backOff:
          baseInterval: 10ms
          maxInterval: 100ms
        retryOn: [5xx, \"503\"]
  - targetRef:
      kind: MeshService
      name: cache
    default:
      tcp:
        maxConnectAttempt: 4
";

/// The mTLS sidecar of `sidecar_with_mesh_mtls` with permissions, timeouts and retries.
#[test]
fn sidecar_policies_permission_timeout_retry() {
    let ca = atoll_tls::Authority::generate("mesh secure").unwrap();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(ca.to_bundle());
    let base = format!(
        "type: Mesh
name: secure
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
---
type: Secret
mesh: secure
name: ca-builtin-ca-1
data: {data}
---
type: Dataplane
mesh: secure
name: client-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: client
      kuma.io/protocol: http
  outbound:
  - port: 10001
    tags:
      kuma.io/service: echo
  - port: 10002
    tags:
      kuma.io/service: cache
---
type: Dataplane
mesh: secure
name: echo-1
networking:
  address: 10.0.0.6
  inbound:
  - port: 8080
    tags:
      kuma.io/service: echo
      kuma.io/protocol: http
---
type: Dataplane
mesh: secure
name: cache-1
networking:
  address: 10.0.0.7
  inbound:
  - port: 6379
    tags:
      kuma.io/service: cache
"
    );
    let world = world(&format!("{base}{POLICIES}"));
    let (snapshot, problems) = generate(&world, "secure", "client-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    for expected in [
        "envoy.filters.http.rbac",
        "spiffe://secure/cache",
        "num_retries",
        "retriable_status_codes: [\n",
        "max_connect_attempts",
    ] {
        assert!(text.contains(expected), "{expected} missing");
    }
    check_golden("sidecar_policies", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

const LIMITS: &str = "
type: Mesh
name: default
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: web
      kuma.io/protocol: http
  - port: 6379
    servicePort: 6380
    tags:
      kuma.io/service: web-cache
      kuma.io/protocol: tcp
  outbound:
  - port: 10001
    tags:
      kuma.io/service: echo
  - port: 10002
    tags:
      kuma.io/service: cache
---
type: Dataplane
mesh: default
name: echo-1
networking:
  address: 10.0.0.6
  inbound:
  - port: 8080
    tags:
      kuma.io/service: echo
      kuma.io/protocol: http
---
type: Dataplane
mesh: default
name: cache-1
networking:
  address: 10.0.0.7
  inbound:
  - port: 6379
    tags:
      kuma.io/service: cache
---
type: MeshRateLimit
mesh: default
name: limits
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
            interval: 1m
          onRateLimit:
            status: 423
            headers:
              set:
              - name: x-kuma-rate-limited
                value: 'true'
              add:
              - name: x-limit
                value: five
        tcp:
          connectionRate:
            num: 2
            interval: 10s
---
type: MeshFaultInjection
mesh: default
name: faults
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      http:
      - abort:
          httpStatus: 503
          percentage: '2.5'
        delay:
          value: 1s
          percentage: 50
        responseBandwidth:
          limit: 50Mbps
          percentage: 100
      - abort:
          httpStatus: 500
          percentage: 10
---
type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - file:
          path: /tmp/atoll-inbound.log
  to:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - file:
          path: /tmp/atoll-outbound.log
          format:
            type: Plain
            plain: '%KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% %RESPONSE_CODE%'
  - targetRef:
      kind: MeshService
      name: cache
    default:
      backends:
      - file:
          path: /tmp/atoll-cache.json
          format:
            type: Json
            omitEmptyValues: true
            json:
            - key: mesh
              value: '%KUMA_MESH%'
            - key: bytes
              value: '%BYTES_SENT%'
";

/// Rate limits, faults and access logs on a sidecar with an HTTP and a TCP inbound.
#[test]
fn sidecar_policies_limits_faults_logs() {
    let world = world(LIMITS);
    let (snapshot, problems) = generate(&world, "default", "web-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    for expected in [
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.network.local_ratelimit",
        "max_tokens: 2",
        "envoy.filters.http.fault",
        "envoy.access_loggers.file",
    ] {
        assert!(text.contains(expected), "{expected} missing");
    }
    // Two fault entries become two filters, in order, and the router stays last.
    let listeners = snapshot.decoded::<Listener>(LISTENER);
    let web = listeners
        .iter()
        .find(|l| l.name == "inbound:10.0.0.5:8080")
        .expect("the HTTP inbound");
    let hcm = web.filter_chains[0]
        .filters
        .iter()
        .find_map(|f| match &f.config_type {
            Some(filter::ConfigType::TypedConfig(any))
                if f.name.ends_with("http_connection_manager") =>
            {
                HttpConnectionManager::decode(any.value.as_slice()).ok()
            }
            _ => None,
        })
        .expect("an HTTP connection manager");
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.fault",
            "envoy.filters.http.fault",
            "envoy.filters.http.local_ratelimit",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(hcm.access_log.len(), 1);
    check_golden("sidecar_limits", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// A policy that targets nothing a proxy has (another service, a destination it does not
/// call) leaves that proxy's configuration exactly as it was.
#[test]
fn a_policy_for_others_changes_nothing() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 48,
        ..Default::default()
    });
    let base = world(&format!("type: Mesh\nname: default\n{SERVICES}"));
    let before = generate(&base, "default", "web-1").0.fingerprint();
    let kinds = prop_oneof![
        Just("MeshTimeout"),
        Just("MeshRetry"),
        Just("MeshTrafficPermission"),
        Just("MeshCircuitBreaker"),
        Just("MeshHealthCheck"),
        Just("MeshRateLimit"),
        Just("MeshFaultInjection"),
        Just("MeshAccessLog"),
        Just("MeshLoadBalancingStrategy")
    ];
    runner
        .run(&(kinds, "[a-z]{1,8}", any::<bool>()), |(kind, name, top_level)| {
            // Either it selects other proxies, or it selects this one but only for a
            // destination this proxy has no outbound to.
            // A permission for this proxy would change its RBAC even for an unknown caller.
            // So would an inbound-only policy (rate limits, faults) for this proxy.
            let inbound_only = matches!(
                kind,
                "MeshTrafficPermission" | "MeshRateLimit" | "MeshFaultInjection"
            );
            let target = if top_level || inbound_only {
                format!("kind: MeshService\n    name: other-{name}")
            } else {
                "kind: Mesh".to_string()
            };
            let section = match kind {
                "MeshTrafficPermission" => format!(
                    "from:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      action: Deny"
                ),
                "MeshRateLimit" => "from:\n  - targetRef:\n      kind: Mesh\n    default:\n      local:\n        http:\n          requestRate:\n            num: 1\n            interval: 1s".to_string(),
                "MeshFaultInjection" => "from:\n  - targetRef:\n      kind: Mesh\n    default:\n      http:\n      - abort:\n          httpStatus: 500\n          percentage: 100".to_string(),
                "MeshAccessLog" => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      backends:\n      - file:\n          path: /tmp/x.log"
                ),
                "MeshRetry" => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      tcp:\n        maxConnectAttempt: 2"
                ),
                "MeshCircuitBreaker" => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      connectionLimits:\n        maxConnections: 1"
                ),
                "MeshLoadBalancingStrategy" => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      loadBalancer:\n        type: Random"
                ),
                "MeshHealthCheck" => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      tcp: {{}}\n      http: {{}}"
                ),
                _ => format!(
                    "to:\n  - targetRef:\n      kind: MeshService\n      name: x-{name}\n    default:\n      idleTimeout: 1s"
                ),
            };
            let yaml = format!(
                "type: {kind}\nmesh: default\nname: p-{name}\nspec:\n  targetRef:\n    {target}\n  {section}\n"
            );
            let mut changed = base.clone();
            let doc = atoll_model::parse_documents(&yaml).remove(0);
            let resource = doc.outcome.map_err(|e| TestCaseError::fail(format!("{e:?}\n{yaml}")))?;
            changed.apply(resource.kind(), Some("default"), &format!("p-{name}"), Some(&resource));
            prop_assert_eq!(generate(&changed, "default", "web-1").0.fingerprint(), before.clone());
            Ok(())
        })
        .unwrap();
}

const RESILIENCE: &str = "
---
type: MeshCircuitBreaker
mesh: secure
name: breakers
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionLimits:
        maxConnections: 100
  - targetRef:
      kind: MeshService
      name: echo
    default:
      connectionLimits:
        maxConnections: 2
        maxConnectionPools: 3
        maxPendingRequests: 4
        maxRetries: 5
        maxRequests: 6
      outlierDetection:
        interval: 5s
        baseEjectionTime: 30s
        maxEjectionPercent: 20
        splitExternalAndLocalErrors: true
        detectors:
          totalFailures:
            consecutive: 10
          gatewayFailures:
            consecutive: 7
          localOriginFailures:
            consecutive: 3
          successRate:
            minimumHosts: 5
            requestVolume: 10
            standardDeviationFactor: \"1.9\"
          failurePercentage:
            requestVolume: 10
            minimumHosts: 5
            threshold: 85
---
type: MeshHealthCheck
mesh: secure
name: checks
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
  - targetRef:
      kind: MeshService
      name: echo
    default:
      interval: 10s
      timeout: 2s
      unhealthyThreshold: 3
      healthyThreshold: 2
      initialJitter: 1s
      intervalJitter: 500ms
      intervalJitterPercent: 10
      healthyPanicThreshold: \"62.5\"
      failTrafficOnPanic: true
      noTrafficInterval: 20s
      eventLogPath: /tmp/echo-health.log
      alwaysLogHealthCheckFailures: true
      reuseConnection: false
      http:
        path: /health
        expectedStatuses: [200, 204]
        requestHeadersToAdd:
          set:
          - name: x-check
            value: atoll
          add:
          - name: x-more
            value: a,b
      tcp:
        send: ping
  - targetRef:
      kind: MeshService
      name: cache
    default:
      interval: 5s
      tcp:
        send: PING
        receive: [PONG]
  - targetRef:
      kind: MeshService
      name: api
    default:
      tcp: {}
---
type: MeshHTTPRoute
mesh: secure
name: echo-v2
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: echo
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: echo
          tags:
            version: v2
";

/// MeshCircuitBreaker and MeshHealthCheck on an mTLS sidecar's clusters: the echo
/// destination gets every field of both, and so does the cluster of its subset that a route
/// sends to; the TCP destination a TCP check with payloads; an HTTP destination whose policy
/// has only `tcp` gets no check (Kuma's rule) and a problem saying so. Only clusters change,
/// so only clusters are in the golden file.
#[test]
fn sidecar_policies_circuit_breaker_health_check() {
    let rest = "---
type: Dataplane
mesh: secure
name: client-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    servicePort: 80
    tags:
      kuma.io/service: client
      kuma.io/protocol: http
  outbound:
  - port: 10001
    tags:
      kuma.io/service: echo
  - port: 10002
    tags:
      kuma.io/service: cache
  - port: 10003
    tags:
      kuma.io/service: api
---
type: Dataplane
mesh: secure
name: echo-1
networking:
  address: 10.0.0.6
  inbound:
  - port: 8080
    tags:
      kuma.io/service: echo
      kuma.io/protocol: http
      version: v2
---
type: Dataplane
mesh: secure
name: cache-1
networking:
  address: 10.0.0.7
  inbound:
  - port: 6379
    tags:
      kuma.io/service: cache
---
type: Dataplane
mesh: secure
name: api-1
networking:
  address: 10.0.0.8
  inbound:
  - port: 8080
    tags:
      kuma.io/service: api
      kuma.io/protocol: http
";
    let world = world(&format!("{}{RESILIENCE}", mtls_mesh("secure", "", rest)));
    let (snapshot, problems) = generate(&world, "secure", "client-1");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("MeshHealthCheck for api") && problems[0].contains("protocol http"),
        "{problems:?}"
    );
    let clusters = snapshot.decoded::<Cluster>(CLUSTER);
    let named = |name: &str| {
        clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no cluster {name}"))
    };
    for echo in [named("echo"), named("echo[version=v2]")] {
        let limits = echo.circuit_breakers.as_ref().unwrap().thresholds[0];
        assert_eq!(limits.max_connections.unwrap().value, 2, "{}", echo.name);
        assert!(echo.outlier_detection.is_some(), "{}", echo.name);
        assert_eq!(echo.health_checks.len(), 1, "{}", echo.name);
        // The check travels like the traffic: over the cluster's mesh mTLS.
        assert!(echo.transport_socket.is_some());
    }
    let cache = named("cache");
    assert_eq!(
        cache.circuit_breakers.as_ref().unwrap().thresholds[0]
            .max_connections
            .unwrap()
            .value,
        100
    );
    assert!(cache.outlier_detection.is_none());
    assert!(format!("{:?}", cache.health_checks).contains("TcpHealthCheck"));
    assert!(named("api").health_checks.is_empty());
    let text: String = clusters
        .iter()
        .map(|c| format!("=== Cluster {}\n{}\n", c.name, describe_cluster(c)))
        .collect();
    for expected in [
        "track_remaining: true",
        "success_rate_stdev_factor",
        "path: \"/health\"",
        "Text(\n",
        "event_log_path: \"/tmp/echo-health.log\"",
        "fail_traffic_on_panic: true",
    ] {
        assert!(text.contains(expected), "{expected} missing");
    }
    check_golden("sidecar_circuit_breaker_health_check", &redact_pem(&text));
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// A policy changed in place reaches the cluster, and one deleted leaves it as before.
#[test]
fn circuit_breaker_and_health_check_follow_changes() {
    let client = "---
type: Dataplane
mesh: default
name: client-1
networking:
  address: 10.0.0.5
  inbound:
  - port: 8080
    tags:
      kuma.io/service: client
  outbound:
  - port: 10001
    tags:
      kuma.io/service: api
  - port: 10002
    tags:
      kuma.io/service: db
";
    let base = world(&format!("type: Mesh\nname: default\n{SERVICES}{client}"));
    let before = generate(&base, "default", "client-1").0;
    let mut world = base.clone();
    let apply = |world: &mut World, yaml: &str| {
        let resource = atoll_model::parse_documents(yaml)
            .remove(0)
            .outcome
            .unwrap_or_else(|e| panic!("{e:?}"));
        let name = resource.meta.name.clone();
        world.apply(resource.kind(), Some("default"), &name, Some(&resource));
    };
    let breaker = |max: u32| {
        format!(
            "type: MeshCircuitBreaker\nmesh: default\nname: b\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n  - targetRef:\n      kind: Mesh\n    default:\n      connectionLimits:\n        maxConnections: {max}\n"
        )
    };
    let max_connections = |world: &World| {
        generate(world, "default", "client-1")
            .0
            .decoded::<Cluster>(CLUSTER)
            .iter()
            .filter_map(|c| c.circuit_breakers.as_ref())
            .map(|b| b.thresholds[0].max_connections.unwrap().value)
            .collect::<Vec<_>>()
    };
    apply(&mut world, &breaker(7));
    assert_eq!(max_connections(&world), [7, 7], "api and db");
    apply(&mut world, &breaker(9));
    assert_eq!(max_connections(&world), [9, 9]);
    world.apply(
        atoll_model::Kind::MeshCircuitBreaker,
        Some("default"),
        "b",
        None,
    );
    assert_eq!(
        generate(&world, "default", "client-1").0.fingerprint(),
        before.fingerprint()
    );
}

/// A gateway with two routes to one backend: a MeshTimeout on one MeshHTTPRoute sets that
/// route's timeout only; a MeshRetry on the gateway's `internal` listener (by tags) retries on
/// that listener's routes only.
#[test]
fn gateway_policies_per_route_and_per_listener() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
  - port: 9090
    protocol: HTTP
    tags:
      listener: internal
---
type: MeshHTTPRoute
mesh: default
name: fast-enough
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
          value: /patient
      default:
        backendRefs:
        - kind: MeshService
          name: api
---
type: MeshHTTPRoute
mesh: default
name: impatient
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
          value: /impatient
      default:
        backendRefs:
        - kind: MeshService
          name: api
---
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
---
type: MeshRetry
mesh: default
name: internal-retries
spec:
  targetRef:
    kind: MeshGateway
    name: edge
    tags:
      listener: internal
  to:
  - targetRef:
      kind: Mesh
    default:
      http:
        numRetries: 4
{SERVICES}{GATEWAY_DP}"
    ));
    let (snapshot, problems) = generate(&world, "default", "edge-1");
    assert!(problems.is_empty(), "{problems:?}");
    let text = describe(&snapshot);
    // Two listeners with two routes each; one timeout per listener (the impatient route) and
    // two retry policies (the internal listener's routes).
    assert_eq!(text.matches("nanos: 500000000").count(), 2, "{text}");
    assert_eq!(text.matches("num_retries").count(), 2, "{text}");
    check_golden("gateway_policies", &text);
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// MeshLoadBalancingStrategy: affinity-weighted localities in this zone, other zones in
/// failover order behind it, a ring-hash balancer and its hash policies on the outbound's
/// route. Envoy validates the cluster with its endpoints inlined.
#[test]
fn load_balancing_strategy_tiers_zones_and_hashes() {
    let ingress = |zone: &str, ip: &str| {
        format!(
            "---
type: ZoneIngress
name: {zone}.ingress
zone: {zone}
networking:
  address: {ip}
  port: 10001
availableServices:
- mesh: m
  instances: 2
  tags:
    kuma.io/service: backend
"
        )
    };
    let backend = |name: &str, ip: &str, node: &str| {
        format!(
            "---
type: Dataplane
mesh: m
name: {name}
networking:
  address: {ip}
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
      node: {node}
"
        )
    };
    let mut w = world(&format!(
        "{}{}{}{}{}---
type: Dataplane
mesh: m
name: client-1
networking:
  address: 10.1.1.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: client
      node: n1
  outbound:
  - port: 10080
    tags:
      kuma.io/service: backend
---
type: MeshLoadBalancingStrategy
mesh: m
name: backend-lb
spec:
  targetRef:
    kind: MeshService
    name: client
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      localityAwareness:
        localZone:
          affinityTags:
          - key: node
        crossZone:
          failover:
          - to:
              type: Only
              zones: [zone-3]
          - to:
              type: Any
          failoverThreshold:
            percentage: 70
      loadBalancer:
        type: RingHash
        ringHash:
          hashFunction: MurmurHash2
          minRingSize: 64
          maxRingSize: 1024
          hashPolicies:
          - type: Header
            header:
              name: x-user
          - type: Cookie
            cookie:
              name: session
              ttl: 1h
              path: /
            terminal: true
",
        mtls_mesh("m", "", ""),
        ingress("zone-2", "10.2.2.2"),
        ingress("zone-3", "10.3.3.3"),
        backend("backend-1", "10.1.1.2", "n1"),
        backend("backend-2", "10.1.1.3", "n2"),
    ));
    w.local_zone = "zone-1".into();
    let (snapshot, problems) = generate(&w, "m", "client-1");
    assert!(problems.is_empty(), "{problems:?}");
    let assignment = snapshot
        .decoded::<ClusterLoadAssignment>(ENDPOINT)
        .into_iter()
        .find(|c| c.cluster_name == "backend")
        .unwrap();
    let tiers: Vec<(u32, String, Option<u32>, Vec<String>)> = assignment
        .endpoints
        .iter()
        .map(|l| {
            let locality = l.locality.clone().unwrap_or_default();
            (
                l.priority,
                format!("{}/{}", locality.zone, locality.sub_zone),
                l.load_balancing_weight.map(|w| w.value),
                l.lb_endpoints
                    .iter()
                    .map(|e| {
                        format!("{:?}", e.host_identifier)
                            .split('"')
                            .nth(1)
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        tiers,
        vec![
            (0, "zone-1/node=n1".into(), Some(9), vec!["10.1.1.2".into()]),
            (0, "zone-1/other".into(), Some(1), vec!["10.1.1.3".into()]),
            (1, "zone-3/".into(), Some(2), vec!["10.3.3.3".into()]),
            (2, "zone-2/".into(), Some(2), vec!["10.2.2.2".into()]),
        ]
    );
    assert_eq!(
        assignment
            .policy
            .as_ref()
            .and_then(|p| p.overprovisioning_factor)
            .map(|f| f.value),
        Some(143),
        "a 70% threshold"
    );
    let text = describe(&snapshot);
    for expected in [
        "RingHash",
        "MurmurHash2",
        "LocalityWeightedLbConfig",
        "x-user",
        "session",
    ] {
        assert!(text.contains(expected), "{expected} missing");
    }
    check_golden("sidecar_load_balancing", &text);
    // Envoy checks the endpoints too when they are inlined in a static cluster.
    let mut inlined = snapshot.clone();
    inlined.update::<Cluster>(CLUSTER, "backend", |c| {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        ));
        c.eds_cluster_config = None;
        c.transport_socket = None;
        c.load_assignment = Some(assignment.clone());
    });
    envoy_validate(&inlined).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// MeshLoadBalancingStrategy on a built-in gateway: one naming the gateway balances the
/// clusters its routes send to and hashes those routes; one naming another gateway does not.
#[test]
fn load_balancing_strategy_on_a_gateway() {
    let strategy = |name: &str, gateway: &str, lb: &str| {
        format!(
            "---
type: MeshLoadBalancingStrategy
mesh: default
name: {name}
spec:
  targetRef:
    kind: MeshGateway
    name: {gateway}
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      loadBalancer:
        {lb}
"
        )
    };
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshGateway
mesh: default
name: edge
selectors:
- match:
    kuma.io/service: edge
conf:
  listeners:
  - port: 8080
    protocol: HTTP
---
type: MeshHTTPRoute
mesh: default
name: to-api
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
          value: /
      default:
        backendRefs:
        - kind: MeshService
          name: api
{}{}{SERVICES}{GATEWAY_DP}",
        strategy(
            "edge-maglev",
            "edge",
            "type: Maglev\n        maglev:\n          tableSize: 65537\n          hashPolicies:\n          - type: QueryParameter\n            queryParameter:\n              name: user"
        ),
        strategy("other-gateway", "internal", "type: Random"),
    ));
    let (snapshot, problems) = generate(&world, "default", "edge-1");
    assert!(problems.is_empty(), "{problems:?}");
    let api = snapshot
        .decoded::<Cluster>(CLUSTER)
        .into_iter()
        .find(|c| c.name.starts_with("api"))
        .expect("the api cluster");
    assert_eq!(api.lb_policy, cluster::LbPolicy::Maglev as i32);
    let text = describe(&snapshot);
    assert!(text.contains("QueryParameter"), "{text}");
    assert!(
        !text.contains("Random"),
        "the other gateway's strategy applied: {text}"
    );
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// A MeshAccessLog TCP backend goes through `atoll-dp`'s pipe, as a JSON record naming the
/// backend; a proxy that announced no pipe gets the file backends only and says why.
#[test]
fn tcp_access_log_backends_go_through_the_relay_pipe() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      backends:
      - tcp:
          address: logstash.internal:5000
      - file:
          path: /tmp/in.log
{SERVICES}"
    ));
    let (snapshot, problems) = generate(&world, "default", "web-1");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("not started by atoll-dp"),
        "{problems:?}"
    );
    let paths = |snapshot: &Snapshot| -> Vec<(String, String)> {
        snapshot
            .decoded::<Listener>(LISTENER)
            .iter()
            .filter(|l| l.name.starts_with("inbound:"))
            .flat_map(|l| l.filter_chains.iter().flat_map(|c| c.filters.clone()))
            .filter_map(|f| match f.config_type {
                Some(filter::ConfigType::TypedConfig(any)) => {
                    HttpConnectionManager::decode(any.value.as_slice()).ok()
                }
                _ => None,
            })
            .flat_map(|hcm| hcm.access_log)
            .filter_map(|log| match log.config_type {
                Some(envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType::TypedConfig(any)) => {
                    let file = envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog::decode(any.value.as_slice()).ok()?;
                    Some((file.path.clone(), format!("{:?}", file.access_log_format)))
                }
                _ => None,
            })
            .collect()
    };
    let logs = paths(&snapshot);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].0, "/tmp/in.log");

    // Envoy opens the path when it validates: a directory that exists.
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("access-logs-web-1.pipe");
    let meta = ProxyMeta {
        access_log_pipe: Some(pipe.display().to_string()),
        ..Default::default()
    };
    let (snapshot, problems) = generate_with(&world, Some(&meta), "default", "web-1");
    assert!(problems.is_empty(), "{problems:?}");
    let logs = paths(&snapshot);
    assert_eq!(logs.len(), 2, "{logs:?}");
    let (path, format) = &logs[0];
    assert_eq!(path, &pipe.display().to_string());
    assert!(
        format.contains("@atoll.address") && format.contains("logstash.internal:5000"),
        "{format}"
    );
    assert!(
        format.contains("@atoll.line") && !format.contains("%KUMA_MESH%"),
        "the default plain format as one field, placeholders filled: {format}"
    );
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}

/// MeshHealthCheck's `failTrafficOnPanic` lives in zone-aware balancing settings, which
/// affinity tags replace with locality weights: the proxy says so instead of dropping it
/// silently.
#[test]
fn affinity_tags_over_fail_traffic_on_panic_are_reported() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshHealthCheck
mesh: default
name: panic
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      failTrafficOnPanic: true
      http: {{}}
---
type: MeshLoadBalancingStrategy
mesh: default
name: affinity
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: api
    default:
      localityAwareness:
        localZone:
          affinityTags:
          - key: rack
{SERVICES}---
type: Dataplane
mesh: default
name: caller-1
networking:
  address: 10.0.0.9
  inbound:
  - port: 8080
    tags:
      kuma.io/service: caller
  outbound:
  - port: 10080
    tags:
      kuma.io/service: api
"
    ));
    let (_, problems) = generate(&world, "default", "caller-1");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("failTrafficOnPanic"), "{problems:?}");
}

/// MeshMetric's Prometheus endpoint: a listener on the Dataplane's address whose one route
/// goes to Envoy's own statistics on its admin port; Envoy accepts it.
#[test]
fn mesh_metric_endpoint_serves_envoy_statistics() {
    let world = world(&format!(
        "type: Mesh
name: default
---
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef:
    kind: MeshService
    name: web
  default:
    backends:
    - type: Prometheus
      prometheus:
        port: 5670
        path: /custom
{SERVICES}"
    ));
    let (snapshot, problems) = generate(&world, "default", "web-1");
    assert!(problems.is_empty(), "{problems:?}");
    let listener = snapshot
        .decoded::<Listener>(LISTENER)
        .into_iter()
        .find(|l| l.name == "prometheus:10.0.0.2:5670")
        .expect("the metrics listener");
    let text = describe_listener(&listener);
    assert!(
        text.contains("/custom") && text.contains("/stats/prometheus?usedonly"),
        "{text}"
    );
    assert!(text.contains("atoll:admin"), "{text}");
    let admin = snapshot
        .decoded::<Cluster>(CLUSTER)
        .into_iter()
        .find(|c| c.name == "atoll:admin")
        .expect("the admin cluster");
    assert!(format!("{admin:?}").contains("9901"));
    // Another service's proxy gets no endpoint.
    let (other, _) = generate(&world, "default", "api-1");
    assert!(
        other
            .decoded::<Listener>(LISTENER)
            .iter()
            .all(|l| !l.name.starts_with("prometheus:"))
    );
    envoy_validate(&snapshot).unwrap_or_else(|log| panic!("envoy rejected it:\n{log}"));
}
