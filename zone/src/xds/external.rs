//! A MeshExternalService as Envoy sees it: a cluster of its endpoints (IP addresses as
//! static endpoints, DNS names resolved by Envoy and re-resolved on their TTL, unix sockets
//! as pipes), speaking its protocol upstream, with TLS originated as `spec.tls` says. CA and
//! client certificates travel as SDS secrets, never inline in the cluster.

use std::net::IpAddr;

use atoll_model::types::{
    MesEndpoint, MesProtocol, MeshExternalServiceSpec, SanMatchType, TlsVersion,
    UNIX_SOCKET_PREFIX, VerificationMode,
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, DataSource, Pipe, TransportSocket, address, data_source, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::clusters::common::dns::v3::DnsLookupFamily;
use envoy_types::pb::envoy::extensions::clusters::dns::v3::DnsCluster;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, Secret, SubjectAltNameMatcher, TlsCertificate,
    TlsParameters, UpstreamTlsContext, certificate_validation_context, common_tls_context, secret,
    subject_alt_name_matcher, tls_parameters,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::Duration;
use envoy_types::util::pack_any;

use super::clusters;
use super::sidecar::Protocol;

/// The Envoy cluster of a MeshExternalService: prefixed so it can never collide with a mesh
/// service of the same name.
pub fn cluster_name(name: &str) -> String {
    format!("meshexternalservice_{name}")
}

/// SDS name of the CA a MeshExternalService's server is verified against.
pub fn ca_secret_name(mesh: &str, name: &str) -> String {
    format!("mes_ca:{mesh}:{name}")
}

/// SDS name of the client certificate presented to a MeshExternalService.
pub fn client_secret_name(mesh: &str, name: &str) -> String {
    format!("mes_client:{mesh}:{name}")
}

/// SDS name of the data plane host's system CA bundle (a file on that host).
pub const SYSTEM_CA_SECRET: &str = "system_ca";

/// The secret pointing Envoy at the host's system CA bundle.
pub fn system_ca_secret(path: &str) -> Secret {
    super::tls::ca_secret(
        SYSTEM_CA_SECRET,
        Some(DataSource {
            specifier: Some(data_source::Specifier::Filename(path.to_string())),
            ..Default::default()
        }),
    )
}

fn inline(pem: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(pem.to_string())),
        ..Default::default()
    }
}

/// The application protocol of a MeshExternalService, for its outbound listener.
pub fn protocol(spec: &MeshExternalServiceSpec) -> Protocol {
    match spec.match_.as_ref().map(|m| &m.protocol) {
        Some(MesProtocol::Http | MesProtocol::Http2 | MesProtocol::Grpc) => Protocol::Http,
        _ => Protocol::Tcp,
    }
}

/// Whether the service speaks HTTP/2 (http2, grpc).
pub fn speaks_http2(spec: &MeshExternalServiceSpec) -> bool {
    matches!(
        spec.match_.as_ref().map(|m| &m.protocol),
        Some(MesProtocol::Http2 | MesProtocol::Grpc)
    )
}

/// Key material resolved by the caller (from Secrets, inline values or files).
#[derive(Debug, Default)]
pub struct TlsMaterial {
    /// PEM CA bundle from `verification.caCert`.
    pub ca: Option<String>,
    /// PEM chain and key from `verification.clientCert` / `clientKey`.
    pub client: Option<(String, String)>,
}

pub struct ExternalInput<'a> {
    pub mesh: &'a str,
    pub name: &'a str,
    /// The Envoy cluster to create.
    pub cluster: &'a str,
    pub spec: &'a MeshExternalServiceSpec,
    pub material: TlsMaterial,
    /// Whether the proxy told where its host's system CA is.
    pub system_ca: bool,
}

#[derive(Debug, Default)]
pub struct ExternalOutput {
    pub cluster: Option<Cluster>,
    pub secrets: Vec<Secret>,
    /// The cluster refers to [`SYSTEM_CA_SECRET`], which the caller must add.
    pub uses_system_ca: bool,
    pub problems: Vec<String>,
}

