//! MeshHTTPRoute and MeshTCPRoute on a sidecar's outbounds, with Kuma 2.x semantics.
//!
//! A route applies to the Dataplanes its top-level `targetRef` selects (`Mesh`: all;
//! `MeshSubset`: those with an inbound carrying its tags; `MeshService`: those offering the
//! service; `Dataplane`: the one named), for the services its `to[].targetRef` names
//! (`kind: MeshService`). When several apply, the more specific top-level target wins
//! (Dataplane > MeshService > MeshSubset > Mesh, then the later name): for HTTP rule by rule
//! (a rule with the same matches replaces the less specific one's), for TCP the whole route.
//! HTTP rules become Envoy routes through the gateway's translation ([`super::routes`]); a
//! rule without backends sends to the outbound's own service, and a request no rule matches
//! goes there too.

use atoll_model::types::{
    BackendRef, DataplaneSpec, FilterType, HttpRouteTo, HttpRule, HttpRuleConf, MeshHttpRouteSpec,
    MeshTcpRouteSpec, SERVICE_TAG, TargetKind, TargetRef,
};
use envoy_types::pb::envoy::config::route::v3::Route;

use super::{routes, sidecar};

/// The Dataplane routes are matched against.
pub struct Client<'a> {
    pub name: &'a str,
    pub spec: &'a DataplaneSpec,
}

impl Client<'_> {
    /// How specific `target` is for this Dataplane (higher wins); `None` when it does not
    /// select it.
    fn specificity(&self, target: &TargetRef) -> Option<u8> {
        let mut inbounds = self
            .spec
            .networking
            .iter()
            .flat_map(|n| &n.inbound)
            .map(|i| &i.tags);
        let has = |tags: &atoll_model::types::Tags, wanted: &atoll_model::types::Tags| {
            wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
        };
        let service = |tags: &atoll_model::types::Tags| tags.get(SERVICE_TAG) == Some(&target.name);
        match target.kind {
            TargetKind::Mesh => Some(0),
            TargetKind::MeshSubset => {
                (target.tags.is_empty() || inbounds.any(|t| has(t, &target.tags))).then_some(1)
            }
            TargetKind::MeshService => inbounds.any(service).then_some(2),
            TargetKind::MeshServiceSubset => inbounds
                .any(|t| service(t) && has(t, &target.tags))
                .then_some(3),
            TargetKind::Dataplane => (target.name == self.name).then_some(4),
            _ => None,
        }
    }

    /// The routes among `all` (name, top-level target, route) that select this Dataplane,
    /// least specific first.
    pub fn applicable<'r, R>(
        &self,
        all: impl IntoIterator<Item = (&'r str, Option<&'r TargetRef>, &'r R)>,
    ) -> Vec<(&'r str, &'r R)> {
        let mut selected: Vec<(u8, &str, &R)> = all
            .into_iter()
            .filter_map(|(name, target, route)| Some((self.specificity(target?)?, name, route)))
            .collect();
        selected.sort_by_key(|(specificity, name, _)| (*specificity, *name));
        selected
            .into_iter()
            .map(|(_, name, route)| (name, route))
            .collect()
    }
}

/// Whether a route's `to[].targetRef` names `service`.
fn names(target: Option<&TargetRef>, service: &str) -> bool {
    target.is_some_and(|t| t.kind == TargetKind::MeshService && t.name == service)
}

/// The service itself as a backend.
fn itself(service: &str) -> BackendRef {
    BackendRef {
        kind: TargetKind::MeshService,
        name: service.to_string(),
        ..Default::default()
    }
}

/// HTTP routes of `specs` (least specific first) for the outbound to `service` whose own
/// cluster is `cluster`, and every backend they send to; `None` when no rule applies.
pub fn http(
    service: &str,
    cluster: &str,
    specs: &[(&str, &MeshHttpRouteSpec)],
) -> Option<(Vec<Route>, Vec<BackendRef>)> {
    // Each rule with the MeshHTTPRoute it came from: Envoy routes are named after it, which
    // is how a policy's `to[]` entry of kind MeshHTTPRoute finds them.
    let mut rules: Vec<(&str, HttpRule)> = Vec::new();
    let entries = specs.iter().flat_map(|(name, s)| {
        s.to.iter()
            .filter(|to| names(to.target_ref.as_ref(), service))
            .flat_map(move |to| to.rules.iter().map(move |rule| (*name, rule)))
    });
    for (name, rule) in entries {
        let mut rule = rule.clone();
        let conf = rule.default.get_or_insert_with(HttpRuleConf::default);
        let redirects = conf
            .filters
            .iter()
            .any(|f| f.filter_type == FilterType::RequestRedirect);
        if conf.backend_refs.is_empty() && !redirects {
            conf.backend_refs.push(itself(service));
        }
        match rules.iter_mut().find(|(_, r)| r.matches == rule.matches) {
            Some(less_specific) => *less_specific = (name, rule),
            None => rules.push((name, rule)),
        }
    }
    if rules.is_empty() {
        return None;
    }
    let merged: Vec<(&str, MeshHttpRouteSpec)> = rules
        .into_iter()
        .map(|(name, rule)| {
            (
                name,
                MeshHttpRouteSpec {
                    target_ref: None,
                    to: vec![HttpRouteTo {
                        target_ref: None,
                        hostnames: Vec::new(),
                        rules: vec![rule],
                    }],
                },
            )
        })
        .collect();
    let named: Vec<(&str, &MeshHttpRouteSpec)> = merged.iter().map(|(n, s)| (*n, s)).collect();
    let mut envoy_routes = routes::for_host_named("*", &named);
    envoy_routes.push(sidecar::route_all(cluster));
    let backends = merged
        .iter()
        .flat_map(|(_, spec)| routes::backends(spec).cloned())
        .collect();
    Some((envoy_routes, backends))
}

