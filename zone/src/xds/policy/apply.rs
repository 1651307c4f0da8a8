//! Edits a built listener in place: the HTTP connection managers and TCP proxies in its
//! filter chains (and their inline routes), and the RBAC filters placed before them.

use envoy_types::pb::envoy::config::listener::v3::{Filter, Listener, filter};
use envoy_types::pb::envoy::config::rbac::v3::Rbac;
use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as HttpRbac;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use prost::Message;

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// What to do to a listener.
#[derive(Default)]
pub struct Edits<'a> {
    pub http: Option<&'a dyn Fn(&mut HttpConnectionManager)>,
    pub route: Option<&'a dyn Fn(&mut Route)>,
    pub tcp: Option<&'a dyn Fn(&mut TcpProxy)>,
    /// RBAC rules and shadow rules, enforced before the HTTP router or the TCP proxy.
    pub rbac: Option<(Rbac, Option<Rbac>)>,
}

fn typed(f: &Filter) -> Option<&Any> {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => Some(any),
        _ => None,
    }
}

pub fn edit(listener: &mut Listener, edits: &Edits<'_>) {
    for chain in &mut listener.filter_chains {
        let mut added = Vec::new();
        for (i, f) in chain.filters.iter_mut().enumerate() {
            let Some(any) = typed(f) else { continue };
            if f.name == HCM {
                let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) else {
                    continue;
                };
                edit_http(&mut hcm, edits, &listener.name);
                f.config_type = Some(filter::ConfigType::TypedConfig(pack_any(hcm)));
            } else if f.name == TCP_PROXY {
                let Ok(mut proxy) = TcpProxy::decode(any.value.as_slice()) else {
                    continue;
                };
                if let Some(tcp) = edits.tcp {
                    tcp(&mut proxy);
                }
                f.config_type = Some(filter::ConfigType::TypedConfig(pack_any(proxy)));
                if let Some((rules, shadow)) = &edits.rbac {
                    added.push((
                        i,
                        Filter {
                            name: "envoy.filters.network.rbac".into(),
                            config_type: Some(filter::ConfigType::TypedConfig(pack_any(
                                NetworkRbac {
                                    rules: Some(rules.clone()),
                                    shadow_rules: shadow.clone(),
                                    stat_prefix: "mesh_traffic_permission".into(),
                                    ..Default::default()
                                },
                            ))),
                        },
                    ));
                }
            }
        }
        for (i, f) in added.into_iter().rev() {
            chain.filters.insert(i, f);
        }
    }
}

fn edit_http(hcm: &mut HttpConnectionManager, edits: &Edits<'_>, listener: &str) {
    if let Some(http) = edits.http {
        http(hcm);
    }
    if let (Some(route), Some(http_connection_manager::RouteSpecifier::RouteConfig(config))) =
        (edits.route, hcm.route_specifier.as_mut())
    {
        for host in &mut config.virtual_hosts {
            for r in &mut host.routes {
                route(r);
            }
        }
    }
    if let Some((rules, shadow)) = &edits.rbac {
        let at = hcm.http_filters.len().saturating_sub(1);
        hcm.http_filters.insert(
            at,
            HttpFilter {
                name: "envoy.filters.http.rbac".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(HttpRbac {
                    rules: Some(rules.clone()),
                    shadow_rules: shadow.clone(),
                    rules_stat_prefix: format!("{}_", crate::xds::filters::stat(listener)),
                    ..Default::default()
                }))),
                ..Default::default()
            },
        );
    }
}
