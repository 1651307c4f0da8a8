//! Clusters and their endpoints: EDS clusters for mesh services (endpoints arrive separately,
//! so a new instance changes one small resource, not the cluster) and static clusters for the
//! application next to a sidecar.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, Http2ProtocolOptions,
    Locality as EnvoyLocality, SocketAddress, TransportSocket, address, config_source,
    socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, cluster_load_assignment,
    lb_endpoint,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use envoy_types::util::pack_any;

/// Where a connection is opened.
pub fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn connect_timeout() -> Option<Duration> {
    Some(Duration {
        seconds: 5,
        nanos: 0,
    })
}

/// A cluster whose endpoints come over EDS (ADS), optionally with TLS to them.
pub fn eds(name: &str, tls: Option<TransportSocket>) -> Cluster {
    Cluster {
        name: name.to_string(),
        connect_timeout: connect_timeout(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                resource_api_version: ApiVersion::V3 as i32,
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            ..Default::default()
        }),
        transport_socket: tls,
        ..Default::default()
    }
}

/// A static cluster with fixed endpoints (the local application).
pub fn fixed(name: &str, ip: &str, port: u32) -> Cluster {
    Cluster {
        name: name.to_string(),
        connect_timeout: connect_timeout(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(load_assignment(name, &[(ip.to_string(), port, 1)])),
        ..Default::default()
    }
}

/// The same cluster speaking HTTP/2 upstream (e.g. gRPC to the control plane).
pub fn with_http2(mut cluster: Cluster) -> Cluster {
    cluster.typed_extension_protocol_options.insert(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
        pack_any(HttpProtocolOptions {
            upstream_protocol_options: Some(
                http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                    http_protocol_options::ExplicitHttpConfig {
                        protocol_config: Some(
                            http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                                Http2ProtocolOptions::default(),
                            ),
                        ),
                    },
                ),
            ),
            ..Default::default()
        }),
    );
    cluster
}

/// Endpoints of a cluster: (address, port, weight).
pub fn load_assignment(cluster: &str, endpoints: &[(String, u32, u32)]) -> ClusterLoadAssignment {
    load_assignment_by_priority(cluster, &[endpoints])
}

/// Endpoints in tiers, the first non-empty tier at priority 0, the next at 1, and so on: Envoy
/// sends traffic to a lower priority only while the ones above have no healthy endpoint.
/// Priorities stay contiguous, so an empty tier moves the ones after it up.
pub fn load_assignment_by_priority(
    cluster: &str,
    tiers: &[&[(String, u32, u32)]],
) -> ClusterLoadAssignment {
    let tiers: Vec<Vec<Locality>> = tiers
        .iter()
        .map(|endpoints| {
            vec![Locality {
                endpoints: endpoints.to_vec(),
                ..Default::default()
            }]
        })
        .collect();
    load_assignment_by_locality(cluster, &tiers, None)
}

/// A group of endpoints sharing a place (a zone, a set of tags), weighted as a whole when the
/// cluster balances by locality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Locality {
    pub zone: String,
    pub sub_zone: String,
    pub weight: Option<u32>,
    /// (address, port, weight).
    pub endpoints: Vec<(String, u32, u32)>,
}

/// Endpoints in tiers of localities, priorities as [`load_assignment_by_priority`];
/// `overprovisioning` is Envoy's factor (140 = spill over below about 71% healthy).
pub fn load_assignment_by_locality(
    cluster: &str,
    tiers: &[Vec<Locality>],
    overprovisioning: Option<u32>,
) -> ClusterLoadAssignment {
    let mut endpoints: Vec<LocalityLbEndpoints> = tiers
        .iter()
        .filter(|tier| tier.iter().any(|l| !l.endpoints.is_empty()))
        .enumerate()
        .flat_map(|(priority, tier)| {
            tier.iter()
                .filter(|l| !l.endpoints.is_empty())
                .map(move |l| locality_endpoints(l, priority))
        })
        .collect();
    if endpoints.is_empty() {
        endpoints.push(LocalityLbEndpoints::default());
    }
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints,
        policy: overprovisioning.map(|factor| cluster_load_assignment::Policy {
            overprovisioning_factor: Some(UInt32Value { value: factor }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn locality_endpoints(l: &Locality, priority: usize) -> LocalityLbEndpoints {
    let place = !l.zone.is_empty() || !l.sub_zone.is_empty();
    LocalityLbEndpoints {
        locality: place.then(|| EnvoyLocality {
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
            ..Default::default()
        }),
        lb_endpoints: l
            .endpoints
            .iter()
            .map(|(ip, port, weight)| LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket_address(ip, *port)),
                    ..Default::default()
                })),
                load_balancing_weight: Some(UInt32Value {
                    value: (*weight).max(1),
                }),
                ..Default::default()
            })
            .collect(),
        load_balancing_weight: l.weight.map(|value| UInt32Value {
            value: value.max(1),
        }),
        priority: u32::try_from(priority).unwrap_or(u32::MAX),
        ..Default::default()
    }
}
