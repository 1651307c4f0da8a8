//! MeshHTTPRoute rules on a gateway virtual host, as Envoy routes.
//!
//! Path (Exact, PathPrefix, RegularExpression), method, header and query matches; weighted
//! backends; filters RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect,
//! URLRewrite and RequestMirror. Envoy takes the first route that matches, so
//! routes are ordered most specific first: exact paths, then prefixes longest first, then
//! regular expressions, then by the number of other conditions.

use atoll_model::types::*;
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue as EnvoyHeaderValue, HeaderValueOption, RuntimeFractionalPercent,
    header_value_option,
};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, RedirectAction, Route, RouteAction, RouteMatch,
    WeightedCluster, header_matcher, query_parameter_matcher, redirect_action, route, route_action,
    route_match, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

/// The Envoy cluster a backend reference sends traffic to: `<name>` or `<name>_<port>`, and
/// for a MeshServiceSubset its tags after it, `<name>[_<port>][key=value,…]`, so each subset
/// of a service has its own cluster and the same subset always the same one.
pub fn cluster_name(backend: &BackendRef) -> String {
    if backend.kind == TargetKind::MeshExternalService {
        return super::external::cluster_name(&backend.name);
    }
    let service = match backend.port {
        Some(port) => format!("{}_{port}", backend.name),
        None => backend.name.clone(),
    };
    if backend.kind != TargetKind::MeshServiceSubset || backend.tags.is_empty() {
        return service;
    }
    let tags: Vec<String> = backend
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{service}[{}]", tags.join(","))
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

/// Whether any part of a route can apply to the virtual host for `hostname`.
pub fn applies_to_host(spec: &MeshHttpRouteSpec, hostname: &str) -> bool {
    spec.to.iter().any(|to| {
        to.hostnames.is_empty() || to.hostnames.iter().any(|h| hostname_applies(h, hostname))
    })
}

/// Routes of `specs` that apply to the virtual host for `hostname`, most specific first.
pub fn for_host(hostname: &str, specs: &[&MeshHttpRouteSpec]) -> Vec<Route> {
    let named: Vec<(&str, &MeshHttpRouteSpec)> = specs.iter().map(|s| ("", *s)).collect();
    for_host_named(hostname, &named)
}

/// [`for_host`] with each Envoy route named after the MeshHTTPRoute it came from, so policies
/// targeting one MeshHTTPRoute find its routes.
pub fn for_host_named(hostname: &str, specs: &[(&str, &MeshHttpRouteSpec)]) -> Vec<Route> {
    let mut ranked: Vec<((u8, usize, usize), Route)> = Vec::new();
    for (name, spec) in specs {
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
                let conf = rule.default.as_ref();
                for m in matches {
                    let mut route = Route {
                        name: name.to_string(),
                        r#match: Some(route_match(m)),
                        action: Some(action.clone()),
                        ..Default::default()
                    };
                    if let Some(conf) = conf {
                        modify_headers(&mut route, conf);
                    }
                    ranked.push((rank(m), route));
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
        query_parameters: m.query_params.iter().map(query_matcher).collect(),
        ..Default::default()
    }
}

fn query_matcher(q: &QueryParamMatch) -> QueryParameterMatcher {
    let pattern = match q.match_type {
        QueryMatchType::RegularExpression => {
            string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                regex: q.value.clone(),
                ..Default::default()
            })
        }
        _ => string_matcher::MatchPattern::Exact(q.value.clone()),
    };
    QueryParameterMatcher {
        name: q.name.clone(),
        query_parameter_match_specifier: Some(
            query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(StringMatcher {
                match_pattern: Some(pattern),
                ..Default::default()
            }),
        ),
    }
}

