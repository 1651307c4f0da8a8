//! Policies on a sidecar: the rules the policy module computes for this proxy, applied to the
//! listeners and clusters already built: MeshTrafficPermission as RBAC on every inbound (with
//! mesh mTLS, which is what identifies callers), MeshTimeout on inbounds and outbounds,
//! MeshRetry on outbounds.

use atoll_model::Kind;
use atoll_model::types::{
    DataplaneSpec, IdentityMatcher, PROTOCOL_TAG, PermissionAction, RetryConf, SpiffeIdMatchType,
    TimeoutConf, TrafficPermissionConf, TrafficPermissionRuleConf,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::Route;
use serde::de::DeserializeOwned;

use super::build::Context;
use super::deps::Dep;
use crate::policy::rules::{self, Merged, Policy, Rules};
use crate::world::World;
use crate::xds::policy::apply::{Edits, edit};
use crate::xds::policy::rbac::{IdMatch, Identities, Permissions, rbac};
use crate::xds::policy::{retry, timeout};
use crate::xds::sidecar::OutboundTarget;
use crate::xds::snapshot::{CLUSTER, LISTENER};

/// A merged configuration as its policy type's struct (validation guarantees the shape).
pub(super) fn conf<T: DeserializeOwned + Default>(merged: Option<&Merged>) -> Option<T> {
    merged.and_then(|m| serde_json::from_value(m.conf.clone()).ok())
}

/// The configuration of `kind` for the sidecar route `route` to `service`: the service's,
/// with the `to[]` entries naming the route's MeshHTTPRoute merged over it.
fn on_route<T: DeserializeOwned>(
    rules: &Rules,
    kind: Kind,
    service: &str,
    route: &str,
) -> Option<T> {
    let of_kind = rules.get(&kind)?;
    let base = of_kind.to.get(service).map(|m| m.conf.clone());
    let conf = match (base, of_kind.to_routes.get(route)) {
        (base, Some(named)) if !route.is_empty() => {
            let mut conf = base.unwrap_or_else(|| serde_json::json!({}));
            crate::policy::merge::merge(&mut conf, &named.conf);
            conf
        }
        (Some(base), _) => base,
        (None, _) => return None,
    };
    serde_json::from_value(conf).ok()
}

/// MeshTrafficPermission `rules[]` matchers as the RBAC builder takes them.
fn identities(conf: &TrafficPermissionRuleConf) -> Identities {
    let list = |matchers: &[IdentityMatcher]| -> Vec<IdMatch> {
        matchers
            .iter()
            .filter_map(|m| m.spiffe_id.as_ref())
            .map(|id| match id.match_type {
                SpiffeIdMatchType::Prefix => IdMatch::Prefix(id.value.clone()),
                _ => IdMatch::Exact(id.value.clone()),
            })
            .collect()
    };
    Identities {
        deny: list(&conf.deny),
        allow: list(&conf.allow),
        allow_with_shadow_deny: list(&conf.allow_with_shadow_deny),
    }
}

impl<'a> Context<'a> {
    /// Every policy of this proxy's mesh, recorded as a dependency.
    pub(super) fn mesh_policies(&mut self) -> Vec<&'a Policy> {
        let mesh = self.mesh().to_string();
        self.built.deps.insert(Dep::Policies(mesh.clone()));
        let world: &'a World = self.world;
        world
            .policies
            .get(&mesh)
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }
}

