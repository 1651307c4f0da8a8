//! MeshMetric's Prometheus endpoint on a proxy: a listener on the Dataplane's address whose
//! one route sends the scrape path to Envoy's own `/stats/prometheus` on its admin interface
//! (loopback). Nothing else of the admin interface is reachable through it.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};

use super::{clusters, filters};

/// The cluster reaching this Envoy's admin interface.
pub const ADMIN_CLUSTER: &str = "atoll:admin";

pub fn admin_cluster(admin_port: u32) -> Cluster {
    clusters::fixed(ADMIN_CLUSTER, "127.0.0.1", admin_port)
}

/// The listener's name for an endpoint on `address:port`.
pub fn listener_name(address: &str, port: u32) -> String {
    format!("prometheus:{address}:{port}")
}

/// Serves Envoy's statistics in Prometheus' format at `path` on `address:port`; only the
/// statistics something has used unless `include_unused`.
pub fn prometheus_listener(address: &str, port: u32, path: &str, include_unused: bool) -> Listener {
    let name = listener_name(address, port);
    let target = if include_unused {
        "/stats/prometheus"
    } else {
        "/stats/prometheus?usedonly"
    };
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Path(path.to_string())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                ADMIN_CLUSTER.to_string(),
            )),
            prefix_rewrite: target.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let routes = RouteConfiguration {
        name: name.clone(),
        virtual_hosts: vec![VirtualHost {
            name: name.clone(),
            domains: vec!["*".into()],
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    };
    let chain = FilterChain {
        filters: vec![filters::http_manager(&name, routes)],
        ..Default::default()
    };
    filters::listener(&name, address, port, vec![chain])
}
