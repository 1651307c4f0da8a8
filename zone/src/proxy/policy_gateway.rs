//! Policies on a built-in gateway: MeshTimeout, MeshRetry and MeshRateLimit `to[]` entries of
//! kind `Mesh` on the routes of the virtual hosts and MeshHTTPRoutes they select (each Envoy
//! route is named after its MeshHTTPRoute, which is how a per-route policy finds its routes),
//! MeshAccessLog on its connection managers, the cluster policies (MeshCircuitBreaker,
//! MeshHealthCheck, MeshLoadBalancingStrategy) on the clusters its routes send to, and
//! MeshMetric's endpoint.

use atoll_model::Kind;
use atoll_model::types::{
    AccessLogConf, DataplaneSpec, RateLimitConf, RetryConf, SERVICE_TAG, TimeoutConf,
};
use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::Route;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};

use super::build::Context;
use crate::policy::rules::{self, GatewayScope, Merged, Rules};
use crate::xds::policy::apply::{Edits, edit};
use crate::xds::policy::limits::LogContext;
use crate::xds::policy::routes::edit_routes;
use crate::xds::policy::{limits, retry, timeout};
use crate::xds::snapshot::LISTENER;

/// The merged configuration of one kind for (virtual host, route), as its struct.
fn route_conf<T: serde::de::DeserializeOwned>(
    (rules, kind, host, route): (&Rules, Kind, &str, &str),
) -> Option<T> {
    let merged: &Merged = rules
        .get(&kind)?
        .gateway_routes
        .get(&(host.to_string(), route.to_string()))?;
    serde_json::from_value(merged.conf.clone()).ok()
}

impl Context<'_> {
    /// Per virtual host, the access logs MeshAccessLog gives it (the `to[]` entries of kind
    /// Mesh of policies on the gateway or its listeners).
    fn gateway_access_logs(
        &mut self,
        rules: &Rules,
        dp: &DataplaneSpec,
    ) -> Vec<(String, Vec<AccessLog>)> {
        let Some(by_route) = rules.get(&Kind::MeshAccessLog).map(|r| &r.gateway_routes) else {
            return Vec::new();
        };
        let service = dp
            .networking
            .as_ref()
            .and_then(|n| n.gateway.as_ref())
            .and_then(|g| g.tags.get(SERVICE_TAG).cloned())
            .unwrap_or_default();
        let context = LogContext {
            mesh: self.mesh().to_string(),
            // A gateway's callers are outside the mesh.
            source_service: "unknown".into(),
            destination_service: service,
            source_address: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".into(),
            direction: "INBOUND",
            access_log_pipe: self.meta.and_then(|m| m.access_log_pipe.clone()),
        };
        let confs: Vec<AccessLogConf> = by_route
            .values()
            .filter_map(|m| serde_json::from_value(m.conf.clone()).ok())
            .collect();
        self.check_relay(confs.iter());
        let mut out: Vec<(String, Vec<AccessLog>)> = Vec::new();
        for ((host, _), merged) in by_route {
            if out.iter().any(|(h, _)| h == host) {
                continue;
            }
            if let Ok(conf) = serde_json::from_value::<AccessLogConf>(merged.conf.clone()) {
                out.push((
                    host.clone(),
                    limits::access_logs(&conf, &context, limits::DEFAULT_HTTP_FORMAT),
                ));
            }
        }
        out
    }

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
        self.apply_cluster_policies(&rules);
        self.apply_load_balancing(&rules, &super::balancing::own_tags(dp));
        self.apply_metrics(&rules, dp);
        if rules.values().all(|r| r.gateway_routes.is_empty()) {
            return;
        }
        let logs = self.gateway_access_logs(&rules, dp);
        for name in self.built.snapshot.names(LISTENER) {
            let stat = crate::xds::filters::stat(&name);
            let apply = |host: &str, route: &mut Route| {
                let route_name = route.name.clone();
                let conf = |kind| (&rules, kind, host, route_name.as_str());
                if let Some(t) = route_conf::<TimeoutConf>(conf(Kind::MeshTimeout)) {
                    timeout::route(route, &t);
                }
                if let Some(c) = route_conf::<RetryConf>(conf(Kind::MeshRetry)) {
                    retry::route(route, &c, false);
                }
                if let Some(http) = route_conf::<RateLimitConf>(conf(Kind::MeshRateLimit))
                    .and_then(|r| r.local)
                    .and_then(|l| l.http)
                {
                    limits::route_rate_limit(route, &http, &stat);
                }
            };
            let filter = |hcm: &mut HttpConnectionManager| {
                limits::rate_limit_filter(hcm, &stat);
                // Access logs belong to the connection manager: the first of its virtual
                // hosts that a MeshAccessLog configures decides.
                if let Some(http_connection_manager::RouteSpecifier::RouteConfig(config)) =
                    &hcm.route_specifier
                    && let Some(conf) = config
                        .virtual_hosts
                        .iter()
                        .find_map(|h| logs.iter().find(|(host, _)| *host == h.name))
                        .map(|(_, c)| c.clone())
                {
                    hcm.access_log.extend(conf);
                }
            };
            let edits = Edits {
                http: Some(&filter),
                ..Default::default()
            };
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| {
                    edit_routes(l, &apply);
                    edit(l, &edits);
                });
        }
    }
}
