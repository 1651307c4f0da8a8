//! Policies that act on a sidecar's clusters rather than its listeners: MeshCircuitBreaker
//! (connection limits, outlier detection) and MeshHealthCheck (active checks). Each applies
//! to every cluster of its destination service: the outbound's own, and those of the
//! service's subsets, ports and route backends, so a route cannot route around them; inbound
//! circuit breakers apply to the clusters to the application.

use atoll_model::Kind;
use atoll_model::types::{CircuitBreakerConf, DataplaneSpec, HealthCheckConf};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;

use super::build::Context;
use super::policies::conf;
use crate::policy::rules::Rules;
use crate::xds::external;
use crate::xds::policy::{circuit_breaker, health_check};
use crate::xds::snapshot::CLUSTER;

impl Context<'_> {
    pub(super) fn apply_cluster_policies(&mut self, rules: &Rules) {
        let for_service =
            |kind: Kind, service: &str| rules.get(&kind).and_then(|r| r.to.get(service));
        let clusters: Vec<(String, String)> = self
            .cluster_services
            .iter()
            .map(|(c, s)| (c.clone(), s.clone()))
            .collect();
        for (cluster, service) in clusters {
            let breaker: Option<CircuitBreakerConf> =
                conf(for_service(Kind::MeshCircuitBreaker, &service));
            let check: Option<HealthCheckConf> = conf(for_service(Kind::MeshHealthCheck, &service));
            if breaker.is_none() && check.is_none() {
                continue;
            }
            let protocol = self.destination_protocol(&cluster, &service);
            let mut checked = true;
            self.built
                .snapshot
                .update::<Cluster>(CLUSTER, &cluster, |c| {
                    if let Some(b) = &breaker {
                        circuit_breaker::cluster(c, b);
                    }
                    if let Some(h) = &check {
                        checked = health_check::cluster(c, h, &protocol);
                    }
                });
            if !checked {
                self.problem(format!(
                    "MeshHealthCheck for {service}: no check for its protocol {protocol} (http and http2 take http, tcp takes tcp; tcp replaces http or grpc only when that one is present and disabled); {cluster} is not health checked"
                ));
            }
        }
    }

    /// MeshCircuitBreaker `from[]` (or `rules[]`): on the cluster from each inbound to its
    /// application, which every caller shares (so only entries for every caller exist).
    pub(super) fn apply_inbound_breakers(&mut self, rules: &Rules, dp: &DataplaneSpec) {
        let Some(breaker): Option<CircuitBreakerConf> = conf(
            rules
                .get(&Kind::MeshCircuitBreaker)
                .and_then(|r| r.from_any.as_ref()),
        ) else {
            return;
        };
        for inbound in dp.networking.iter().flat_map(|n| &n.inbound) {
            let local = format!("localhost:{}", inbound.service_port.unwrap_or(inbound.port));
            self.built
                .snapshot
                .update::<Cluster>(CLUSTER, &local, |c| circuit_breaker::cluster(c, &breaker));
        }
    }

    /// What a destination speaks: a MeshExternalService's `match.protocol`, a mesh service's
    /// `kuma.io/protocol` tag; `tcp` when neither says.
    fn destination_protocol(&self, cluster: &str, service: &str) -> String {
        if cluster == external::cluster_name(service)
            && let Some(es) = self
                .world
                .external_services
                .get(&(self.mesh().to_string(), service.to_string()))
        {
            let protocol = es
                .spec
                .match_
                .as_ref()
                .map(|m| m.protocol.as_str().to_string())
                .unwrap_or_default();
            return if protocol.is_empty() {
                "tcp".into()
            } else {
                protocol
            };
        }
        self.service_protocol(service)
            .unwrap_or_else(|| "tcp".into())
    }
}
