//! TLS on both sides of a proxy: the mesh's mutual TLS (identity and CA delivered over SDS, so
//! a rotated certificate reaches Envoy without touching listeners or clusters) and a gateway's
//! own certificates for HTTPS/TLS termination.

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, TransportSocket, config_source,
    data_source, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext, common_tls_context, secret,
    subject_alt_name_matcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

/// The SDS name of a proxy's workload certificate in `mesh`.
pub fn identity_secret_name(mesh: &str) -> String {
    format!("identity_cert:secret:{mesh}")
}

/// The SDS name of `mesh`'s CA bundle.
pub fn mesh_ca_secret_name(mesh: &str) -> String {
    format!("mesh_ca:secret:{mesh}")
}

/// The SPIFFE identity of `service` in `mesh`: what a workload certificate names and what the
/// other side of a mesh connection checks.
pub fn spiffe_id(mesh: &str, service: &str) -> String {
    format!("spiffe://{mesh}/{service}")
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    })
}

pub(crate) fn via_ads(name: String) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                AggregatedConfigSource {},
            )),
            ..Default::default()
        }),
    }
}

/// The workload certificate secret.
pub fn identity_secret(mesh: &str, cert_pem: &str, key_pem: &str) -> Secret {
    Secret {
        name: identity_secret_name(mesh),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(cert_pem),
            private_key: inline(key_pem),
            ..Default::default()
        })),
    }
}

/// The mesh CA secret.
pub fn mesh_ca_secret(mesh: &str, ca_pem: &str) -> Secret {
    ca_secret(&mesh_ca_secret_name(mesh), inline(ca_pem))
}

/// A secret of CAs to verify peers against.
pub fn ca_secret(name: &str, ca: Option<DataSource>) -> Secret {
    Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: ca,
                ..Default::default()
            },
        )),
    }
}

fn socket<M: prost::Message + prost::Name>(context: M) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}

fn san_uri(uri: &str) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: subject_alt_name_matcher::SanType::Uri as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(uri.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Mesh mTLS on an inbound listener: the proxy presents its workload certificate and accepts
/// only clients with a certificate from the mesh CA. A plain-text client fails the handshake.
pub fn inbound_mtls(mesh: &str) -> TransportSocket {
    inbound_mtls_offering(mesh, &[])
}

/// [`inbound_mtls`] offering `alpn` protocols (an egress lets HTTP/2 clients say so).
pub fn inbound_mtls_offering(mesh: &str, alpn: &[&str]) -> TransportSocket {
    socket(DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![via_ads(identity_secret_name(mesh))],
            validation_context_type: Some(
                common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(
                    via_ads(mesh_ca_secret_name(mesh)),
                ),
            ),
            alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    })
}

/// Mesh mTLS towards `service`: present the workload certificate, send `sni`, and accept only
/// a server whose certificate names `service` in `mesh`.
pub fn outbound_mtls(mesh: &str, service: &str, sni: &str) -> TransportSocket {
    outbound_mtls_to(mesh, mesh, service, sni)
}

/// Name of the secret holding every mTLS mesh's CA: what a cross-mesh gateway listener trusts.
pub const CROSS_MESH_CA_SECRET: &str = "cross_mesh_ca:secret";

/// Every mesh's CA bundle in one validation context.
pub fn cross_mesh_ca_secret(bundle_pem: &str) -> Secret {
    ca_secret(CROSS_MESH_CA_SECRET, inline(bundle_pem))
}

/// A cross-mesh gateway listener: the gateway's own mesh identity, and clients from any mTLS
/// mesh.
pub fn cross_mesh_inbound(mesh: &str) -> TransportSocket {
    socket(DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![via_ads(identity_secret_name(mesh))],
            validation_context_type: Some(
                common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(
                    via_ads(CROSS_MESH_CA_SECRET.to_string()),
                ),
            ),
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    })
}

/// Mutual TLS from a proxy of `own_mesh` to `service` in `target_mesh` (the same mesh, or a
/// cross-mesh gateway): our identity, their CA and their service's SPIFFE ID.
pub fn outbound_mtls_to(
    own_mesh: &str,
    target_mesh: &str,
    service: &str,
    sni: &str,
) -> TransportSocket {
    outbound_mtls_naming(
        own_mesh,
        target_mesh,
        &[spiffe_id(target_mesh, service)],
        sni,
        &[],
    )
}

/// Mutual TLS from a proxy of `own_mesh` to a peer of `target_mesh` whose certificate names
/// one of `uris`, offering `alpn` protocols.
pub fn outbound_mtls_naming(
    own_mesh: &str,
    target_mesh: &str,
    uris: &[String],
    sni: &str,
    alpn: &[&str],
) -> TransportSocket {
    socket(UpstreamTlsContext {
        sni: sni.to_string(),
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![via_ads(identity_secret_name(own_mesh))],
            validation_context_type: Some(
                common_tls_context::ValidationContextType::CombinedValidationContext(
                    common_tls_context::CombinedCertificateValidationContext {
                        default_validation_context: Some(CertificateValidationContext {
                            match_typed_subject_alt_names: uris
                                .iter()
                                .map(|uri| san_uri(uri))
                                .collect(),
                            ..Default::default()
                        }),
                        validation_context_sds_secret_config: Some(via_ads(mesh_ca_secret_name(
                            target_mesh,
                        ))),
                        ..Default::default()
                    },
                ),
            ),
            alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// TLS termination with the gateway's own certificates (PEM chain and key each). Two
/// certificates of different key types (RSA and ECDSA) are served side by side: Envoy picks
/// the one the client supports.
pub fn terminate(certificates: &[(String, String)]) -> TransportSocket {
    socket(DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: certificates
                .iter()
                .map(|(chain, key)| TlsCertificate {
                    certificate_chain: inline(chain),
                    private_key: inline(key),
                    ..Default::default()
                })
                .collect(),
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }),
        ..Default::default()
    })
}
