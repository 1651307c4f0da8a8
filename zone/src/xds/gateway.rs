//! A MeshGateway's listeners as Envoy listeners: listeners sharing a port become one Envoy
//! listener, and each hostname on an HTTP port becomes a virtual host (exact, wildcard, or the
//! catch-all `*` when no hostname is set). A request for a hostname no listener names gets 404.

use std::collections::BTreeMap;

use atoll_model::types::{GatewayListener, GatewayProtocol, MeshGatewaySpec, MeshHttpRouteSpec};
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::util::pack_any;

/// What the generator needs to know about the gateway proxy.
pub struct GatewayProxy<'a> {
    pub gateway: &'a str,
    pub mesh: &'a str,
    /// The address the Dataplane's listeners bind.
    pub address: &'a str,
}

/// One Envoy listener per port, with the MeshHTTPRoutes that target the gateway attached to
/// their hostnames. Ports whose protocol this build does not generate yet are left out (and
/// listed in the second value), never half-configured.
pub fn listeners(
    proxy: &GatewayProxy<'_>,
    spec: &MeshGatewaySpec,
    routes: &[&MeshHttpRouteSpec],
) -> (Vec<Listener>, Vec<u32>) {
    let mut by_port: BTreeMap<u32, Vec<&GatewayListener>> = BTreeMap::new();
    for listener in spec.conf.iter().flat_map(|c| &c.listeners) {
        by_port.entry(listener.port).or_default().push(listener);
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (port, group) in by_port {
        match group[0].protocol {
            GatewayProtocol::Http => out.push(http_listener(proxy, port, &group, routes)),
            _ => skipped.push(port),
        }
    }
    (out, skipped)
}

fn listener_name(proxy: &GatewayProxy<'_>, port: u32) -> String {
    format!("{}:{}:{port}", proxy.mesh, proxy.gateway)
}

fn http_listener(
    proxy: &GatewayProxy<'_>,
    port: u32,
    group: &[&GatewayListener],
    routes: &[&MeshHttpRouteSpec],
) -> Listener {
    let name = listener_name(proxy, port);
    let virtual_hosts = group
        .iter()
        .map(|l| {
            let host = l.effective_hostname();
            VirtualHost {
                name: format!("{name}:{host}"),
                domains: vec![host.to_string()],
                routes: super::routes::for_host(host, routes),
                ..Default::default()
            }
        })
        .collect();
    let manager = HttpConnectionManager {
        stat_prefix: name.replace(':', "_"),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
            RouteConfiguration {
                name: name.clone(),
                virtual_hosts,
                ..Default::default()
            },
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
    Listener {
        name,
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: proxy.address.into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(manager))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::bootstrap::v3::{Bootstrap, bootstrap::StaticResources};
    use prost::Message;

    use super::*;

    fn spec(yaml: &str) -> MeshGatewaySpec {
        let docs = atoll_model::parse_documents(yaml);
        match docs.into_iter().next().map(|d| d.outcome) {
            Some(Ok(resource)) => match resource.spec {
                atoll_model::Spec::MeshGateway(spec) => spec,
                other => panic!("not a gateway: {other:?}"),
            },
            other => panic!("invalid test gateway: {other:?}"),
        }
    }

    const TWO_HOSTS: &str = "type: MeshGateway
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
  - port: 8080
    protocol: HTTP
    hostname: '*.bar.example.com'
  - port: 9090
    protocol: HTTP
  - port: 9443
    protocol: TLS
    tls:
      mode: PASSTHROUGH
";

    fn route_config(listener: &Listener) -> RouteConfiguration {
        let Some(filter::ConfigType::TypedConfig(any)) =
            &listener.filter_chains[0].filters[0].config_type
        else {
            panic!("no typed config");
        };
        let manager = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
        match manager.route_specifier {
            Some(http_connection_manager::RouteSpecifier::RouteConfig(config)) => config,
            other => panic!("no inline route config: {other:?}"),
        }
    }

    #[test]
    fn listeners_sharing_a_port_become_one_with_a_virtual_host_per_hostname() {
        let proxy = GatewayProxy {
            gateway: "edge",
            mesh: "default",
            address: "127.0.0.1",
        };
        let (listeners, skipped) = listeners(&proxy, &spec(TWO_HOSTS), &[]);
        assert_eq!(skipped, vec![9443], "TLS is not generated in this build");
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["default:edge:8080", "default:edge:9090"]);
        let domains: Vec<Vec<String>> = route_config(&listeners[0])
            .virtual_hosts
            .into_iter()
            .map(|v| v.domains)
            .collect();
        assert_eq!(
            domains,
            [
                vec!["foo.example.com".to_string()],
                vec!["*.bar.example.com".to_string()]
            ]
        );
        let catch_all: Vec<Vec<String>> = route_config(&listeners[1])
            .virtual_hosts
            .into_iter()
            .map(|v| v.domains)
            .collect();
        assert_eq!(catch_all, [vec!["*".to_string()]]);
    }

    /// Runs `envoy --mode validate` on a bootstrap holding `listeners` and a static cluster for
    /// each backend the test routes name.
    fn envoy_validate(listeners: Vec<Listener>) -> Result<(), String> {
        use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
        let envoy = atoll_e2e::envoy::binary().expect("an Envoy binary");
        let clusters = ["api_80", "api-canary_80", "web"]
            .into_iter()
            .map(|name| Cluster {
                name: name.into(),
                cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Static as i32,
                )),
                ..Default::default()
            })
            .collect();
        let bootstrap = Bootstrap {
            static_resources: Some(StaticResources {
                listeners,
                clusters,
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

    #[test]
    fn real_envoy_accepts_the_generated_listeners() {
        let proxy = GatewayProxy {
            gateway: "edge",
            mesh: "default",
            address: "127.0.0.1",
        };
        let routes = crate::xds::routes::tests::route_spec(crate::xds::routes::tests::ROUTES);
        let (listeners, _) = listeners(&proxy, &spec(TWO_HOSTS), &[&routes]);
        if let Err(log) = envoy_validate(listeners.clone()) {
            panic!("envoy rejected the configuration:\n{log}");
        }
        // The check has teeth: two listeners on one address and port are refused.
        let mut clash = listeners.clone();
        let mut twin = listeners[0].clone();
        twin.name = "twin".into();
        clash.push(twin);
        assert!(
            envoy_validate(clash).is_err(),
            "envoy --mode validate must reject a port clash"
        );
    }
}
