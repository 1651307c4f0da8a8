//! Which policies apply to a proxy and what they configure, per policy type: for each
//! outbound destination (`to[]`) and for callers (`from[]`).
//!
//! Order, as Kuma 2.x: entries whose own `targetRef` is more specific (a MeshService over the
//! whole Mesh) win; among equally specific entries, the policy whose top-level `targetRef` is
//! more specific wins, then the policy whose name sorts later. Winning is field by field
//! ([`merge`](super::merge::merge)): the merge applies entries from the weakest to the
//! strongest.

use std::collections::{BTreeMap, BTreeSet};

use atoll_model::Kind;
use atoll_model::types::{DataplaneSpec, PolicyView, SERVICE_TAG, TargetKind, TargetRef};
use serde_json::Value;

use super::merge::merge;

/// A policy as stored: its type and name, and its targets and configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: Kind,
    pub name: String,
    pub view: PolicyView,
}

/// A merged configuration and the policies it came from, weakest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    pub conf: Value,
    pub origins: Vec<String>,
}

impl Merged {
    fn add(&mut self, conf: &Value, origin: &str) {
        if self.conf.is_null() {
            self.conf = Value::Object(Default::default());
        }
        merge(&mut self.conf, conf);
        self.record(origin);
    }

    /// Adds the lists of `conf` to those already here instead of replacing them.
    fn append(&mut self, conf: &Value, origin: &str) {
        if self.conf.is_null() {
            self.conf = Value::Object(Default::default());
        }
        if let (Value::Object(into), Value::Object(from)) = (&mut self.conf, conf) {
            for (key, value) in from {
                match (into.get_mut(key), value) {
                    (Some(Value::Array(list)), Value::Array(more)) => {
                        list.extend(more.iter().cloned())
                    }
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        self.record(origin);
    }

    fn record(&mut self, origin: &str) {
        if !self.origins.iter().any(|o| o == origin) {
            self.origins.push(origin.to_string());
        }
    }
}

/// One policy type's effect on one proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KindRules {
    /// Outbound: per destination service.
    pub to: BTreeMap<String, Merged>,
    /// Inbound, from any caller: the `Mesh` entries.
    pub from_any: Option<Merged>,
    /// Inbound, from one caller service: its entries merged over the `Mesh` ones.
    pub from_service: BTreeMap<String, Merged>,
    /// A built-in gateway: per (virtual host, MeshHTTPRoute) its routes' `to[]` entries of
    /// kind `Mesh`.
    pub gateway_routes: BTreeMap<(String, String), Merged>,
    /// Outbound, per MeshHTTPRoute: its `to[]` entries, for the sidecar routes it made (on
    /// top of the destination's own configuration).
    pub to_routes: BTreeMap<String, Merged>,
    /// The whole proxy (MeshMetric's `default`).
    pub proxy: Option<Merged>,
    /// MeshTrafficPermission `rules[]`: callers by SPIFFE identity, every policy's matchers
    /// together (a deny cannot be undone by another policy).
    pub identities: Option<Merged>,
}

/// A built-in gateway as policies see it: the MeshGateway it binds to and, per Envoy virtual
/// host, its listener's tags and the MeshHTTPRoutes attached to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayScope {
    pub gateway: String,
    pub hosts: Vec<GatewayHost>,
}

/// One virtual host of a gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayHost {
    /// The Envoy virtual host's name.
    pub name: String,
    /// The combined tags (Dataplane, MeshGateway, listener) of each listener it serves.
    pub tags: Vec<atoll_model::types::Tags>,
    /// The names of the MeshHTTPRoutes attached.
    pub routes: Vec<String>,
}

/// The policy types a built-in gateway's routes honour; the others configure nothing there.
pub const GATEWAY_ROUTE_KINDS: &[Kind] = &[
    Kind::MeshTimeout,
    Kind::MeshRetry,
    Kind::MeshRateLimit,
    Kind::MeshAccessLog,
];

/// The policy types whose `to[]` entries may name one MeshHTTPRoute on a sidecar.
pub const SIDECAR_ROUTE_KINDS: &[Kind] = &[Kind::MeshTimeout, Kind::MeshRetry];

/// The policy types a built-in gateway honours per destination (`to[]`), on its clusters.
pub const GATEWAY_CLUSTER_KINDS: &[Kind] = &[
    Kind::MeshCircuitBreaker,
    Kind::MeshHealthCheck,
    Kind::MeshLoadBalancingStrategy,
];

