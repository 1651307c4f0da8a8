//! MeshLoadBalancingStrategy: Kuma 2.x's rules, plus what Envoy would refuse in a cluster
//! (a refused cluster costs the proxy every cluster update).

use std::collections::BTreeSet;

use super::common::{duration, one_of};
use super::policies::{
    DESTINATIONS, PROXY_AND_GATEWAY_CLUSTER_TARGETS, Sections, gateway_clusters, policy_shape,
};
use super::{Path, Report};
use crate::types::*;

/// Envoy's bounds on a ring's size.
const MAX_RING: u32 = 8_388_608;
/// Affinity tags without weights get 9·10ⁿ⁻¹⁻ⁱ each, which must fit Envoy's 32 bits.
const MAX_UNWEIGHTED_TAGS: usize = 9;
/// Envoy's bound on a Maglev table.
const MAX_MAGLEV: u32 = 5_000_011;

pub(super) fn load_balancing(
    spec: &MeshLoadBalancingStrategySpec,
    path: &Path,
    report: &mut Report,
) {
    policy_shape!(
        spec,
        Sections {
            to: true,
            from: false,
            targets: PROXY_AND_GATEWAY_CLUSTER_TARGETS,
            destinations: DESTINATIONS,
        },
        path,
        report
    );
    gateway_clusters(
        spec.target_ref.as_ref(),
        (spec.from.len(), spec.rules.len()),
        path,
        report,
    );
    for (i, item) in spec.to.iter().enumerate() {
        let Some(conf) = &item.default else { continue };
        let at = path.field("to").index(i).field("default");
        if let Some(locality) = &conf.locality_awareness {
            locality_rules(locality, &at.field("localityAwareness"), report);
        }
        if let Some(lb) = &conf.load_balancer {
            balancer(lb, &at.field("loadBalancer"), report);
        }
    }
}

fn locality_rules(locality: &LocalityAwareness, path: &Path, report: &mut Report) {
    if let Some(local) = &locality.local_zone {
        let at = path.field("localZone").field("affinityTags");
        let weighted = local
            .affinity_tags
            .iter()
            .filter(|t| t.weight.is_some())
            .count();
        if weighted != 0 && weighted != local.affinity_tags.len() {
            report.add(&at, "must give a weight to every tag or to none");
        }
        // Envoy adds a priority's locality weights in 32 bits; the instances matching no
        // tag weigh 1.
        let total: u64 = local
            .affinity_tags
            .iter()
            .map(|t| u64::from(t.weight.unwrap_or(0)))
            .sum();
        if total >= u64::from(u32::MAX) {
            report.add(
                &at,
                format!("weights must add up to less than {}", u32::MAX),
            );
        }
        if weighted == 0 && local.affinity_tags.len() > MAX_UNWEIGHTED_TAGS {
            report.add(
                &at,
                format!(
                    "must have at most {MAX_UNWEIGHTED_TAGS} entries without weights (each gets a tenth of the one before)"
                ),
            );
        }
        let mut keys = BTreeSet::new();
        for (i, tag) in local.affinity_tags.iter().enumerate() {
            let t = at.index(i);
            if tag.key.is_empty() {
                report.add(&t.field("key"), "must be set");
            } else if !keys.insert(tag.key.as_str()) {
                report.add(&t.field("key"), format!("{:?} is listed twice", tag.key));
            }
            if tag.weight == Some(0) {
                report.add(&t.field("weight"), "must be greater than 0");
            }
        }
    }
    let Some(cross) = &locality.cross_zone else {
        return;
    };
    let at = path.field("crossZone");
    for (i, rule) in cross.failover.iter().enumerate() {
        let r = at.field("failover").index(i);
        if let Some(from) = &rule.from
            && from.zones.is_empty()
        {
            report.add(
                &r.field("from").field("zones"),
                "must have at least one entry (leave from out to apply to every zone)",
            );
        }
        let Some(to) = &rule.to else {
            report.add(&r.field("to"), "must be set");
            continue;
        };
        let t = r.field("to");
        one_of(report, &t.field("type"), &to.to_type, true);
        match to.to_type {
            FailoverType::Only | FailoverType::AnyExcept if to.zones.is_empty() => report.add(
                &t.field("zones"),
                format!("must have at least one entry for type {}", to.to_type),
            ),
            FailoverType::None | FailoverType::Any if !to.zones.is_empty() => report.add(
                &t.field("zones"),
                format!("must not be set for type {}", to.to_type),
            ),
            _ => {}
        }
    }
    if let Some(threshold) = &cross.failover_threshold {
        let p = at.field("failoverThreshold").field("percentage");
        match threshold.percentage.as_ref().map(IntOrString::percent) {
            None => report.add(&p, "must be set"),
            Some(Some(v)) if v > 0.0 => {}
            Some(_) => report.add(&p, "must be a number greater than 0 and at most 100"),
        }
    }
}

