//! MeshHTTPRoute rules on a gateway virtual host, as Envoy routes.
//!
//! Supported in this build: path (Exact, PathPrefix, RegularExpression), method and header
//! matches; weighted backends; RequestRedirect. Envoy takes the first route that matches, so
//! routes are ordered most specific first: exact paths, then prefixes longest first, then
//! regular expressions, then by the number of other conditions.

use atoll_model::types::*;
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, RedirectAction, Route, RouteAction, RouteMatch, WeightedCluster, header_matcher,
    redirect_action, route, route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::UInt32Value;

/// The Envoy cluster a backend reference sends traffic to: `<name>` or `<name>_<port>`.
pub fn cluster_name(backend: &BackendRef) -> String {
    match backend.port {
        Some(port) => format!("{}_{port}", backend.name),
        None => backend.name.clone(),
    }
}

/// Whether a route's hostname applies to a listener's hostname (`*` on either side, or a
/// leftmost-label wildcard covering the other).
fn hostname_applies(route: &str, listener: &str) -> bool {
    let covers = |wild: &str, name: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| name.ends_with(suffix))
    };
    route == listener
        || route == "*"
        || listener == "*"
        || covers(route, listener)
        || covers(listener, route)
}

/// Routes of `specs` that apply to the virtual host for `hostname`, most specific first.
pub fn for_host(hostname: &str, specs: &[&MeshHttpRouteSpec]) -> Vec<Route> {
    let mut ranked: Vec<((u8, usize, usize), Route)> = Vec::new();
    for spec in specs {
        for to in &spec.to {
            if !to.hostnames.is_empty()
                && !to.hostnames.iter().any(|h| hostname_applies(h, hostname))
            {
                continue;
            }
            for rule in &to.rules {
                let Some(action) = rule.default.as_ref().and_then(action) else {
                    continue;
                };
                let everything = [HttpMatch::default()];
                let matches: &[HttpMatch] = if rule.matches.is_empty() {
                    &everything
                } else {
                    &rule.matches
                };
                for m in matches {
                    ranked.push((
                        rank(m),
                        Route {
                            r#match: Some(route_match(m)),
                            action: Some(action.clone()),
                            ..Default::default()
                        },
                    ));
                }
            }
        }
    }
    // Stable: among equals, the order the routes were written in wins.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, route)| route).collect()
}

/// Lower sorts first.
fn rank(m: &HttpMatch) -> (u8, usize, usize) {
    let conditions = m.headers.len() + m.query_params.len() + usize::from(m.method.is_known());
    let (class, length) = match &m.path {
        Some(PathMatch {
            match_type: PathMatchType::Exact,
            value,
        }) => (0, value.len()),
        Some(PathMatch {
            match_type: PathMatchType::PathPrefix,
            value,
        }) => (1, value.len()),
        Some(_) => (2, 0),
        None => (1, 1),
    };
    (class, usize::MAX - length, usize::MAX - conditions)
}

fn route_match(m: &HttpMatch) -> RouteMatch {
    let path_specifier = match &m.path {
        Some(PathMatch {
            match_type: PathMatchType::Exact,
            value,
        }) => route_match::PathSpecifier::Path(value.clone()),
        Some(PathMatch {
            match_type: PathMatchType::RegularExpression,
            value,
        }) => route_match::PathSpecifier::SafeRegex(RegexMatcher {
            regex: value.clone(),
            ..Default::default()
        }),
        // PathPrefix matches whole segments: /foo matches /foo and /foo/bar, not /foobar.
        Some(PathMatch { value, .. }) if value != "/" => {
            route_match::PathSpecifier::PathSeparatedPrefix(value.trim_end_matches('/').to_string())
        }
        _ => route_match::PathSpecifier::Prefix("/".into()),
    };
    let mut headers: Vec<HeaderMatcher> = m.headers.iter().map(header_matcher).collect();
    if m.method.is_known() {
        headers.push(HeaderMatcher {
            name: ":method".into(),
            header_match_specifier: Some(string_match(string_matcher::MatchPattern::Exact(
                m.method.as_str().into(),
            ))),
            ..Default::default()
        });
    }
    RouteMatch {
        path_specifier: Some(path_specifier),
        headers,
        ..Default::default()
    }
}