/// The backends the most specific of `specs` (least specific first) sends TCP connections
/// for `service` to; `None` when none applies.
pub fn tcp(service: &str, specs: &[&MeshTcpRouteSpec]) -> Option<Vec<BackendRef>> {
    specs.iter().rev().find_map(|spec| {
        spec.to
            .iter()
            .filter(|to| names(to.target_ref.as_ref(), service))
            .flat_map(|to| &to.rules)
            .filter_map(|rule| rule.default.as_ref())
            .map(|conf| conf.backend_refs.clone())
            .find(|refs| !refs.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xds::routes::tests::{route_spec, spec_of};

    fn dataplane(yaml: &str) -> DataplaneSpec {
        match spec_of(yaml) {
            atoll_model::Spec::Dataplane(dp) => dp,
            other => panic!("not a Dataplane: {other:?}"),
        }
    }

    fn route(name: &str, top: &str, rules: &str) -> MeshHttpRouteSpec {
        route_spec(&format!(
            "type: MeshHTTPRoute\nmesh: default\nname: {name}\nspec:\n  targetRef:\n{top}  to:\n  - targetRef:\n      kind: MeshService\n      name: web\n    rules:\n{rules}"
        ))
    }

    const CLIENT: &str = "type: Dataplane\nmesh: default\nname: client-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: client\n      team: a\n";

    #[test]
    fn the_most_specific_target_wins_rule_by_rule() {
        let spec = dataplane(CLIENT);
        let client = Client {
            name: "client-1",
            spec: &spec,
        };
        let v2 = |backend: &str| {
            format!(
                "    - matches:\n      - path:\n          type: PathPrefix\n          value: /v2\n      default:\n        backendRefs:\n        - kind: MeshService\n          name: {backend}\n"
            )
        };
        let mesh = route("a-mesh", "    kind: Mesh\n", &v2("web-mesh"));
        let subset = route(
            "b-subset",
            "    kind: MeshSubset\n    tags:\n      team: a\n",
            &v2("web-subset"),
        );
        let other_team = route(
            "c-other",
            "    kind: MeshSubset\n    tags:\n      team: b\n",
            &v2("web-other"),
        );
        let service = route(
            "d-service",
            "    kind: MeshService\n    name: client\n",
            "    - matches:\n      - path:\n          type: Exact\n          value: /x\n      default:\n        filters:\n        - type: RequestHeaderModifier\n          requestHeaderModifier:\n            set:\n            - name: x-by\n              value: service\n",
        );
        let all = [
            ("d-service", &service),
            ("c-other", &other_team),
            ("b-subset", &subset),
            ("a-mesh", &mesh),
        ];
        let specs = client.applicable(all.iter().map(|(n, r)| (*n, r.target_ref.as_ref(), *r)));
        assert_eq!(specs.len(), 3, "team b's route does not select this client");
        let (routes, backends) = http("web", "web", &specs).unwrap();
        let text = format!("{routes:?}");
        assert!(
            text.contains("web-subset") && !text.contains("web-mesh"),
            "{text}"
        );
        let names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
        // The header-only rule sends to the service itself.
        assert_eq!(names, ["web-subset", "web"]);
        // Exact /x, then /v2, then the catch-all to the outbound's own cluster.
        assert_eq!(routes.len(), 3);
        assert!(format!("{:?}", routes[2]).contains("Prefix(\"/\")"));
        assert!(http("api", "api", &specs).is_none(), "no rule for api");
    }

    #[test]
    fn tcp_takes_the_most_specific_route() {
        let tcp_route = |name: &str, backend: &str| -> MeshTcpRouteSpec {
            match spec_of(&format!(
                "type: MeshTCPRoute\nmesh: default\nname: {name}\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n  - targetRef:\n      kind: MeshService\n      name: db\n    rules:\n    - default:\n        backendRefs:\n        - kind: MeshService\n          name: {backend}\n          weight: 3\n"
            )) {
                atoll_model::Spec::MeshTcpRoute(s) => s,
                other => panic!("{other:?}"),
            }
        };
        let (a, b) = (tcp_route("a", "db-a"), tcp_route("b", "db-b"));
        let backends = tcp("db", &[&a, &b]).unwrap();
        assert_eq!(backends[0].name, "db-b");
        assert!(tcp("web", &[&a]).is_none());
    }
}
