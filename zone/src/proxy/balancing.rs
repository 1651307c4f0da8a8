//! MeshLoadBalancingStrategy on a sidecar's or a gateway's clusters: the endpoints in the
//! tiers its locality rules give, the balancer it names, and its hash policies on the routes
//! and TCP proxies that send to those clusters.

use std::collections::BTreeMap;

use atoll_model::Kind;
use atoll_model::types::{DataplaneSpec, HashPolicy, LoadBalancingConf, Tags};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{Route, route, route_action};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};

use super::build::Context;
use super::locality;
use super::policies::conf;
use crate::policy::rules::Rules;
use crate::xds::clusters;
use crate::xds::policy::apply::{Edits, edit};
use crate::xds::policy::balancer;
use crate::xds::snapshot::{CLUSTER, LISTENER};

/// The first cluster a route or TCP proxy sends to (a weighted split's first backend).
fn route_cluster(route: &Route) -> Option<&str> {
    let Some(route::Action::Route(action)) = &route.action else {
        return None;
    };
    match &action.cluster_specifier {
        Some(route_action::ClusterSpecifier::Cluster(name)) => Some(name),
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            w.clusters.first().map(|c| c.name.as_str())
        }
        _ => None,
    }
}

fn tcp_cluster(proxy: &TcpProxy) -> Option<&str> {
    match &proxy.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(name)) => Some(name),
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
            w.clusters.first().map(|c| c.name.as_str())
        }
        None => None,
    }
}

/// A proxy's own tags: its inbounds' (the first inbound's value when they differ) or its
/// gateway's.
pub(crate) fn own_tags(dp: &DataplaneSpec) -> Tags {
    let mut tags = Tags::new();
    if let Some(net) = &dp.networking {
        for t in net
            .inbound
            .iter()
            .map(|i| &i.tags)
            .chain(net.gateway.iter().map(|g| &g.tags))
        {
            for (k, v) in t {
                tags.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    tags
}

impl Context<'_> {
    /// Applies the MeshLoadBalancingStrategy rules to every cluster of a destination they
    /// name; `caller` are the proxy's own tags, which affinity tags compare against.
    pub(super) fn apply_load_balancing(&mut self, rules: &Rules, caller: &Tags) {
        let Some(kind) = rules.get(&Kind::MeshLoadBalancingStrategy) else {
            return;
        };
        let clusters: Vec<(String, String)> = self
            .cluster_services
            .iter()
            .map(|(c, s)| (c.clone(), s.clone()))
            .collect();
        let mut hashing: BTreeMap<String, Vec<HashPolicy>> = BTreeMap::new();
        for (cluster, service) in clusters {
            let Some(lb): Option<LoadBalancingConf> = conf(kind.to.get(&service)) else {
                continue;
            };
            let mut by_locality = false;
            if let Some(found) = self.cluster_endpoints.get(&cluster) {
                let plan = locality::plan(
                    found,
                    lb.locality_awareness.as_ref(),
                    &self.world.local_zone,
                    caller,
                );
                by_locality = plan.by_locality;
                let assignment = clusters::load_assignment_by_locality(
                    &cluster,
                    &plan.tiers,
                    plan.overprovisioning,
                );
                self.built.snapshot.add_endpoints(&assignment);
            }
            let mut panic_setting_lost = false;
            self.built
                .snapshot
                .update::<Cluster>(CLUSTER, &cluster, |c| {
                    panic_setting_lost = by_locality && balancer::fails_on_panic(c);
                    balancer::cluster(c, lb.load_balancer.as_ref(), by_locality)
                });
            if panic_setting_lost {
                self.problem(format!(
                    "{cluster}: MeshHealthCheck failTrafficOnPanic does not combine with MeshLoadBalancingStrategy affinityTags (Envoy balances by locality weight then, which has no such setting); the affinity tags win"
                ));
            }
            if let Some(policies) = lb.load_balancer.as_ref().map(|b| b.hash_policies())
                && !policies.is_empty()
            {
                hashing.insert(cluster, policies.to_vec());
            }
        }
        if hashing.is_empty() {
            return;
        }
        let on_route = |r: &mut Route| {
            let policies = route_cluster(r).and_then(|c| hashing.get(c));
            if let (Some(policies), Some(route::Action::Route(action))) = (policies, &mut r.action)
            {
                action.hash_policy = balancer::route_hash(policies);
            }
        };
        let on_tcp = |p: &mut TcpProxy| {
            if let Some(policies) = tcp_cluster(p).and_then(|c| hashing.get(c)) {
                p.hash_policy = balancer::tcp_hash(policies);
            }
        };
        let edits = Edits {
            route: Some(&on_route),
            tcp: Some(&on_tcp),
            ..Default::default()
        };
        for name in self.built.snapshot.names(LISTENER) {
            self.built
                .snapshot
                .update::<Listener>(LISTENER, &name, |l| edit(l, &edits));
        }
    }
}
