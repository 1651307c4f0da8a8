//! Where a destination's instances are, and in which order a proxy uses them: Atoll's
//! default (every instance alike, or this zone first when the Mesh says
//! `routing.localityAwareLoadBalancing`) and MeshLoadBalancingStrategy's `localityAwareness`
//! (this zone first, weighted by affinity tags, then other zones in `crossZone.failover`
//! order). The result is tiers of localities: Envoy's priorities, each used only while the
//! ones before it lack healthy instances.

use std::collections::BTreeSet;

use atoll_model::types::{AffinityTag, CrossZone, FailoverType, LocalityAwareness, Tags};

use crate::xds::clusters::Locality;

/// Kuma's default `failoverThreshold`: spill over below 50% healthy.
const DEFAULT_THRESHOLD: f64 = 50.0;

/// A destination's instances, by where they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Destinations {
    /// This zone's: (address, port, inbound tags).
    pub local: Vec<(String, u32, Tags)>,
    /// Other zones', each reached at an address (their ingress, or the instance itself),
    /// weighted by how many instances it stands for.
    pub remote: Vec<Remote>,
    /// This zone's egress, standing for every other zone's instances.
    pub egress: Option<(String, u32, u32)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remote {
    pub zone: String,
    pub address: String,
    pub port: u32,
    pub weight: u32,
}

/// Tiers of localities and how they are balanced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub tiers: Vec<Vec<Locality>>,
    /// Envoy's overprovisioning factor, when not its default.
    pub overprovisioning: Option<u32>,
    /// Localities carry weights the cluster must balance by.
    pub by_locality: bool,
}

impl Destinations {
    /// Other zones' endpoints: the egress when there is one (the remote entries then only
    /// name the zones behind it).
    fn remote_endpoints(&self) -> Vec<(String, u32, u32)> {
        match &self.egress {
            Some(egress) => vec![egress.clone()],
            None => self
                .remote
                .iter()
                .map(|r| (r.address.clone(), r.port, r.weight))
                .collect(),
        }
    }

    fn local_endpoints(&self) -> Vec<(String, u32, u32)> {
        self.local
            .iter()
            .map(|(address, port, _)| (address.clone(), *port, 1))
            .collect()
    }
}

fn anywhere(endpoints: Vec<(String, u32, u32)>) -> Vec<Locality> {
    vec![Locality {
        endpoints,
        ..Default::default()
    }]
}

/// Without a MeshLoadBalancingStrategy: every instance alike, or this zone's first.
pub fn mesh_default(d: &Destinations, local_first: bool) -> Plan {
    let tiers = if local_first {
        vec![
            anywhere(d.local_endpoints()),
            anywhere(d.remote_endpoints()),
        ]
    } else {
        let mut all = d.local_endpoints();
        all.extend(d.remote_endpoints());
        vec![anywhere(all)]
    };
    Plan {
        tiers,
        ..Default::default()
    }
}