fn header_options(modifier: &HeaderModifier) -> Vec<HeaderValueOption> {
    let option = |h: &atoll_model::types::HeaderValue,
                  action: header_value_option::HeaderAppendAction| {
        HeaderValueOption {
            header: Some(EnvoyHeaderValue {
                key: h.name.to_lowercase(),
                value: h.value.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        }
    };
    use header_value_option::HeaderAppendAction as A;
    modifier
        .add
        .iter()
        .map(|h| option(h, A::AppendIfExistsOrAdd))
        .chain(
            modifier
                .set
                .iter()
                .map(|h| option(h, A::OverwriteIfExistsOrAdd)),
        )
        .collect()
}

/// Request and response header modifiers of a rule, on its route.
fn modify_headers(route: &mut Route, conf: &HttpRuleConf) {
    for filter in &conf.filters {
        if let Some(m) = &filter.request_header_modifier {
            route.request_headers_to_add.extend(header_options(m));
            route
                .request_headers_to_remove
                .extend(m.remove.iter().map(|h| h.to_lowercase()));
        }
        if let Some(m) = &filter.response_header_modifier {
            route.response_headers_to_add.extend(header_options(m));
            route
                .response_headers_to_remove
                .extend(m.remove.iter().map(|h| h.to_lowercase()));
        }
    }
}

/// Every backend a route sends traffic to, mirrors included: the clusters it needs.
pub fn backends(spec: &MeshHttpRouteSpec) -> impl Iterator<Item = &BackendRef> {
    spec.to
        .iter()
        .flat_map(|to| &to.rules)
        .filter_map(|rule| rule.default.as_ref())
        .flat_map(|conf| {
            conf.backend_refs.iter().chain(
                conf.filters
                    .iter()
                    .filter_map(|f| f.request_mirror.as_ref())
                    .filter_map(|m| m.backend_ref.as_ref()),
            )
        })
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
    let mut action = RouteAction {
        cluster_specifier: Some(cluster_specifier),
        ..Default::default()
    };
    for filter in &conf.filters {
        if let Some(rewrite) = &filter.url_rewrite {
            rewrite_url(&mut action, rewrite);
        }
        if let Some(mirror) = &filter.request_mirror
            && let Some(backend) = &mirror.backend_ref
        {
            action
                .request_mirror_policies
                .push(mirror_policy(backend, mirror));
        }
    }
    Some(route::Action::Route(action))
}

fn rewrite_url(action: &mut RouteAction, rewrite: &UrlRewrite) {
    if let Some(host) = &rewrite.hostname {
        action.host_rewrite_specifier = Some(
            route_action::HostRewriteSpecifier::HostRewriteLiteral(host.clone()),
        );
    } else if rewrite.host_to_backend_hostname {
        action.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            BoolValue { value: true },
        ));
    }
    match rewrite.path.as_ref() {
        Some(PathModifier {
            modifier_type: PathModifierType::ReplacePrefixMatch,
            replace_prefix_match: Some(prefix),
            ..
        }) => action.prefix_rewrite = prefix.clone(),
        Some(PathModifier {
            modifier_type: PathModifierType::ReplaceFullPath,
            replace_full_path: Some(path),
            ..
        }) => {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(RegexMatcher {
                    regex: "^.*$".into(),
                    ..Default::default()
                }),
                substitution: path.clone(),
            })
        }
        _ => {}
    }
}

fn mirror_policy(
    backend: &BackendRef,
    mirror: &RequestMirror,
) -> route_action::RequestMirrorPolicy {
    let percent = match &mirror.percentage {
        Some(IntOrString::Int(n)) => *n as f64,
        Some(IntOrString::String(s)) => s.trim().parse::<f64>().unwrap_or(100.0),
        None => 100.0,
    };
    // Envoy takes a fraction per million for precision below one percent.
    let per_million = (percent.clamp(0.0, 100.0) * 10_000.0).round() as u32;
    route_action::RequestMirrorPolicy {
        cluster: cluster_name(backend),
        runtime_fraction: Some(RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: per_million,
                denominator: fractional_percent::DenominatorType::Million as i32,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
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

    /// The spec of the one resource in `yaml`.
    pub(crate) fn spec_of(yaml: &str) -> atoll_model::Spec {
        match atoll_model::parse_documents(yaml)
            .into_iter()
            .next()
            .map(|d| d.outcome)
        {
            Some(Ok(r)) => r.spec,
            other => panic!("invalid test resource: {other:?}"),
        }
    }

    pub(crate) fn route_spec(yaml: &str) -> MeshHttpRouteSpec {
        match spec_of(yaml) {
            atoll_model::Spec::MeshHttpRoute(spec) => spec,
            other => panic!("not a route: {other:?}"),
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
