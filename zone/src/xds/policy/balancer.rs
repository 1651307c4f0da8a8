//! MeshLoadBalancingStrategy's `loadBalancer` on a destination's cluster (Envoy's balancer
//! and its settings) and its hash policies on the routes and TCP proxies that send to it.

use atoll_model::types::{
    HashFunction, HashPolicy, HashPolicyType, IntOrString, LoadBalancer, LoadBalancerType,
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::RuntimeDouble;
use envoy_types::pb::envoy::config::route::v3::route_action::{self, hash_policy};
use envoy_types::pb::envoy::r#type::v3::{HashPolicy as TcpHashPolicy, hash_policy as tcp_hash};
use envoy_types::pb::google::protobuf::{UInt32Value, UInt64Value};

use super::timeout::duration;

/// Sets the cluster's balancer, and balancing by locality weight when `by_locality` (the
/// weights of affinity tags).
pub fn cluster(cluster: &mut Cluster, lb: Option<&LoadBalancer>, by_locality: bool) {
    if by_locality {
        cluster.common_lb_config = Some(cluster::CommonLbConfig {
            locality_config_specifier: Some(
                cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(
                    cluster::common_lb_config::LocalityWeightedLbConfig {},
                ),
            ),
            ..cluster.common_lb_config.take().unwrap_or_default()
        });
    }
    let Some(lb) = lb else { return };
    let (policy, config) = match lb.lb_type {
        LoadBalancerType::LeastRequest => (
            cluster::LbPolicy::LeastRequest,
            lb.least_request.as_ref().map(|l| {
                cluster::LbConfig::LeastRequestLbConfig(cluster::LeastRequestLbConfig {
                    choice_count: l.choice_count.map(|value| UInt32Value { value }),
                    active_request_bias: l.active_request_bias.as_ref().and_then(|b| {
                        let value = match b {
                            IntOrString::Int(n) => *n as f64,
                            IntOrString::String(s) => s.trim().parse().ok()?,
                        };
                        Some(RuntimeDouble {
                            default_value: value,
                            runtime_key: String::new(),
                        })
                    }),
                    ..Default::default()
                })
            }),
        ),
        LoadBalancerType::RingHash => (
            cluster::LbPolicy::RingHash,
            lb.ring_hash.as_ref().map(|r| {
                cluster::LbConfig::RingHashLbConfig(cluster::RingHashLbConfig {
                    minimum_ring_size: r.min_ring_size.map(|v| UInt64Value { value: v.into() }),
                    maximum_ring_size: r.max_ring_size.map(|v| UInt64Value { value: v.into() }),
                    hash_function: match r.hash_function {
                        HashFunction::MurmurHash2 => {
                            cluster::ring_hash_lb_config::HashFunction::MurmurHash2
                        }
                        _ => cluster::ring_hash_lb_config::HashFunction::XxHash,
                    } as i32,
                })
            }),
        ),
        LoadBalancerType::Maglev => (
            cluster::LbPolicy::Maglev,
            lb.maglev.as_ref().map(|m| {
                cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
                    table_size: m.table_size.map(|v| UInt64Value { value: v.into() }),
                })
            }),
        ),
        LoadBalancerType::Random => (cluster::LbPolicy::Random, None),
        _ => (cluster::LbPolicy::RoundRobin, None),
    };
    cluster.lb_policy = policy as i32;
    cluster.lb_config = config;
}

/// Whether the cluster fails traffic in panic mode (MeshHealthCheck `failTrafficOnPanic`), a
/// setting of zone-aware balancing that locality-weighted balancing replaces.
pub fn fails_on_panic(cluster: &Cluster) -> bool {
    matches!(
        cluster
            .common_lb_config
            .as_ref()
            .and_then(|c| c.locality_config_specifier.as_ref()),
        Some(cluster::common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(z))
            if z.fail_traffic_on_panic
    )
}

/// The hash policies of an HTTP route.
pub fn route_hash(policies: &[HashPolicy]) -> Vec<route_action::HashPolicy> {
    policies
        .iter()
        .filter_map(|p| {
            let specifier = match p.policy_type {
                HashPolicyType::Header => {
                    hash_policy::PolicySpecifier::Header(hash_policy::Header {
                        header_name: p.header.as_ref()?.name.clone(),
                        ..Default::default()
                    })
                }
                HashPolicyType::Cookie => {
                    let cookie = p.cookie.as_ref()?;
                    hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
                        name: cookie.name.clone(),
                        ttl: duration(cookie.ttl.as_ref()),
                        path: cookie.path.clone().unwrap_or_default(),
                        ..Default::default()
                    })
                }
                HashPolicyType::Connection | HashPolicyType::SourceIp => {
                    hash_policy::PolicySpecifier::ConnectionProperties(
                        hash_policy::ConnectionProperties { source_ip: true },
                    )
                }
                HashPolicyType::QueryParameter => {
                    hash_policy::PolicySpecifier::QueryParameter(hash_policy::QueryParameter {
                        name: p.query_parameter.as_ref()?.name.clone(),
                    })
                }
                HashPolicyType::FilterState => {
                    hash_policy::PolicySpecifier::FilterState(hash_policy::FilterState {
                        key: p.filter_state.as_ref()?.key.clone(),
                    })
                }
                _ => return None,
            };
            Some(route_action::HashPolicy {
                policy_specifier: Some(specifier),
                terminal: p.terminal.unwrap_or(false),
            })
        })
        .collect()
}

/// The hash policies a TCP proxy can use: the source address and filter state; the
/// request-level ones (headers, cookies, query parameters) do not exist there.
pub fn tcp_hash(policies: &[HashPolicy]) -> Vec<TcpHashPolicy> {
    policies
        .iter()
        .filter_map(|p| {
            let specifier = match p.policy_type {
                HashPolicyType::Connection | HashPolicyType::SourceIp => {
                    tcp_hash::PolicySpecifier::SourceIp(tcp_hash::SourceIp {})
                }
                HashPolicyType::FilterState => {
                    tcp_hash::PolicySpecifier::FilterState(tcp_hash::FilterState {
                        key: p.filter_state.as_ref()?.key.clone(),
                    })
                }
                _ => return None,
            };
            Some(TcpHashPolicy {
                policy_specifier: Some(specifier),
            })
        })
        .collect()
}
