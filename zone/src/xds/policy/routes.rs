//! Edits the routes of a built gateway listener knowing where each one sits: its virtual host
//! and the MeshHTTPRoute it came from (the Envoy route's name), so a policy can configure some
//! routes of a listener and not others.

use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::util::pack_any;
use prost::Message;

const HCM: &str = "envoy.filters.network.http_connection_manager";

/// Calls `edit(virtual host name, route)` for every route inlined in the listener's HTTP
/// connection managers.
pub fn edit_routes(listener: &mut Listener, edit: &dyn Fn(&str, &mut Route)) {
    for chain in &mut listener.filter_chains {
        for f in &mut chain.filters {
            if f.name != HCM {
                continue;
            }
            let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                continue;
            };
            let Ok(mut hcm) = HttpConnectionManager::decode(any.value.as_slice()) else {
                continue;
            };
            if let Some(http_connection_manager::RouteSpecifier::RouteConfig(config)) =
                hcm.route_specifier.as_mut()
            {
                for host in &mut config.virtual_hosts {
                    for route in &mut host.routes {
                        edit(&host.name, route);
                    }
                }
            }
            f.config_type = Some(filter::ConfigType::TypedConfig(pack_any(hcm)));
        }
    }
}