impl Context<'_> {
    /// The rules of every policy of this proxy's mesh for the proxy `dp`.
    pub(super) fn policy_rules(&mut self, dp: &DataplaneSpec, destinations: &[String]) -> Rules {
        let policies = self.mesh_policies();
        let mesh = self.mesh().to_string();
        let external: std::collections::BTreeSet<String> = self
            .world
            .external_services
            .keys()
            .filter(|(m, _)| *m == mesh)
            .map(|(_, name)| name.clone())
            .collect();
        rules::compute_full(dp, destinations, &external, None, policies)
    }

    /// Applies the policies to a sidecar built with `outbounds`.
    pub(super) fn apply_sidecar_policies(
        &mut self,
        dp: &DataplaneSpec,
        outbounds: &[OutboundTarget],
    ) {
        // Every service a cluster goes to, route backends included: cluster-level policies
        // apply to each of a service's clusters.
        for outbound in outbounds {
            self.cluster_services
                .entry(outbound.cluster.clone())
                .or_insert_with(|| outbound.service.clone());
        }
        let destinations: Vec<String> = outbounds
            .iter()
            .map(|o| o.service.clone())
            .chain(self.cluster_services.values().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let rules = self.policy_rules(dp, &destinations);
        let inbounds: Vec<String> = self
            .built
            .snapshot
            .names(LISTENER)
            .into_iter()
            .filter(|n| n.starts_with("inbound:"))
            .collect();
        let permission = rules.get(&Kind::MeshTrafficPermission);
        let inbound_timeout: Option<TimeoutConf> = conf(
            rules
                .get(&Kind::MeshTimeout)
                .and_then(|r| r.from_any.as_ref()),
        );
        let permissions = self.mtls.then(|| {
            let action = |m: &Merged| conf::<TrafficPermissionConf>(Some(m)).map(|c| c.action);
            Permissions {
                default: permission
                    .and_then(|p| p.from_any.as_ref())
                    .and_then(action)
                    .filter(|a| *a != PermissionAction::Unset),
                services: permission
                    .map(|p| {
                        p.from_service
                            .iter()
                            .filter_map(|(s, m)| Some((s.clone(), action(m)?)))
                            .collect()
                    })
                    .unwrap_or_default(),
                identities: permission
                    .and_then(|p| conf::<TrafficPermissionRuleConf>(p.identities.as_ref()))
                    .map(|c| identities(&c))
                    .unwrap_or_default(),
            }
        });
        for name in inbounds {
            let set_timeout = |hcm: &mut _| {
                if let Some(t) = &inbound_timeout {
                    timeout::http_manager(hcm, t)
                }
            };
            let route_timeout = |r: &mut _| {
                if let Some(t) = &inbound_timeout {
                    timeout::route(r, t)
                }
            };
            let tcp_timeout = |p: &mut _| {
                if let Some(t) = &inbound_timeout {
                    timeout::tcp_proxy(p, t)
                }
            };
            let edits = Edits {
                http: Some(&set_timeout),
                route: Some(&route_timeout),
                tcp: Some(&tcp_timeout),
                rbac: permissions.as_ref().map(|p| rbac(self.mesh(), p)),
            };
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| edit(l, &edits));
        }
        let per_route = [Kind::MeshTimeout, Kind::MeshRetry]
            .iter()
            .any(|k| rules.get(k).is_some_and(|r| !r.to_routes.is_empty()));
        for outbound in outbounds {
            let timeout_conf: Option<TimeoutConf> = conf(
                rules
                    .get(&Kind::MeshTimeout)
                    .and_then(|r| r.to.get(&outbound.service)),
            );
            let retry_conf: Option<RetryConf> = conf(
                rules
                    .get(&Kind::MeshRetry)
                    .and_then(|r| r.to.get(&outbound.service)),
            );
            if timeout_conf.is_none() && retry_conf.is_none() && !per_route {
                continue;
            }
            let grpc = self.service_protocol(&outbound.service).as_deref() == Some("grpc");
            let http = |hcm: &mut _| {
                if let Some(t) = &timeout_conf {
                    timeout::http_manager(hcm, t)
                }
            };
            let route = |r: &mut Route| {
                let (timeout, retry): (Option<TimeoutConf>, Option<RetryConf>) = (
                    on_route(&rules, Kind::MeshTimeout, &outbound.service, &r.name),
                    on_route(&rules, Kind::MeshRetry, &outbound.service, &r.name),
                );
                if let Some(t) = &timeout {
                    timeout::route(r, t)
                }
                if let Some(c) = &retry {
                    retry::route(r, c, grpc)
                }
            };
            let tcp = |p: &mut _| {
                if let Some(t) = &timeout_conf {
                    timeout::tcp_proxy(p, t)
                }
                if let Some(c) = &retry_conf {
                    retry::tcp_proxy(p, c)
                }
            };
            let edits = Edits {
                http: Some(&http),
                route: Some(&route),
                tcp: Some(&tcp),
                rbac: None,
            };
            let name = format!("outbound:{}:{}", outbound.address, outbound.port);
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| edit(l, &edits));
            if let Some(t) = &timeout_conf {
                self.built
                    .snapshot
                    .update::<Cluster>(CLUSTER, &outbound.cluster, |c| timeout::cluster(c, t));
            }
        }
        self.apply_cluster_policies(&rules);
        self.apply_inbound_breakers(&rules, dp);
        self.apply_load_balancing(&rules, &super::balancing::own_tags(dp));
        self.apply_limits(&rules, dp, outbounds);
        self.apply_metrics(&rules, dp);
    }

    /// A service's `kuma.io/protocol` tag, from any of its instances.
    pub(super) fn service_protocol(&self, service: &str) -> Option<String> {
        self.world
            .endpoints
            .get(&(self.mesh().to_string(), service.to_string()))
            .and_then(|set| set.values().next())
            .and_then(|e| e.tags.get(PROTOCOL_TAG).cloned())
    }
}