/// Where an endpoint is.
enum Target<'a> {
    Ip(IpAddr, u32),
    Dns(&'a str, u32),
    Unix(&'a str),
}

fn target(endpoint: &MesEndpoint) -> Option<Target<'_>> {
    if let Some(path) = endpoint.address.strip_prefix(UNIX_SOCKET_PREFIX) {
        return Some(Target::Unix(path));
    }
    let port = endpoint.port?;
    Some(match endpoint.address.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip, port),
        Err(_) => Target::Dns(&endpoint.address, port),
    })
}

fn lb_endpoint(address: Address) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn generate(input: &ExternalInput<'_>) -> ExternalOutput {
    let mut out = ExternalOutput::default();
    let name = input.cluster.to_string();
    let targets: Vec<Target<'_>> = input.spec.endpoints.iter().filter_map(target).collect();
    let dns = targets.iter().any(|t| matches!(t, Target::Dns(..)));
    let mut endpoints = Vec::new();
    for t in &targets {
        match t {
            Target::Ip(ip, port) => {
                endpoints.push(lb_endpoint(clusters::socket_address(&ip.to_string(), *port)))
            }
            Target::Dns(host, port) => {
                endpoints.push(lb_endpoint(clusters::socket_address(host, *port)))
            }
            // Envoy resolves a DNS cluster's every endpoint, and a pipe cannot be resolved.
            Target::Unix(path) if dns => out.problems.push(format!(
                "MeshExternalService {}: unix socket {path} cannot share a cluster with DNS-name endpoints; left out",
                input.name
            )),
            Target::Unix(path) => endpoints.push(lb_endpoint(Address {
                address: Some(address::Address::Pipe(Pipe {
                    path: path.to_string(),
                    mode: 0,
                })),
            })),
        }
    }
    if endpoints.is_empty() {
        out.problems.push(format!(
            "MeshExternalService {}: no usable endpoint",
            input.name
        ));
    }
    let discovery = if dns {
        // Envoy's DNS cluster: resolves every endpoint and re-resolves on the record's TTL.
        cluster::ClusterDiscoveryType::ClusterType(cluster::CustomClusterType {
            name: "envoy.cluster.dns".into(),
            typed_config: Some(pack_any(DnsCluster {
                respect_dns_ttl: true,
                dns_lookup_family: DnsLookupFamily::V4Preferred as i32,
                ..Default::default()
            })),
        })
    } else {
        cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Static as i32)
    };
    let mut cluster = Cluster {
        name: name.clone(),
        connect_timeout: Some(Duration {
            seconds: 5,
            nanos: 0,
        }),
        cluster_discovery_type: Some(discovery),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    if speaks_http2(input.spec) {
        cluster = clusters::with_http2(cluster);
    }
    if let Some(tls) = input.spec.tls.as_ref().filter(|t| t.enabled) {
        let first_host = targets.iter().find_map(|t| match t {
            Target::Dns(host, _) => Some(host.to_string()),
            _ => None,
        });
        match transport_socket(input, tls, first_host, &mut out) {
            Some(socket) => cluster.transport_socket = Some(socket),
            None => return out,
        }
    }
    out.cluster = Some(cluster);
    out
}

fn tls_version(v: &TlsVersion) -> i32 {
    (match v {
        TlsVersion::Tls10 => tls_parameters::TlsProtocol::TlSv10,
        TlsVersion::Tls11 => tls_parameters::TlsProtocol::TlSv11,
        TlsVersion::Tls12 => tls_parameters::TlsProtocol::TlSv12,
        TlsVersion::Tls13 => tls_parameters::TlsProtocol::TlSv13,
        _ => tls_parameters::TlsProtocol::TlsAuto,
    }) as i32
}