fn string_match(pattern: string_matcher::MatchPattern) -> header_matcher::HeaderMatchSpecifier {
    header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

fn header_matcher(h: &HeaderMatch) -> HeaderMatcher {
    use header_matcher::HeaderMatchSpecifier as S;
    use string_matcher::MatchPattern as P;
    let value = h.value.clone().unwrap_or_default();
    let (specifier, invert) = match h.match_type {
        HeaderMatchType::Prefix => (string_match(P::Prefix(value)), false),
        HeaderMatchType::RegularExpression => (
            string_match(P::SafeRegex(RegexMatcher {
                regex: value,
                ..Default::default()
            })),
            false,
        ),
        HeaderMatchType::Present => (S::PresentMatch(true), false),
        HeaderMatchType::Absent => (S::PresentMatch(true), true),
        _ => (string_match(P::Exact(value)), false),
    };
    HeaderMatcher {
        name: h.name.to_lowercase(),
        header_match_specifier: Some(specifier),
        invert_match: invert,
        ..Default::default()
    }
}

/// What a rule does: redirect, or send to its backends; `None` when it does neither.
fn action(conf: &HttpRuleConf) -> Option<route::Action> {
    if let Some(redirect) = conf
        .filters
        .iter()
        .find_map(|f| f.request_redirect.as_ref())
    {
        return Some(route::Action::Redirect(redirect_action(redirect)));
    }
    let cluster_specifier = match conf.backend_refs.as_slice() {
        [] => return None,
        [one] => route_action::ClusterSpecifier::Cluster(cluster_name(one)),
        many => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: many
                .iter()
                .map(|b| weighted_cluster::ClusterWeight {
                    name: cluster_name(b),
                    weight: Some(UInt32Value {
                        value: b.weight.unwrap_or(1),
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    Some(route::Action::Route(RouteAction {
        cluster_specifier: Some(cluster_specifier),
        ..Default::default()
    }))
}

fn redirect_action(r: &RequestRedirect) -> RedirectAction {
    use redirect_action::RedirectResponseCode as Code;
    let response_code = match r.status_code {
        Some(301) => Code::MovedPermanently,
        Some(303) => Code::SeeOther,
        Some(307) => Code::TemporaryRedirect,
        Some(308) => Code::PermanentRedirect,
        _ => Code::Found,
    };
    let path_rewrite_specifier = r.path.as_ref().and_then(|p| match p.modifier_type {
        PathModifierType::ReplaceFullPath => p
            .replace_full_path
            .clone()
            .map(redirect_action::PathRewriteSpecifier::PathRedirect),
        PathModifierType::ReplacePrefixMatch => p
            .replace_prefix_match
            .clone()
            .map(redirect_action::PathRewriteSpecifier::PrefixRewrite),
        _ => None,
    });
    RedirectAction {
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect: r.port.unwrap_or_default(),
        response_code: response_code as i32,
        scheme_rewrite_specifier: r
            .scheme
            .clone()
            .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
        path_rewrite_specifier,
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn route_spec(yaml: &str) -> MeshHttpRouteSpec {
        match atoll_model::parse_documents(yaml)
            .into_iter()
            .next()
            .map(|d| d.outcome)
        {
            Some(Ok(r)) => match r.spec {
                atoll_model::Spec::MeshHttpRoute(spec) => spec,
                other => panic!("not a route: {other:?}"),
            },
            other => panic!("invalid test route: {other:?}"),
        }
    }

    pub(crate) const ROUTES: &str = "type: MeshHTTPRoute
name: r
mesh: default
spec:
  targetRef:
    kind: MeshGateway
    name: edge
  to:
  - targetRef:
      kind: Mesh
    hostnames:
    - foo.example.com
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /api
      default:
        backendRefs:
        - kind: MeshService
          name: api
          port: 80
          weight: 90
        - kind: MeshService
          name: api-canary
          port: 80
          weight: 10
    - matches:
      - path:
          type: Exact
          value: /old
      default:
        filters:
        - type: RequestRedirect
          requestRedirect:
            statusCode: 301
            path:
              type: ReplaceFullPath
              replaceFullPath: /new
    - default:
        backendRefs:
        - kind: MeshService
          name: web
";

    #[test]
    fn routes_attach_by_hostname_and_sort_most_specific_first() {
        let spec = route_spec(ROUTES);
        let routes = for_host("foo.example.com", &[&spec]);
        let paths: Vec<String> = routes
            .iter()
            .map(|r| {
                format!(
                    "{:?}",
                    r.r#match.as_ref().unwrap().path_specifier.as_ref().unwrap()
                )
            })
            .collect();
        assert_eq!(
            paths,
            [
                r#"Path("/old")"#,
                r#"PathSeparatedPrefix("/api")"#,
                r#"Prefix("/")"#
            ]
        );
        assert!(
            matches!(&routes[0].action, Some(route::Action::Redirect(r)) if r.response_code == 0)
        );
        match &routes[1].action {
            Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(w)),
                ..
            })) => {
                let split: Vec<(String, u32)> = w
                    .clusters
                    .iter()
                    .map(|c| (c.name.clone(), c.weight.as_ref().unwrap().value))
                    .collect();
                assert_eq!(
                    split,
                    [
                        ("api_80".to_string(), 90),
                        ("api-canary_80".to_string(), 10)
                    ]
                );
            }
            other => panic!("expected weighted clusters: {other:?}"),
        }
        assert!(
            for_host("bar.example.com", &[&spec]).is_empty(),
            "routes for another hostname must not attach"
        );
        assert_eq!(
            for_host("*", &[&spec]).len(),
            3,
            "the catch-all host takes every route"
        );
    }
}