fn balancer(lb: &LoadBalancer, path: &Path, report: &mut Report) {
    one_of(report, &path.field("type"), &lb.lb_type, true);
    for (field, set, for_type) in [
        (
            "leastRequest",
            lb.least_request.is_some(),
            LoadBalancerType::LeastRequest,
        ),
        (
            "ringHash",
            lb.ring_hash.is_some(),
            LoadBalancerType::RingHash,
        ),
        ("maglev", lb.maglev.is_some(), LoadBalancerType::Maglev),
    ] {
        if set && lb.lb_type.is_known() && lb.lb_type != for_type {
            report.add(
                &path.field(field),
                format!("must not be set for type {}", lb.lb_type),
            );
        }
    }
    if let Some(least) = &lb.least_request {
        let at = path.field("leastRequest");
        if least.choice_count.is_some_and(|c| c < 2) {
            report.add(&at.field("choiceCount"), "must be at least 2");
        }
        if let Some(bias) = &least.active_request_bias {
            let value = match bias {
                IntOrString::Int(n) => Some(*n as f64),
                IntOrString::String(s) => s.trim().parse::<f64>().ok(),
            };
            if !value.is_some_and(|v| v >= 0.0 && v.is_finite()) {
                report.add(
                    &at.field("activeRequestBias"),
                    "must be a number of at least 0, e.g. 1 or \"1.5\"",
                );
            }
        }
    }
    if let Some(ring) = &lb.ring_hash {
        let at = path.field("ringHash");
        one_of(
            report,
            &at.field("hashFunction"),
            &ring.hash_function,
            false,
        );
        for (field, value) in [
            ("minRingSize", ring.min_ring_size),
            ("maxRingSize", ring.max_ring_size),
        ] {
            if value.is_some_and(|v| v == 0 || v > MAX_RING) {
                report.add(&at.field(field), format!("must be from 1 to {MAX_RING}"));
            }
        }
        if let (Some(min), Some(max)) = (ring.min_ring_size, ring.max_ring_size)
            && min > max
        {
            report.add(&at.field("minRingSize"), "must not exceed maxRingSize");
        }
        hash_policies(&ring.hash_policies, &at.field("hashPolicies"), report);
    }
    if let Some(maglev) = &lb.maglev {
        let at = path.field("maglev");
        if let Some(size) = maglev.table_size
            && (size > MAX_MAGLEV || !is_prime(size))
        {
            report.add(
                &at.field("tableSize"),
                format!("must be a prime number up to {MAX_MAGLEV}, e.g. 65537"),
            );
        }
        hash_policies(&maglev.hash_policies, &at.field("hashPolicies"), report);
    }
}

fn hash_policies(policies: &[HashPolicy], path: &Path, report: &mut Report) {
    for (i, policy) in policies.iter().enumerate() {
        let at = path.index(i);
        one_of(report, &at.field("type"), &policy.policy_type, true);
        let wanted = match policy.policy_type {
            HashPolicyType::Header => Some("header"),
            HashPolicyType::Cookie => Some("cookie"),
            HashPolicyType::Connection => Some("connection"),
            HashPolicyType::QueryParameter => Some("queryParameter"),
            HashPolicyType::FilterState => Some("filterState"),
            _ => None,
        };
        for (field, set) in [
            ("header", policy.header.is_some()),
            ("cookie", policy.cookie.is_some()),
            ("connection", policy.connection.is_some()),
            ("queryParameter", policy.query_parameter.is_some()),
            ("filterState", policy.filter_state.is_some()),
        ] {
            if set && policy.policy_type.is_known() && wanted != Some(field) {
                report.add(
                    &at.field(field),
                    format!("must not be set for type {}", policy.policy_type),
                );
            }
            if !set && wanted == Some(field) {
                report.add(
                    &at.field(field),
                    format!("must be set for type {}", policy.policy_type),
                );
            }
        }
        let named = [
            ("header", policy.header.as_ref().map(|h| &h.name), "name"),
            ("cookie", policy.cookie.as_ref().map(|c| &c.name), "name"),
            (
                "queryParameter",
                policy.query_parameter.as_ref().map(|q| &q.name),
                "name",
            ),
            (
                "filterState",
                policy.filter_state.as_ref().map(|f| &f.key),
                "key",
            ),
        ];
        for (field, value, inner) in named {
            if value.is_some_and(String::is_empty) {
                report.add(&at.field(field).field(inner), "must be set");
            }
        }
        if let Some(cookie) = &policy.cookie {
            duration(report, &at.field("cookie").field("ttl"), &cookie.ttl);
        }
        if let Some(connection) = &policy.connection
            && connection.source_ip != Some(true)
        {
            report.add(
                &at.field("connection").field("sourceIP"),
                "must be true (the connection's source address is what is hashed)",
            );
        }
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}