/// Every policy type's effect on one proxy.
pub type Rules = BTreeMap<Kind, KindRules>;

/// How specific a target is: the whole mesh, some proxies by tags, one service, a subset of it.
fn specificity(target: Option<&TargetRef>) -> u8 {
    match target.map(|t| &t.kind) {
        Some(TargetKind::MeshSubset) => 1,
        Some(TargetKind::MeshService) => 2,
        Some(TargetKind::MeshServiceSubset) => 3,
        Some(TargetKind::MeshGateway) => 4,
        Some(TargetKind::MeshHttpRoute) => 5,
        _ => 0,
    }
}

/// Every inbound's tags, or a gateway's: what a top-level target matches against.
pub(crate) fn proxy_tags(dp: &DataplaneSpec) -> Vec<&atoll_model::types::Tags> {
    dp.networking
        .iter()
        .flat_map(|n| {
            n.inbound
                .iter()
                .map(|i| &i.tags)
                .chain(n.gateway.iter().map(|g| &g.tags))
        })
        .collect()
}

/// Whether a top-level `targetRef` selects this proxy.
pub fn selects(target: Option<&TargetRef>, dp: &DataplaneSpec) -> bool {
    let Some(target) = target else {
        return false;
    };
    let has =
        |tags: &atoll_model::types::Tags| target.tags.iter().all(|(k, v)| tags.get(k) == Some(v));
    let service = |tags: &atoll_model::types::Tags| tags.get(SERVICE_TAG) == Some(&target.name);
    let all = proxy_tags(dp);
    match target.kind {
        TargetKind::Mesh => true,
        TargetKind::MeshSubset => all.iter().any(|t| has(t)),
        TargetKind::MeshService => all.iter().any(|t| service(t)),
        TargetKind::MeshServiceSubset => all.iter().any(|t| service(t) && has(t)),
        _ => false,
    }
}

/// Whether a top-level `targetRef` selects the routes of `route` on the virtual host `host`
/// of `gateway`: every proxy-wide target that selects the gateway's Dataplane, a MeshGateway
/// by name (and its `tags` among the listener's), or one MeshHTTPRoute by name.
fn selects_route(
    target: Option<&TargetRef>,
    dp: &DataplaneSpec,
    gateway: &GatewayScope,
    host: &GatewayHost,
    route: &str,
) -> bool {
    match target {
        Some(t) if t.kind == TargetKind::MeshGateway => {
            t.name == gateway.gateway
                && host
                    .tags
                    .iter()
                    .any(|tags| t.tags.iter().all(|(k, v)| tags.get(k) == Some(v)))
        }
        Some(t) if t.kind == TargetKind::MeshHttpRoute => t.name == route,
        other => selects(other, dp),
    }
}

/// The rules `policies` give the proxy of `dp` whose outbounds go to `destinations`.
pub fn compute<'p>(
    dp: &DataplaneSpec,
    destinations: &[String],
    policies: impl IntoIterator<Item = &'p Policy>,
) -> Rules {
    compute_for(dp, destinations, None, policies)
}

/// (entry specificity, top-level specificity, policy name, entry index): weakest first.
type Key<'a> = (u8, u8, &'a str, usize);

/// One `to` or `from` entry with its rank: (rank, policy, entry target, configuration).
type Ranked<'a> = (Key<'a>, &'a Policy, Option<&'a TargetRef>, &'a Value);

/// What a `rules[]` entry of an inbound policy stands for: a `from[]` entry for every caller.
static EVERY_CALLER: std::sync::LazyLock<TargetRef> = std::sync::LazyLock::new(|| TargetRef {
    kind: TargetKind::Mesh,
    ..Default::default()
});

/// [`compute`], and for a built-in gateway the rules of its routes.
pub fn compute_for<'p>(
    dp: &DataplaneSpec,
    destinations: &[String],
    gateway: Option<&GatewayScope>,
    policies: impl IntoIterator<Item = &'p Policy>,
) -> Rules {
    compute_full(dp, destinations, &BTreeSet::new(), gateway, policies)
}