fn san_matcher(value: &str, prefix: bool) -> SubjectAltNameMatcher {
    let san_type = if value.parse::<IpAddr>().is_ok() {
        subject_alt_name_matcher::SanType::IpAddress
    } else {
        subject_alt_name_matcher::SanType::Dns
    };
    let pattern = if prefix {
        string_matcher::MatchPattern::Prefix(value.to_string())
    } else {
        string_matcher::MatchPattern::Exact(value.to_string())
    };
    SubjectAltNameMatcher {
        san_type: san_type as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(pattern),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The upstream TLS context; `None` (with a problem recorded) when it cannot be honoured,
/// so the cluster is left out rather than sent without the verification asked for.
fn transport_socket(
    input: &ExternalInput<'_>,
    tls: &atoll_model::types::MesTls,
    first_host: Option<String>,
    out: &mut ExternalOutput,
) -> Option<TransportSocket> {
    let verification = tls.verification.clone().unwrap_or_default();
    let mode = match verification.mode {
        VerificationMode::Unset => VerificationMode::Secured,
        ref m => m.clone(),
    };
    let sni = verification
        .server_name
        .clone()
        .or(first_host)
        .unwrap_or_default();
    let mut common = CommonTlsContext {
        alpn_protocols: if speaks_http2(input.spec) {
            vec!["h2".into()]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    if let Some(version) = &tls.version {
        common.tls_params = Some(TlsParameters {
            tls_minimum_protocol_version: tls_version(&version.min),
            tls_maximum_protocol_version: tls_version(&version.max),
            ..Default::default()
        });
    }
    if let Some((chain, key)) = &input.material.client {
        let name = client_secret_name(input.mesh, input.name);
        out.secrets.push(Secret {
            name: name.clone(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(chain)),
                private_key: Some(inline(key)),
                ..Default::default()
            })),
        });
        common.tls_certificate_sds_secret_configs = vec![super::tls::via_ads(name)];
    }
    if mode != VerificationMode::SkipAll {
        let ca_secret = match &input.material.ca {
            Some(pem) => {
                let name = ca_secret_name(input.mesh, input.name);
                out.secrets
                    .push(super::tls::ca_secret(&name, Some(inline(pem))));
                name
            }
            None if input.system_ca => {
                out.uses_system_ca = true;
                SYSTEM_CA_SECRET.to_string()
            }
            None => {
                out.problems.push(format!(
                    "MeshExternalService {}: TLS verification needs a caCert or the data plane's system CA, and this data plane reported none (KUMA_DATAPLANE_RUNTIME_DYNAMIC_SYSTEM_CA_PATH); left out",
                    input.name
                ));
                return None;
            }
        };
        let mut context = CertificateValidationContext::default();
        if mode != VerificationMode::SkipSan {
            context.match_typed_subject_alt_names = if verification.subject_alt_names.is_empty() {
                (!sni.is_empty())
                    .then(|| san_matcher(&sni, false))
                    .into_iter()
                    .collect()
            } else {
                verification
                    .subject_alt_names
                    .iter()
                    .map(|san| san_matcher(&san.value, san.match_type == SanMatchType::Prefix))
                    .collect()
            };
        }
        if mode == VerificationMode::SkipCa {
            context.trust_chain_verification =
                certificate_validation_context::TrustChainVerification::AcceptUntrusted as i32;
        }
        let sds = super::tls::via_ads(ca_secret);
        // A combined context only when there is something to combine with the secret.
        common.validation_context_type =
            Some(if context == CertificateValidationContext::default() {
                common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds)
            } else {
                common_tls_context::ValidationContextType::CombinedValidationContext(
                    common_tls_context::CombinedCertificateValidationContext {
                        default_validation_context: Some(context),
                        validation_context_sds_secret_config: Some(sds),
                        ..Default::default()
                    },
                )
            });
    }
    Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
            UpstreamTlsContext {
                sni,
                allow_renegotiation: tls.allow_renegotiation,
                common_tls_context: Some(common),
                ..Default::default()
            },
        ))),
    })
}
