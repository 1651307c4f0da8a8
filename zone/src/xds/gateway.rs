//! A built-in gateway's Envoy listeners, from its MeshGateway and the routes attached to it.
//!
//! Listeners sharing a port become one Envoy listener. On HTTP, each hostname becomes a virtual
//! host (exact, wildcard, or the catch-all `*` when no hostname is set), so an unknown Host gets
//! 404. On HTTPS and TLS, each hostname becomes a filter chain matched by SNI with its own
//! certificates (TERMINATE) or passed through untouched (PASSTHROUGH). Routes attach to a
//! listener when their `targetRef.tags` are a subset of the listener's combined tags:
//! Dataplane tags, overlaid by the MeshGateway's, overlaid by the listener's.

use std::collections::BTreeMap;

use atoll_model::types::{
    BackendRef, DataSource, GatewayListener, GatewayProtocol, MeshGatewaySpec, MeshHttpRouteSpec,
    MeshTcpRouteSpec, Tags, TlsMode,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};

use super::filters;
use super::routes::{self, cluster_name};
use crate::policy::rules::GatewayHost;

/// Resolves a certificate data source to (PEM chain, PEM key), or says why it cannot.
pub type CertificateResolver<'a> = &'a dyn Fn(&DataSource) -> Result<(String, String), String>;

/// Everything the generator reads.
pub struct GatewayInput<'a> {
    pub mesh: &'a str,
    pub gateway: &'a str,
    /// The address the Dataplane's listeners bind.
    pub address: &'a str,
    pub dataplane_tags: &'a Tags,
    pub spec: &'a MeshGatewaySpec,
    /// MeshHTTPRoutes whose `targetRef` names this gateway, by name.
    pub http_routes: &'a [(&'a str, &'a MeshHttpRouteSpec)],
    /// MeshTCPRoutes whose `targetRef` names this gateway.
    pub tcp_routes: &'a [&'a MeshTcpRouteSpec],
    pub certificate: CertificateResolver<'a>,
    /// TLS for crossMesh listeners (the gateway's identity, every mesh's CA); `None` when the
    /// mesh has no mTLS, which leaves crossMesh listeners out.
    pub cross_mesh_tls: Option<envoy_types::pb::envoy::config::core::v3::TransportSocket>,
}

/// The generated listeners, the clusters their routes need, and what could not be generated.
#[derive(Debug, Default)]
pub struct GatewayOutput {
    pub listeners: Vec<Listener>,
    /// Cluster name to the backend it reaches.
    pub backends: BTreeMap<String, BackendRef>,
    /// Human-readable reasons for listeners left out or incomplete.
    pub problems: Vec<String>,
    /// Each HTTP virtual host with its listeners' tags and its MeshHTTPRoutes: what
    /// policies targeting the gateway or one of its routes select.
    pub hosts: Vec<GatewayHost>,
}

/// The one MeshGateway among `gateways` (name, spec) whose selectors match a Dataplane's
/// gateway `tags`; otherwise why none is configured.
pub fn binding<'a>(
    gateways: impl IntoIterator<Item = (&'a String, &'a MeshGatewaySpec)>,
    tags: &Tags,
) -> Result<(&'a String, &'a MeshGatewaySpec), String> {
    let matching: Vec<(&String, &MeshGatewaySpec)> = gateways
        .into_iter()
        .filter(|(_, g)| {
            g.selectors
                .iter()
                .any(|s| s.match_tags.iter().all(|(k, v)| tags.get(k) == Some(v)))
        })
        .collect();
    match matching.as_slice() {
        [] => Err("no MeshGateway selects this Dataplane".into()),
        [one] => Ok(*one),
        many => {
            let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
            Err(format!(
                "MeshGateways {} all select this Dataplane; a Dataplane binds to exactly one, so none is configured",
                names.join(", ")
            ))
        }
    }
}

/// Whether a route's `targetRef` names the MeshGateway `gateway`.
pub fn targets_gateway(target: Option<&atoll_model::types::TargetRef>, gateway: &str) -> bool {
    target
        .is_some_and(|t| t.kind == atoll_model::types::TargetKind::MeshGateway && t.name == gateway)
}

