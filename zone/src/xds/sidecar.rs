//! A sidecar's listeners: one inbound per Dataplane inbound (mesh mTLS in, plain to the local
//! application) and one outbound per outbound service (plain in from the application, mesh
//! mTLS out). HTTP or TCP by the `kuma.io/protocol` tag. In a PERMISSIVE mesh an inbound also
//! accepts plain text: the TLS inspector tells the two apart and each gets its own chain.

use atoll_model::types::{Inbound, InboundState};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};

use std::collections::BTreeMap;

use super::{clusters, filters, tls};

/// Application protocol of a service, from its `kuma.io/protocol` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Tcp,
}

/// Whether a `kuma.io/protocol` tag says the service speaks HTTP/2 (`http2`, `grpc`): its
/// clusters then speak HTTP/2 upstream too, which gRPC's trailers and health checks need.
pub fn speaks_http2(tag: Option<&String>) -> bool {
    matches!(tag.map(String::as_str), Some("http2" | "grpc"))
}

impl Protocol {
    pub fn from_tag(tag: Option<&String>) -> Self {
        match tag.map(String::as_str) {
            Some("http" | "http2" | "grpc") => Protocol::Http,
            _ => Protocol::Tcp,
        }
    }
}

/// An outbound the application reaches on `address:port`.
#[derive(Debug, Clone)]
pub struct OutboundTarget {
    pub address: String,
    pub port: u32,
    pub service: String,
    /// The Envoy cluster it goes to (see [`service_cluster`]).
    pub cluster: String,
    pub protocol: Protocol,
}

pub struct SidecarInput<'a> {
    pub mesh: &'a str,
    /// The Dataplane's `networking.address`.
    pub address: &'a str,
    pub inbounds: &'a [Inbound],
    pub outbounds: &'a [OutboundTarget],
    pub mtls: bool,
    /// The mesh's CA backend is in mode PERMISSIVE: inbounds take plain text too.
    pub permissive: bool,
    /// Routes replacing an outbound's "everything to its cluster", by the outbound's cluster.
    pub routes: &'a BTreeMap<String, OutboundRoutes>,
}

/// What a route (MeshHTTPRoute or MeshTCPRoute) makes of an outbound.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundRoutes {
    /// HTTP routes, first match wins.
    Http(Vec<Route>),
    /// A TCP proxy split across weighted clusters.
    Tcp(Vec<(String, u32)>),
}

#[derive(Debug, Default)]
pub struct SidecarOutput {
    pub listeners: Vec<Listener>,
    /// Complete clusters (the local application behind each inbound).
    pub clusters: Vec<Cluster>,
}

/// The Envoy cluster of a mesh service.
pub fn service_cluster(service: &str) -> String {
    service.to_string()
}

/// The route sending every request to `cluster`.
pub fn route_all(cluster: &str) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An HTTP connection manager with one catch-all virtual host holding `routes`.
fn http_routes(name: &str, routes: Vec<Route>) -> Filter {
    filters::http_manager(
        name,
        RouteConfiguration {
            name: name.to_string(),
            virtual_hosts: vec![VirtualHost {
                name: name.to_string(),
                domains: vec!["*".into()],
                routes,
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

pub(crate) fn proxy_filter(name: &str, protocol: Protocol, cluster: &str) -> Filter {
    match protocol {
        Protocol::Http => http_routes(name, vec![route_all(cluster)]),
        Protocol::Tcp => filters::tcp_proxy(name, &[(cluster.to_string(), 1)]),
    }
}

/// An outbound's filter: its routes when a route applies, everything to its cluster otherwise.
fn outbound_filter(
    name: &str,
    outbound: &OutboundTarget,
    routes: Option<&OutboundRoutes>,
) -> Filter {
    match routes {
        Some(OutboundRoutes::Http(routes)) => http_routes(name, routes.clone()),
        Some(OutboundRoutes::Tcp(weighted)) => filters::tcp_proxy(name, weighted),
        None => proxy_filter(name, outbound.protocol, &outbound.cluster),
    }
}

/// An inbound's filter chains: mesh mTLS only (STRICT), plain text only (no mTLS), or both
/// told apart by the transport the TLS inspector sees (PERMISSIVE).
fn inbound_chains(input: &SidecarInput<'_>, name: &str, filter: Filter) -> Vec<FilterChain> {
    let on = |transport: &str| {
        Some(FilterChainMatch {
            transport_protocol: transport.to_string(),
            ..Default::default()
        })
    };
    match (input.mtls, input.permissive) {
        (false, _) => vec![FilterChain {
            filters: vec![filter],
            ..Default::default()
        }],
        (true, false) => vec![FilterChain {
            filters: vec![filter],
            transport_socket: Some(tls::inbound_mtls(input.mesh)),
            ..Default::default()
        }],
        (true, true) => vec![
            FilterChain {
                name: format!("{name}:mtls"),
                filter_chain_match: on("tls"),
                filters: vec![filter.clone()],
                transport_socket: Some(tls::inbound_mtls(input.mesh)),
                ..Default::default()
            },
            FilterChain {
                name: format!("{name}:plaintext"),
                filter_chain_match: on("raw_buffer"),
                filters: vec![filter],
                ..Default::default()
            },
        ],
    }
}

pub fn generate(input: &SidecarInput<'_>) -> SidecarOutput {
    let mut out = SidecarOutput::default();
    for inbound in input.inbounds {
        if inbound.state == InboundState::Ignored {
            continue;
        }
        let address = inbound.address.as_deref().unwrap_or(input.address);
        let name = format!("inbound:{address}:{}", inbound.port);
        let app_port = inbound.service_port.unwrap_or(inbound.port);
        let app_address = inbound.service_address.as_deref().unwrap_or("127.0.0.1");
        let local = format!("localhost:{app_port}");
        let tag = inbound.tags.get(atoll_model::types::PROTOCOL_TAG);
        let app = clusters::fixed(&local, app_address, app_port);
        out.clusters.push(if speaks_http2(tag) {
            clusters::with_http2(app)
        } else {
            app
        });
        let protocol = Protocol::from_tag(tag);
        let chains = inbound_chains(input, &name, proxy_filter(&name, protocol, &local));
        out.listeners
            .push(filters::listener(&name, address, inbound.port, chains));
    }
    for outbound in input.outbounds {
        let name = format!("outbound:{}:{}", outbound.address, outbound.port);
        let chain = FilterChain {
            filters: vec![outbound_filter(
                &name,
                outbound,
                input.routes.get(&outbound.cluster),
            )],
            ..Default::default()
        };
        out.listeners.push(filters::listener(
            &name,
            &outbound.address,
            outbound.port,
            vec![chain],
        ));
    }
    out
}
