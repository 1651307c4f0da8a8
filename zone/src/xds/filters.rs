//! Building blocks of listeners: the network filters (HTTP connection manager, TCP proxy,
//! connection limit) and the TLS inspector, shared by sidecar and gateway listeners.

use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::UInt64Value;
use envoy_types::util::pack_any;

use super::clusters::socket_address;

/// Stat prefixes may not contain `:`.
pub fn stat(name: &str) -> String {
    name.replace([':', '/'], "_")
}

/// An HTTP connection manager with an inline route configuration.
pub fn http_manager(name: &str, routes: RouteConfiguration) -> Filter {
    let manager = HttpConnectionManager {
        stat_prefix: stat(name),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(routes)),
        // Hosts match without their port: `Host: foo.example.com:8080` is foo.example.com.
        strip_port_mode: Some(http_connection_manager::StripPortMode::StripAnyHostPort(
            true,
        )),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(manager))),
    }
}

/// A TCP proxy to one cluster, or split by weight across several: (cluster, weight).
pub fn tcp_proxy(name: &str, backends: &[(String, u32)]) -> Filter {
    let cluster_specifier = match backends {
        [(one, _)] => tcp_proxy::ClusterSpecifier::Cluster(one.clone()),
        many => tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: many
                .iter()
                .map(
                    |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: (*weight).max(1),
                        ..Default::default()
                    },
                )
                .collect(),
        }),
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(TcpProxy {
            stat_prefix: stat(name),
            cluster_specifier: Some(cluster_specifier),
            ..Default::default()
        }))),
    }
}

/// Closes connections beyond `max` open ones on this filter chain.
pub fn connection_limit(name: &str, max: u32) -> Filter {
    Filter {
        name: "envoy.filters.network.connection_limit".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(ConnectionLimit {
            stat_prefix: stat(name),
            max_connections: Some(UInt64Value {
                value: u64::from(max),
            }),
            ..Default::default()
        }))),
    }
}

/// Reads the ClientHello's SNI so filter chains can match on server names, and whether the
/// connection is TLS at all.
pub fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
            TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// A listener on `ip:port` with these filter chains.
pub fn listener(name: &str, ip: &str, port: u32, filter_chains: Vec<FilterChain>) -> Listener {
    // Server names and the transport protocol are only known once the inspector has looked.
    let needs_inspector = filter_chains.iter().any(|c| {
        c.filter_chain_match
            .as_ref()
            .is_some_and(|m| !m.server_names.is_empty() || !m.transport_protocol.is_empty())
    });
    Listener {
        name: name.to_string(),
        address: Some(socket_address(ip, port)),
        listener_filters: if needs_inspector {
            vec![tls_inspector()]
        } else {
            Vec::new()
        },
        filter_chains,
        ..Default::default()
    }
}