/// With a MeshLoadBalancingStrategy whose `localityAwareness` is `la` (absent: the defaults,
/// which are on), for a proxy in `local_zone` whose own tags are `caller`.
pub fn plan(
    d: &Destinations,
    la: Option<&LocalityAwareness>,
    local_zone: &str,
    caller: &Tags,
) -> Plan {
    let defaults = LocalityAwareness::default();
    let la = la.unwrap_or(&defaults);
    // `localZone` and `crossZone` take precedence over `disabled`, as in Kuma.
    if la.disabled == Some(true) && la.local_zone.is_none() && la.cross_zone.is_none() {
        return mesh_default(d, false);
    }
    let affinity = la
        .local_zone
        .as_ref()
        .map(|l| l.affinity_tags.as_slice())
        .unwrap_or_default();
    let by_locality = !affinity.is_empty();
    let mut tiers = vec![local_tier(d, affinity, local_zone, caller)];
    let zones: BTreeSet<&str> = d.remote.iter().map(|r| r.zone.as_str()).collect();
    let order = zone_order(la.cross_zone.as_ref(), local_zone, &zones);
    match &d.egress {
        // Through an egress the zones are one: it goes wherever an ingress offers the
        // service. It is used when any other zone may be.
        Some(egress) => {
            if !order.is_empty() {
                tiers.push(vec![Locality {
                    sub_zone: "egress".into(),
                    weight: Some(egress.2),
                    endpoints: vec![egress.clone()],
                    ..Default::default()
                }]);
            }
        }
        None => {
            for zones in order {
                tiers.push(
                    zones
                        .into_iter()
                        .map(|zone| {
                            let endpoints: Vec<(String, u32, u32)> = d
                                .remote
                                .iter()
                                .filter(|r| r.zone == zone)
                                .map(|r| (r.address.clone(), r.port, r.weight))
                                .collect();
                            Locality {
                                weight: Some(endpoints.iter().map(|e| e.2).sum()),
                                zone,
                                endpoints,
                                ..Default::default()
                            }
                        })
                        .collect(),
                );
            }
        }
    }
    let threshold = la
        .cross_zone
        .as_ref()
        .and_then(|c| c.failover_threshold.as_ref())
        .and_then(|t| t.percentage.as_ref())
        .and_then(|p| p.percent())
        .filter(|p| *p > 0.0)
        .unwrap_or(DEFAULT_THRESHOLD);
    Plan {
        tiers,
        // Envoy keeps a tier's whole share while healthy% × factor / 100 ≥ 100.
        overprovisioning: Some((10_000.0 / threshold).round() as u32),
        by_locality,
    }
}

/// This zone's instances, grouped by the first affinity tag whose value they share with the
/// caller (the rest last), each group weighted.
fn local_tier(
    d: &Destinations,
    affinity: &[AffinityTag],
    local_zone: &str,
    caller: &Tags,
) -> Vec<Locality> {
    if affinity.is_empty() {
        return vec![Locality {
            zone: local_zone.to_string(),
            endpoints: d.local_endpoints(),
            ..Default::default()
        }];
    }
    let count = affinity.len();
    let mut groups: Vec<Locality> = (0..=count)
        .map(|i| Locality {
            zone: local_zone.to_string(),
            sub_zone: match affinity.get(i) {
                Some(tag) => format!(
                    "{}={}",
                    tag.key,
                    caller.get(&tag.key).map(String::as_str).unwrap_or("")
                ),
                None => "other".into(),
            },
            weight: Some(affinity_weight(affinity, i)),
            endpoints: Vec::new(),
        })
        .collect();
    for (address, port, tags) in &d.local {
        let group = affinity
            .iter()
            .position(|t| {
                caller
                    .get(&t.key)
                    .is_some_and(|v| tags.get(&t.key) == Some(v))
            })
            .unwrap_or(count);
        groups[group].endpoints.push((address.clone(), *port, 1));
    }
    groups
}

/// The weight of affinity group `i` (`affinity.len()` for the rest): as given, the rest 1;
/// or when none is given 90% to the first, 9% to the next, and so on (9·10ⁿ⁻¹⁻ⁱ, the rest 1).
fn affinity_weight(affinity: &[AffinityTag], i: usize) -> u32 {
    match affinity.get(i) {
        None => 1,
        Some(AffinityTag {
            weight: Some(w), ..
        }) => *w,
        Some(_) => {
            let exponent = u32::try_from(affinity.len() - 1 - i).unwrap_or(u32::MAX);
            10u32
                .checked_pow(exponent)
                .and_then(|p| p.checked_mul(9))
                .unwrap_or(u32::MAX / 16)
        }
    }
}

