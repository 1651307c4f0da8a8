//! MeshMetric on a proxy: the Prometheus endpoints its backends ask for, each a listener on
//! the Dataplane's address serving Envoy's statistics.

use atoll_model::Kind;
use atoll_model::types::{AdminConf, DataplaneSpec, MetricConf};

use super::build::Context;
use super::policies::conf;
use crate::policy::rules::Rules;
use crate::xds::metrics;

/// The port of a Dataplane's Envoy admin interface.
fn admin_port(dp: &DataplaneSpec) -> u32 {
    AdminConf::port_of(dp.networking.as_ref().and_then(|n| n.admin.as_ref()))
}

/// The merged MeshMetric configuration `rules` give a proxy.
pub fn metric_conf(rules: &Rules) -> Option<MetricConf> {
    conf(rules.get(&Kind::MeshMetric).and_then(|r| r.proxy.as_ref()))
}

impl Context<'_> {
    pub(super) fn apply_metrics(&mut self, rules: &Rules, dp: &DataplaneSpec) {
        let Some(metric) = metric_conf(rules) else {
            return;
        };
        let Some(address) = dp.networking.as_ref().map(|n| n.address.clone()) else {
            return;
        };
        let endpoints = metric.prometheus_endpoints();
        if endpoints.is_empty() {
            return;
        }
        self.built
            .snapshot
            .add_cluster(&metrics::admin_cluster(admin_port(dp)));
        for (port, path, _) in endpoints {
            self.built
                .snapshot
                .add_listener(&metrics::prometheus_listener(
                    &address,
                    port,
                    path,
                    metric.include_unused(),
                ));
        }
    }
}
