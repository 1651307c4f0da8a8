//! Policies on a built-in gateway: MeshTimeout and MeshRetry `to[]` entries of kind `Mesh`
//! on the routes of the virtual hosts and MeshHTTPRoutes they select. Each Envoy route is
//! named after its MeshHTTPRoute, which is how a per-route policy finds its routes.

use atoll_model::Kind;
use atoll_model::types::{DataplaneSpec, RetryConf, TimeoutConf};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::Route;

use super::build::Context;
use crate::policy::rules::{self, GatewayScope, Merged, Rules};
use crate::xds::policy::routes::edit_routes;
use crate::xds::policy::{retry, timeout};
use crate::xds::snapshot::LISTENER;

/// The merged configuration of one kind for (virtual host, route), as its struct.
fn route_conf<T: serde::de::DeserializeOwned>(
    rules: &Rules,
    kind: Kind,
    host: &str,
    route: &str,
) -> Option<T> {
    let merged: &Merged = rules
        .get(&kind)?
        .gateway_routes
        .get(&(host.to_string(), route.to_string()))?;
    serde_json::from_value(merged.conf.clone()).ok()
}

impl Context<'_> {
    /// The rules of every policy of this gateway's mesh for the gateway `dp` in `scope`.
    pub(super) fn gateway_rules(&mut self, dp: &DataplaneSpec, scope: &GatewayScope) -> Rules {
        let policies = self.mesh_policies();
        let destinations: Vec<String> = self
            .cluster_services
            .values()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        rules::compute_for(dp, &destinations, Some(scope), policies)
    }

    /// Applies the policies to a gateway whose listeners and clusters are in the snapshot.
    pub(super) fn apply_gateway_policies(&mut self, dp: &DataplaneSpec, scope: &GatewayScope) {
        let rules = self.gateway_rules(dp, scope);
        self.apply_load_balancing(&rules, &super::balancing::own_tags(dp));
        if rules.values().all(|r| r.gateway_routes.is_empty()) {
            return;
        }
        let apply = |host: &str, route: &mut Route| {
            let name = route.name.clone();
            if let Some(t) = route_conf::<TimeoutConf>(&rules, Kind::MeshTimeout, host, &name) {
                timeout::route(route, &t);
            }
            if let Some(c) = route_conf::<RetryConf>(&rules, Kind::MeshRetry, host, &name) {
                retry::route(route, &c, false);
            }
        };
        for name in self.built.snapshot.names(LISTENER) {
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| edit_routes(l, &apply));
        }
    }
}