/// [`compute_for`] knowing which `destinations` are MeshExternalServices (`external`): a
/// `to[]` entry of kind MeshService names mesh services only, one of kind
/// MeshExternalService external services only.
pub fn compute_full<'p>(
    dp: &DataplaneSpec,
    destinations: &[String],
    external: &BTreeSet<String>,
    gateway: Option<&GatewayScope>,
    policies: impl IntoIterator<Item = &'p Policy>,
) -> Rules {
    let mut to: Vec<Ranked<'p>> = Vec::new();
    let mut from: Vec<Ranked<'p>> = Vec::new();
    let mut identity_rules: Vec<Ranked<'p>> = Vec::new();
    let mut whole: Vec<Ranked<'p>> = Vec::new();
    for policy in policies {
        let top = policy.view.target_ref.as_ref();
        let on_gateway = gateway.is_some()
            && top.is_some_and(|t| {
                matches!(t.kind, TargetKind::MeshGateway | TargetKind::MeshHttpRoute)
            });
        if !on_gateway && !selects(top, dp) {
            continue;
        }
        let top = specificity(policy.view.target_ref.as_ref());
        for (i, (target, conf)) in policy.view.to.iter().enumerate() {
            to.push((
                (specificity(target.as_ref()), top, &policy.name, i),
                policy,
                target.as_ref(),
                conf,
            ));
        }
        for (i, (target, conf)) in policy.view.from.iter().enumerate() {
            from.push((
                (specificity(target.as_ref()), top, &policy.name, i),
                policy,
                target.as_ref(),
                conf,
            ));
        }
        if let Some(conf) = &policy.view.proxy {
            whole.push(((0, top, &policy.name, 0), policy, None, conf));
        }
        for (i, conf) in policy.view.rules.iter().enumerate() {
            if policy.kind == Kind::MeshTrafficPermission {
                identity_rules.push(((0, top, &policy.name, i), policy, None, conf));
            } else {
                let target: &'p TargetRef = &EVERY_CALLER;
                from.push(((0, top, &policy.name, i), policy, Some(target), conf));
            }
        }
    }
    to.sort_by(|a, b| (a.0, a.1.kind).cmp(&(b.0, b.1.kind)));
    from.sort_by(|a, b| (a.0, a.1.kind).cmp(&(b.0, b.1.kind)));
    identity_rules.sort_by(|a, b| a.0.cmp(&b.0));
    whole.sort_by(|a, b| (a.0, a.1.kind).cmp(&(b.0, b.1.kind)));
    let mut rules = Rules::new();
    for (_, policy, _, conf) in &whole {
        if selects(policy.view.target_ref.as_ref(), dp) {
            rules
                .entry(policy.kind)
                .or_default()
                .proxy
                .get_or_insert_with(Merged::default)
                .add(conf, &policy.name);
        }
    }
    for (_, policy, _, conf) in &identity_rules {
        if selects(policy.view.target_ref.as_ref(), dp) {
            rules
                .entry(policy.kind)
                .or_default()
                .identities
                .get_or_insert_with(Merged::default)
                .append(conf, &policy.name);
        }
    }
    for (_, policy, target, conf) in &to {
        let kind = rules.entry(policy.kind).or_default();
        let top = policy.view.target_ref.as_ref();
        if let Some(gateway) = gateway
            && GATEWAY_ROUTE_KINDS.contains(&policy.kind)
            && target.as_ref().is_some_and(|t| t.kind == TargetKind::Mesh)
        {
            for host in &gateway.hosts {
                for route in &host.routes {
                    if selects_route(top, dp, gateway, host, route) {
                        kind.gateway_routes
                            .entry((host.name.clone(), route.clone()))
                            .or_default()
                            .add(conf, &policy.name);
                    }
                }
            }
        }
        let on_this_gateway = match gateway {
            Some(g) => {
                GATEWAY_CLUSTER_KINDS.contains(&policy.kind)
                    && (selects(top, dp)
                        || top.is_some_and(|t| {
                            t.kind == TargetKind::MeshGateway && t.name == g.gateway
                        }))
            }
            None => selects(top, dp),
        };
        if !on_this_gateway {
            continue;
        }
        if gateway.is_none()
            && SIDECAR_ROUTE_KINDS.contains(&policy.kind)
            && let Some(route) = target.filter(|t| t.kind == TargetKind::MeshHttpRoute)
        {
            kind.to_routes
                .entry(route.name.clone())
                .or_default()
                .add(conf, &policy.name);
        }
        for destination in destinations {
            let named = || target.as_ref().is_some_and(|t| t.name == *destination);
            let applies = match target.as_ref().map(|t| &t.kind) {
                Some(TargetKind::Mesh) => true,
                Some(TargetKind::MeshService) => named() && !external.contains(destination),
                Some(TargetKind::MeshExternalService) => named() && external.contains(destination),
                _ => false,
            };
            if applies {
                kind.to
                    .entry(destination.clone())
                    .or_default()
                    .add(conf, &policy.name);
            }
        }
    }
    for (_, policy, target, conf) in &from {
        let kind = rules.entry(policy.kind).or_default();
        if !selects(policy.view.target_ref.as_ref(), dp) {
            continue;
        }
        match target.as_ref().map(|t| &t.kind) {
            Some(TargetKind::Mesh) => {
                kind.from_any
                    .get_or_insert_with(Merged::default)
                    .add(conf, &policy.name);
                // A Mesh entry applies to every caller named so far, too.
                for merged in kind.from_service.values_mut() {
                    merged.add(conf, &policy.name);
                }
            }
            Some(TargetKind::MeshService) => {
                let caller = target.as_ref().map(|t| t.name.clone()).unwrap_or_default();
                let base = kind.from_any.clone().unwrap_or_default();
                kind.from_service
                    .entry(caller)
                    .or_insert(base)
                    .add(conf, &policy.name);
            }
            _ => {}
        }
    }
    rules.retain(|_, r| *r != KindRules::default());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dp(service: &str, tags: &[(&str, &str)]) -> DataplaneSpec {
        let mut all: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        all.insert(SERVICE_TAG.into(), json!(service));
        serde_json::from_value(json!({"networking": {"address": "10.0.0.1", "inbound": [{"port": 8080, "tags": all}]}})).unwrap()
    }

    fn policy(kind: Kind, name: &str, spec: Value) -> Policy {
        let resource = atoll_model::decode_value(json!({
            "type": kind.name(), "mesh": "default", "name": name, "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        Policy {
            kind,
            name: name.into(),
            view: resource.spec.policy().expect("a policy"),
        }
    }

    #[test]
    fn the_more_specific_entry_wins_field_by_field_then_the_more_specific_policy() {
        let policies = [
            policy(
                Kind::MeshTimeout,
                "z-mesh-wide",
                json!({
                    "targetRef": {"kind": "Mesh"},
                    "to": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "1h", "http": {"requestTimeout": "15s"}}}],
                }),
            ),
            policy(
                Kind::MeshTimeout,
                "a-for-web",
                json!({
                    "targetRef": {"kind": "MeshService", "name": "web"},
                    "to": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "5m"}}],
                }),
            ),
            policy(
                Kind::MeshTimeout,
                "b-to-api",
                json!({
                    "targetRef": {"kind": "Mesh"},
                    "to": [{"targetRef": {"kind": "MeshService", "name": "api"}, "default": {"http": {"requestTimeout": "2s"}}}],
                }),
            ),
        ];
        let rules = compute(&dp("web", &[]), &["api".into(), "db".into()], &policies);
        let timeout = &rules[&Kind::MeshTimeout];
        // db: the two Mesh-wide entries; the web-targeting policy is more specific than the
        // mesh-wide one although its name sorts first.
        assert_eq!(
            timeout.to["db"].conf,
            json!({"idleTimeout": "5m", "http": {"requestTimeout": "15s"}})
        );
        assert_eq!(timeout.to["db"].origins, ["z-mesh-wide", "a-for-web"]);
        // api: the MeshService entry wins over both Mesh entries.
        assert_eq!(
            timeout.to["api"].conf,
            json!({"idleTimeout": "5m", "http": {"requestTimeout": "2s"}})
        );
        // Another proxy is not selected by the web-targeting policy.
        let other = compute(&dp("api", &[]), &["db".into()], &policies);
        assert_eq!(other[&Kind::MeshTimeout].to["db"].conf["idleTimeout"], "1h");
    }

    #[test]
    fn callers_get_their_own_merge_over_the_mesh_wide_one() {
        let policies = [
            policy(
                Kind::MeshTrafficPermission,
                "allow-all",
                json!({
                    "targetRef": {"kind": "Mesh"},
                    "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
                }),
            ),
            policy(
                Kind::MeshTrafficPermission,
                "deny-web",
                json!({
                    "targetRef": {"kind": "MeshService", "name": "api"},
                    "from": [{"targetRef": {"kind": "MeshService", "name": "web"}, "default": {"action": "Deny"}}],
                }),
            ),
        ];
        let rules = compute(&dp("api", &[]), &[], &policies);
        let mtp = &rules[&Kind::MeshTrafficPermission];
        assert_eq!(mtp.from_any.as_ref().unwrap().conf["action"], "Allow");
        assert_eq!(mtp.from_service["web"].conf["action"], "Deny");
        let unaffected = compute(&dp("db", &[]), &[], &policies);
        assert!(
            unaffected[&Kind::MeshTrafficPermission]
                .from_service
                .is_empty()
        );
    }

    #[test]
    fn gateway_routes_take_route_then_gateway_then_mesh_wide_entries() {
        let gateway: DataplaneSpec =
            serde_json::from_value(json!({"networking": {"address": "10.0.0.1",
            "gateway": {"type": "BUILTIN", "tags": {"kuma.io/service": "edge"}}}}))
            .unwrap();
        let host = |name: &str, listener: &str, routes: &[&str]| GatewayHost {
            name: name.into(),
            tags: vec![[("listener".to_string(), listener.to_string())].into()],
            routes: routes.iter().map(|r| r.to_string()).collect(),
        };
        let scope = GatewayScope {
            gateway: "edge".into(),
            hosts: vec![
                host("public", "public", &["a", "b"]),
                host("internal", "internal", &["a"]),
            ],
        };
        let timeout = |name: &str, target: Value, request: &str| {
            policy(
                Kind::MeshTimeout,
                name,
                json!({"targetRef": target, "to": [{"targetRef": {"kind": "Mesh"}, "default": {"http": {"requestTimeout": request}}}]}),
            )
        };
        let policies = [
            // Sorts last by name, but a route target is more specific than a gateway target.
            timeout(
                "z-gateway",
                json!({"kind": "MeshGateway", "name": "edge"}),
                "3s",
            ),
            timeout(
                "a-route",
                json!({"kind": "MeshHTTPRoute", "name": "a"}),
                "1s",
            ),
            timeout("mesh-wide", json!({"kind": "Mesh"}), "9s"),
            timeout(
                "internal-only",
                json!({"kind": "MeshGateway", "name": "edge", "tags": {"listener": "internal"}}),
                "2s",
            ),
            timeout(
                "other-gateway",
                json!({"kind": "MeshGateway", "name": "other"}),
                "7s",
            ),
        ];
        let rules = compute_for(&gateway, &[], Some(&scope), &policies);
        let routes = &rules[&Kind::MeshTimeout].gateway_routes;
        let at = |host: &str, route: &str| {
            let merged = &routes[&(host.to_string(), route.to_string())];
            (
                merged.conf["http"]["requestTimeout"].clone(),
                merged.origins.clone(),
            )
        };
        assert_eq!(
            at("public", "a"),
            (
                json!("1s"),
                vec!["mesh-wide".into(), "z-gateway".into(), "a-route".into()]
            )
        );
        assert_eq!(at("public", "b").0, json!("3s"));
        // Same specificity (both MeshGateway): the later name wins.
        assert_eq!(at("internal", "a").0, json!("1s"));
        assert_eq!(routes.len(), 3);
        // Without a gateway, gateway targets select nothing.
        assert!(
            compute(&gateway, &[], &policies)
                .get(&Kind::MeshTimeout)
                .is_none_or(|r| r.gateway_routes.is_empty())
        );
    }

    #[test]
    fn subsets_select_by_tags() {
        let target = |v: Value| -> TargetRef { serde_json::from_value(v).unwrap() };
        let canary = dp("web", &[("version", "v2")]);
        assert!(selects(
            Some(&target(
                json!({"kind": "MeshSubset", "tags": {"version": "v2"}})
            )),
            &canary
        ));
        assert!(!selects(
            Some(&target(
                json!({"kind": "MeshSubset", "tags": {"version": "v1"}})
            )),
            &canary
        ));
        assert!(selects(
            Some(&target(
                json!({"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "v2"}})
            )),
            &canary
        ));
        assert!(!selects(
            Some(&target(
                json!({"kind": "MeshServiceSubset", "name": "api", "tags": {"version": "v2"}})
            )),
            &canary
        ));
        assert!(!selects(None, &canary));
    }

    #[test]
    fn rules_entries_are_inbound_for_every_caller_and_identity_matchers_accumulate() {
        let policies = [
            policy(
                Kind::MeshTimeout,
                "inbound-rules",
                json!({"targetRef": {"kind": "Mesh"}, "rules": [{"default": {"idleTimeout": "7s"}}]}),
            ),
            policy(
                Kind::MeshTimeout,
                "web-from",
                json!({"targetRef": {"kind": "MeshService", "name": "web"}, "from": [{"targetRef": {"kind": "Mesh"}, "default": {"connectionTimeout": "2s"}}]}),
            ),
            policy(
                Kind::MeshTrafficPermission,
                "deny-legacy",
                json!({"targetRef": {"kind": "Mesh"}, "rules": [{"default": {"deny": [{"spiffeID": {"type": "Exact", "value": "spiffe://default/legacy"}}]}}]}),
            ),
            policy(
                Kind::MeshTrafficPermission,
                "allow-mesh",
                json!({"targetRef": {"kind": "MeshService", "name": "web"}, "rules": [{"default": {"allow": [{"spiffeID": {"type": "Prefix", "value": "spiffe://default/"}}], "deny": [{"spiffeID": {"type": "Exact", "value": "spiffe://default/old"}}]}}]}),
            ),
        ];
        let rules = compute(&dp("web", &[]), &[], &policies);
        let timeout = rules[&Kind::MeshTimeout].from_any.as_ref().unwrap();
        assert_eq!(
            timeout.conf,
            json!({"idleTimeout": "7s", "connectionTimeout": "2s"})
        );
        assert_eq!(timeout.origins, ["inbound-rules", "web-from"]);
        let identities = rules[&Kind::MeshTrafficPermission]
            .identities
            .as_ref()
            .unwrap();
        assert_eq!(
            identities.conf["deny"],
            json!([
                {"spiffeID": {"type": "Exact", "value": "spiffe://default/legacy"}},
                {"spiffeID": {"type": "Exact", "value": "spiffe://default/old"}},
            ]),
            "a deny is never replaced by another policy's"
        );
        assert_eq!(identities.origins, ["deny-legacy", "allow-mesh"]);
        // Another service's proxy gets only the mesh-wide ones.
        let other = compute(&dp("api", &[]), &[], &policies);
        let identities = other[&Kind::MeshTrafficPermission]
            .identities
            .as_ref()
            .unwrap();
        assert_eq!(identities.origins, ["deny-legacy"]);
    }

    #[test]
    fn kinds_of_destination_and_route_entries() {
        let policies = [
            policy(
                Kind::MeshTimeout,
                "to-external",
                json!({"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": {"kind": "MeshExternalService", "name": "httpbin"}, "default": {"idleTimeout": "1s"}}]}),
            ),
            policy(
                Kind::MeshTimeout,
                "to-service",
                json!({"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": {"kind": "MeshService", "name": "httpbin"}, "default": {"idleTimeout": "2s"}}, {"targetRef": {"kind": "MeshService", "name": "api"}, "default": {"idleTimeout": "3s"}}]}),
            ),
            policy(
                Kind::MeshRetry,
                "to-route",
                json!({"targetRef": {"kind": "MeshService", "name": "web"}, "to": [{"targetRef": {"kind": "MeshHTTPRoute", "name": "canary"}, "default": {"http": {"numRetries": 1}}}]}),
            ),
        ];
        let destinations = ["api".to_string(), "httpbin".to_string()];
        let external = BTreeSet::from(["httpbin".to_string()]);
        let rules = compute_full(&dp("web", &[]), &destinations, &external, None, &policies);
        let timeouts = &rules[&Kind::MeshTimeout].to;
        assert_eq!(
            timeouts["httpbin"].conf,
            json!({"idleTimeout": "1s"}),
            "a MeshService entry does not name an external service"
        );
        assert_eq!(timeouts["api"].conf, json!({"idleTimeout": "3s"}));
        let retries = &rules[&Kind::MeshRetry];
        assert!(retries.to.is_empty());
        assert_eq!(
            retries.to_routes["canary"].conf,
            json!({"http": {"numRetries": 1}})
        );
        // The route entry belongs to the proxies the policy selects.
        let other = compute_full(&dp("api", &[]), &destinations, &external, None, &policies);
        assert!(!other.contains_key(&Kind::MeshRetry));
    }
}