/// Other zones in tiers: all of them together without `crossZone.failover`; otherwise each
/// rule that applies to `local_zone`, in order, adds the zones it names that no earlier rule
/// did, and a rule of type `None` ends the list.
fn zone_order(
    cross: Option<&CrossZone>,
    local_zone: &str,
    zones: &BTreeSet<&str>,
) -> Vec<Vec<String>> {
    let others = || {
        zones
            .iter()
            .filter(|z| **z != local_zone)
            .map(|z| z.to_string())
    };
    let Some(cross) = cross.filter(|c| !c.failover.is_empty()) else {
        let all: Vec<String> = others().collect();
        return if all.is_empty() { vec![] } else { vec![all] };
    };
    let mut used = BTreeSet::new();
    let mut tiers = Vec::new();
    for rule in &cross.failover {
        if rule
            .from
            .as_ref()
            .is_some_and(|f| !f.zones.iter().any(|z| z == local_zone))
        {
            continue;
        }
        let Some(to) = &rule.to else { continue };
        let named = |z: &String| to.zones.contains(z);
        let chosen: Vec<String> = match to.to_type {
            FailoverType::None => break,
            FailoverType::Only => others().filter(named).collect(),
            FailoverType::Any => others().collect(),
            FailoverType::AnyExcept => others().filter(|z| !named(z)).collect(),
            _ => continue,
        };
        let chosen: Vec<String> = chosen
            .into_iter()
            .filter(|z| used.insert(z.clone()))
            .collect();
        if !chosen.is_empty() {
            tiers.push(chosen);
        }
    }
    tiers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn destinations() -> Destinations {
        Destinations {
            local: vec![
                (
                    "10.0.0.1".into(),
                    80,
                    tags(&[("node", "a"), ("rack", "r1")]),
                ),
                (
                    "10.0.0.2".into(),
                    80,
                    tags(&[("node", "b"), ("rack", "r1")]),
                ),
                (
                    "10.0.0.3".into(),
                    80,
                    tags(&[("node", "c"), ("rack", "r2")]),
                ),
            ],
            remote: ["zone-2", "zone-3", "zone-4"]
                .iter()
                .enumerate()
                .map(|(i, z)| Remote {
                    zone: z.to_string(),
                    address: format!("192.168.0.{}", i + 2),
                    port: 10001,
                    weight: 2,
                })
                .collect(),
            egress: None,
        }
    }

    fn la(value: serde_json::Value) -> LocalityAwareness {
        serde_json::from_value(value).unwrap()
    }

    /// Each tier's zones (sub-zones for the local tier) and addresses.
    fn shape(plan: &Plan) -> Vec<Vec<(String, Vec<String>)>> {
        plan.tiers
            .iter()
            .map(|tier| {
                tier.iter()
                    .filter(|l| !l.endpoints.is_empty())
                    .map(|l| {
                        let place = if l.sub_zone.is_empty() {
                            &l.zone
                        } else {
                            &l.sub_zone
                        };
                        (
                            place.clone(),
                            l.endpoints.iter().map(|e| e.0.clone()).collect(),
                        )
                    })
                    .collect()
            })
            .filter(|t: &Vec<_>| !t.is_empty())
            .collect()
    }

    #[test]
    fn by_default_this_zone_comes_first_then_every_other_zone_together() {
        let plan = plan(&destinations(), None, "zone-1", &Tags::new());
        let tiers = shape(&plan);
        assert_eq!(tiers.len(), 2);
        assert_eq!(
            tiers[0],
            vec![(
                "zone-1".into(),
                vec!["10.0.0.1".into(), "10.0.0.2".into(), "10.0.0.3".into()]
            )]
        );
        assert_eq!(tiers[1].len(), 3, "{tiers:?}");
        assert_eq!(
            plan.overprovisioning,
            Some(200),
            "Kuma's default threshold is 50%"
        );
        assert!(!plan.by_locality);
    }

    #[test]
    fn disabled_puts_every_instance_in_one_tier_unless_zones_are_configured() {
        let off = plan(
            &destinations(),
            Some(&la(json!({"disabled": true}))),
            "zone-1",
            &Tags::new(),
        );
        assert_eq!(shape(&off).len(), 1);
        assert_eq!(shape(&off)[0][0].1.len(), 6);
        let cross =
            la(json!({"disabled": true, "crossZone": {"failover": [{"to": {"type": "Any"}}]}}));
        assert_eq!(
            shape(&plan(&destinations(), Some(&cross), "zone-1", &Tags::new())).len(),
            2
        );
    }

    #[test]
    fn failover_rules_order_zones_skip_rules_for_other_zones_and_stop_at_none() {
        let conf = la(json!({"crossZone": {"failover": [
            {"from": {"zones": ["zone-9"]}, "to": {"type": "Only", "zones": ["zone-2"]}},
            {"to": {"type": "Only", "zones": ["zone-4", "zone-1"]}},
            {"from": {"zones": ["zone-1"]}, "to": {"type": "AnyExcept", "zones": ["zone-3"]}},
            {"to": {"type": "None"}},
            {"to": {"type": "Any"}},
        ], "failoverThreshold": {"percentage": 80}}}));
        let plan = plan(&destinations(), Some(&conf), "zone-1", &Tags::new());
        let zones: Vec<Vec<String>> = shape(&plan)
            .iter()
            .map(|t| t.iter().map(|l| l.0.clone()).collect())
            .collect();
        assert_eq!(
            zones,
            vec![
                vec!["zone-1".to_string()],
                vec!["zone-4".into()],
                vec!["zone-2".into()]
            ],
            "zone-3 excluded, then None ends the list"
        );
        assert_eq!(plan.overprovisioning, Some(125));
    }

    #[test]
    fn affinity_tags_weight_the_callers_neighbours_ninety_nine_one() {
        let conf = la(json!({"localZone": {"affinityTags": [{"key": "node"}, {"key": "rack"}]}}));
        let caller = tags(&[("node", "a"), ("rack", "r1")]);
        let plan = plan(&destinations(), Some(&conf), "zone-1", &caller);
        assert!(plan.by_locality);
        let local: Vec<(Option<u32>, Vec<String>)> = plan.tiers[0]
            .iter()
            .map(|l| (l.weight, l.endpoints.iter().map(|e| e.0.clone()).collect()))
            .collect();
        assert_eq!(
            local,
            vec![
                (Some(90), vec!["10.0.0.1".to_string()]),
                (Some(9), vec!["10.0.0.2".to_string()]),
                (Some(1), vec!["10.0.0.3".to_string()]),
            ]
        );
        // Remote localities carry weights too, or Envoy would give them none.
        assert!(plan.tiers[1].iter().all(|l| l.weight == Some(2)));
    }

    #[test]
    fn explicit_weights_and_a_caller_without_the_tag() {
        let conf = la(
            json!({"localZone": {"affinityTags": [{"key": "node", "weight": 500}, {"key": "zone-x", "weight": 7}]}}),
        );
        let plan = plan(
            &destinations(),
            Some(&conf),
            "zone-1",
            &tags(&[("node", "b")]),
        );
        let weights: Vec<(Option<u32>, usize)> = plan.tiers[0]
            .iter()
            .map(|l| (l.weight, l.endpoints.len()))
            .collect();
        assert_eq!(weights, vec![(Some(500), 1), (Some(7), 0), (Some(1), 2)]);
    }

    #[test]
    fn through_an_egress_other_zones_are_one_tier_used_when_any_zone_is_allowed() {
        let mut d = destinations();
        d.egress = Some(("127.0.0.1".into(), 10002, 6));
        let any = plan(&d, None, "zone-1", &Tags::new());
        assert_eq!(
            shape(&any)[1],
            vec![("egress".into(), vec!["127.0.0.1".into()])]
        );
        let none = la(json!({"crossZone": {"failover": [{"to": {"type": "None"}}]}}));
        assert_eq!(
            shape(&plan(&d, Some(&none), "zone-1", &Tags::new())).len(),
            1
        );
    }

    #[test]
    fn the_mesh_default_matches_the_switch() {
        let d = destinations();
        assert_eq!(shape(&mesh_default(&d, false)).len(), 1);
        assert_eq!(shape(&mesh_default(&d, true)).len(), 2);
    }
}