/// The tags a listener is known by: Dataplane tags, then gateway tags, then listener tags.
pub fn combined_tags(dataplane: &Tags, gateway: &Tags, listener: &Tags) -> Tags {
    let mut tags = dataplane.clone();
    tags.extend(gateway.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags.extend(listener.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

fn attaches(target_tags: Option<&Tags>, listener_tags: &Tags) -> bool {
    target_tags.is_none_or(|wanted| wanted.iter().all(|(k, v)| listener_tags.get(k) == Some(v)))
}

pub fn generate(input: &GatewayInput<'_>) -> GatewayOutput {
    let mut out = GatewayOutput::default();
    let mut by_port: BTreeMap<u32, Vec<&GatewayListener>> = BTreeMap::new();
    for listener in input.spec.conf.iter().flat_map(|c| &c.listeners) {
        by_port.entry(listener.port).or_default().push(listener);
    }
    for (port, group) in by_port {
        let name = format!("{}:{}:{port}", input.mesh, input.gateway);
        if group.iter().any(|l| l.cross_mesh) && input.cross_mesh_tls.is_none() {
            out.problems.push(format!(
                "port {port}: crossMesh listeners need mTLS on the gateway's mesh; left out"
            ));
            continue;
        }
        let chains = match group[0].protocol.clone() {
            GatewayProtocol::Http => vec![http_chain(input, &name, &group, &mut out)],
            GatewayProtocol::Https => group
                .iter()
                .filter_map(|l| https_chain(input, &name, l, &mut out))
                .collect(),
            GatewayProtocol::Tls | GatewayProtocol::Tcp => group
                .iter()
                .filter_map(|l| tcp_chain(input, &name, l, &mut out))
                .collect(),
            other => {
                out.problems.push(format!(
                    "port {port}: protocol {} is not served",
                    other.as_str()
                ));
                Vec::new()
            }
        };
        if chains.is_empty() {
            continue;
        }
        out.listeners
            .push(filters::listener(&name, input.address, port, chains));
    }
    out
}

fn listener_tags(input: &GatewayInput<'_>, listener: &GatewayListener) -> Tags {
    combined_tags(input.dataplane_tags, &input.spec.tags, &listener.tags)
}

/// The HTTP routes attached to a listener; their backends are recorded as needed clusters.
fn http_routes_for<'a>(
    input: &GatewayInput<'a>,
    listener: &GatewayListener,
    out: &mut GatewayOutput,
) -> Vec<(&'a str, &'a MeshHttpRouteSpec)> {
    let tags = listener_tags(input, listener);
    let attached: Vec<(&str, &MeshHttpRouteSpec)> = input
        .http_routes
        .iter()
        .copied()
        .filter(|(_, r)| attaches(r.target_ref.as_ref().map(|t| &t.tags), &tags))
        .filter(|(_, r)| routes::applies_to_host(r, listener.effective_hostname()))
        .collect();
    for (_, route) in &attached {
        for backend in routes::backends(route) {
            out.backends.insert(cluster_name(backend), backend.clone());
        }
    }
    attached
}

fn with_limit(name: &str, listener: &GatewayListener, mut chain: Vec<Filter>) -> Vec<Filter> {
    let limit = listener.connection_limit();
    if limit > 0 {
        chain.insert(0, filters::connection_limit(name, limit));
    }
    chain
}

/// A virtual host, recorded among the output's hosts with the tags of its `listeners`.
fn virtual_host(
    name: &str,
    hostname: &str,
    routes: &[(&str, &MeshHttpRouteSpec)],
    tags: Vec<Tags>,
    out: &mut GatewayOutput,
) -> VirtualHost {
    let host = VirtualHost {
        name: format!("{name}:{hostname}"),
        domains: vec![hostname.to_string()],
        routes: routes::for_host_named(hostname, routes),
        ..Default::default()
    };
    let mut names: Vec<String> = routes.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    names.dedup();
    out.hosts.push(GatewayHost {
        name: host.name.clone(),
        tags,
        routes: names,
    });
    host
}

fn http_chain(
    input: &GatewayInput<'_>,
    name: &str,
    group: &[&GatewayListener],
    out: &mut GatewayOutput,
) -> FilterChain {
    // One virtual host per hostname, holding the routes of every listener with that hostname.
    // A crossMesh listener without one is reached at `internal.<gateway>.<mesh>.mesh`.
    let mut hosts: BTreeMap<String, Vec<(&str, &MeshHttpRouteSpec)>> = BTreeMap::new();
    let mut tags: BTreeMap<String, Vec<Tags>> = BTreeMap::new();
    let mut order = Vec::new();
    for listener in group {
        let host = if listener.cross_mesh && listener.hostname.is_empty() {
            format!("internal.{}.{}.mesh", input.gateway, input.mesh)
        } else {
            listener.effective_hostname().to_string()
        };
        if !hosts.contains_key(&host) {
            order.push(host.clone());
        }
        let routes = http_routes_for(input, listener, out);
        tags.entry(host.clone())
            .or_default()
            .push(listener_tags(input, listener));
        hosts.entry(host).or_default().extend(routes);
    }
    let virtual_hosts = order
        .iter()
        .map(|host| {
            let listeners = tags.remove(host).unwrap_or_default();
            virtual_host(name, host, &hosts[host], listeners, out)
        })
        .collect();
    let routes = RouteConfiguration {
        name: name.to_string(),
        virtual_hosts,
        ..Default::default()
    };
    // All listeners on a port share one chain, so the tightest limit among them applies.
    let limit = group
        .iter()
        .map(|l| l.connection_limit())
        .filter(|l| *l > 0)
        .min();
    let mut chain = vec![filters::http_manager(name, routes)];
    if let Some(limit) = limit {
        chain.insert(0, filters::connection_limit(name, limit));
    }
    let cross_mesh = group.iter().any(|l| l.cross_mesh);
    FilterChain {
        filters: chain,
        transport_socket: if cross_mesh {
            input.cross_mesh_tls.clone()
        } else {
            None
        },
        ..Default::default()
    }
}

fn sni_match(listener: &GatewayListener) -> Option<FilterChainMatch> {
    let host = listener.effective_hostname();
    (host != "*").then(|| FilterChainMatch {
        server_names: vec![host.to_string()],
        ..Default::default()
    })
}

fn certificates(
    input: &GatewayInput<'_>,
    listener: &GatewayListener,
    out: &mut GatewayOutput,
) -> Option<Vec<(String, String)>> {
    let sources = listener
        .tls
        .as_ref()
        .map(|t| t.certificates.as_slice())
        .unwrap_or_default();
    let mut certs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        match (input.certificate)(source) {
            Ok(cert) => certs.push(cert),
            Err(reason) => {
                out.problems.push(format!(
                    "port {} hostname {}: tls.certificates[{i}]: {reason}",
                    listener.port,
                    listener.effective_hostname()
                ));
                return None;
            }
        }
    }
    if certs.is_empty() {
        out.problems.push(format!(
            "port {} hostname {}: TLS termination needs a certificate",
            listener.port,
            listener.effective_hostname()
        ));
        return None;
    }
    Some(certs)
}

fn https_chain(
    input: &GatewayInput<'_>,
    name: &str,
    listener: &GatewayListener,
    out: &mut GatewayOutput,
) -> Option<FilterChain> {
    let certs = certificates(input, listener, out)?;
    let host = listener.effective_hostname();
    let routes = http_routes_for(input, listener, out);
    let config = RouteConfiguration {
        name: format!("{name}:{host}"),
        virtual_hosts: vec![virtual_host(
            name,
            host,
            &routes,
            vec![listener_tags(input, listener)],
            out,
        )],
        ..Default::default()
    };
    Some(FilterChain {
        name: format!("{name}:{host}"),
        filter_chain_match: sni_match(listener),
        transport_socket: Some(super::tls::terminate(&certs)),
        filters: with_limit(name, listener, vec![filters::http_manager(name, config)]),
        ..Default::default()
    })
}

fn tcp_chain(
    input: &GatewayInput<'_>,
    name: &str,
    listener: &GatewayListener,
    out: &mut GatewayOutput,
) -> Option<FilterChain> {
    let tags = listener_tags(input, listener);
    let backends: Vec<&BackendRef> = input
        .tcp_routes
        .iter()
        .filter(|r| attaches(r.target_ref.as_ref().map(|t| &t.tags), &tags))
        .flat_map(|r| &r.to)
        .flat_map(|to| &to.rules)
        .filter_map(|rule| rule.default.as_ref())
        .map(|conf| &conf.backend_refs)
        .find(|refs| !refs.is_empty())
        .map(|refs| refs.iter().collect())
        .unwrap_or_default();
    if backends.is_empty() {
        out.problems.push(format!(
            "port {} hostname {}: no MeshTCPRoute with backends attaches to this listener",
            listener.port,
            listener.effective_hostname()
        ));
        return None;
    }
    let weighted: Vec<(String, u32)> = backends
        .iter()
        .map(|b| (cluster_name(b), b.weight.unwrap_or(1)))
        .collect();
    for backend in backends {
        out.backends.insert(cluster_name(backend), backend.clone());
    }
    let terminate = listener.protocol == GatewayProtocol::Tls
        && listener
            .tls
            .as_ref()
            .is_some_and(|t| t.mode == TlsMode::Terminate);
    let transport_socket = if terminate {
        Some(super::tls::terminate(&certificates(input, listener, out)?))
    } else {
        None
    };
    let host = listener.effective_hostname();
    Some(FilterChain {
        name: format!("{name}:{host}"),
        filter_chain_match: if listener.protocol == GatewayProtocol::Tls {
            sni_match(listener)
        } else {
            None
        },
        transport_socket,
        filters: with_limit(name, listener, vec![filters::tcp_proxy(name, &weighted)]),
        ..Default::default()
    })
}
