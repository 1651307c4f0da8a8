//! A zone egress run by `atoll-dp` (Envoy): it terminates mesh mTLS from the sidecars, picks
//! the MeshExternalService by the SNI they send, and originates the external service's own
//! TLS, so client certificates for external systems live only on the egress. The sidecar side
//! is one cluster per service pointing at the egresses, over mesh mTLS.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};

use super::sidecar::{Protocol, proxy_filter};
use super::{clusters, filters, tls};
use crate::naming::sni::external_sni;

/// The identity a zone egress presents in `mesh` (a path no service name can take).
pub fn spiffe_id(mesh: &str, egress: &str) -> String {
    format!("spiffe://{mesh}/zone-egress/{egress}")
}

/// An egress: (name, address, port).
pub type EgressAddress = (String, String, u32);

/// The sidecar's cluster for MeshExternalService `name` of `mesh` when it goes through the
/// zone's egresses: mesh mTLS to any of them, naming the service in the SNI.
pub fn to_egress(
    cluster: &str,
    mesh: &str,
    name: &str,
    http2: bool,
    egresses: &[EgressAddress],
) -> Cluster {
    let endpoints: Vec<(String, u32, u32)> = egresses
        .iter()
        .map(|(_, address, port)| (address.clone(), *port, 1))
        .collect();
    let uris: Vec<String> = egresses
        .iter()
        .map(|(e, _, _)| spiffe_id(mesh, e))
        .collect();
    let alpn: &[&str] = if http2 { &["h2"] } else { &[] };
    let mut out = Cluster {
        name: cluster.to_string(),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: 5,
            nanos: 0,
        }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(clusters::load_assignment(cluster, &endpoints)),
        transport_socket: Some(tls::outbound_mtls_naming(
            mesh,
            mesh,
            &uris,
            &external_sni(mesh, name),
            alpn,
        )),
        ..Default::default()
    };
    if http2 {
        out = clusters::with_http2(out);
    }
    out
}

/// The egress's filter chain for one MeshExternalService: mesh mTLS in (the egress's identity
/// in that mesh, clients from the mesh CA), matched by the service's SNI, on to `cluster`.
pub fn chain(mesh: &str, name: &str, protocol: Protocol, cluster: &str) -> FilterChain {
    let sni = external_sni(mesh, name);
    FilterChain {
        name: sni.clone(),
        filter_chain_match: Some(FilterChainMatch {
            server_names: vec![sni.clone()],
            ..Default::default()
        }),
        filters: vec![proxy_filter(&format!("egress:{sni}"), protocol, cluster)],
        transport_socket: Some(tls::inbound_mtls_offering(mesh, &["h2", "http/1.1"])),
        ..Default::default()
    }
}

/// The egress's one listener.
pub fn listener(name: &str, address: &str, port: u32, chains: Vec<FilterChain>) -> Listener {
    filters::listener(&format!("egress:{name}"), address, port, chains)
}
