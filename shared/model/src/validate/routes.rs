//! MeshHTTPRoute and MeshTCPRoute rules.

use std::collections::BTreeSet;

use super::common::{hostname, not_empty, one_of, opt_port, precise_hostname, regex, tags};
use super::{Path, Report};
use crate::types::*;

/// Kinds a route's top-level `targetRef` may name.
const ROUTE_TARGETS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshSubset,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::MeshGateway,
    TargetKind::Dataplane,
];

/// Kinds a `to[].targetRef` may name when the route targets sidecars (MeshMultiZoneService is
/// recognised, then refused with its own message).
const SIDECAR_DESTINATIONS: &[TargetKind] =
    &[TargetKind::MeshService, TargetKind::MeshMultiZoneService];

/// Kinds a `backendRef` may name.
const BACKENDS: &[TargetKind] = &[
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::MeshExternalService,
    // Recognised, then refused with its own message (NO_MULTI_ZONE_SERVICE).
    TargetKind::MeshMultiZoneService,
];

/// Kinds a RequestMirror's `backendRef` may name.
const MIRRORS: &[TargetKind] = &[TargetKind::MeshService, TargetKind::MeshServiceSubset];

/// Kuma accepts MeshMultiZoneService references, but Atoll has no such resource, so a
/// reference to one could only be resolved as something else.
const NO_MULTI_ZONE_SERVICE: &str = "MeshMultiZoneService is not supported yet: Atoll has no MeshMultiZoneService resource (see docs/choices.md)";

pub(super) fn validate_http(spec: &MeshHttpRouteSpec, path: &Path, report: &mut Report) {
    let on_gateway = top_target(spec.target_ref.as_ref(), &path.field("targetRef"), report);
    // An empty `to` routes nothing; Kuma accepts it as a no-op, and so does Atoll.
    let to_path = path.field("to");
    for (i, to) in spec.to.iter().enumerate() {
        let at = to_path.index(i);
        to_target(
            to.target_ref.as_ref(),
            on_gateway,
            &at.field("targetRef"),
            report,
        );
        if !to.hostnames.is_empty() && !on_gateway {
            report.add(
                &at.field("hostnames"),
                "may only be set when the top-level targetRef is a MeshGateway",
            );
        }
        for (j, name) in to.hostnames.iter().enumerate() {
            hostname(report, &at.field("hostnames").index(j), name);
        }
        let rules = at.field("rules");
        if to.rules.is_empty() {
            report.add(&rules, "must have at least one rule");
        }
        for (j, rule) in to.rules.iter().enumerate() {
            http_rule(rule, on_gateway, &rules.index(j), report);
        }
    }
}

pub(super) fn validate_tcp(spec: &MeshTcpRouteSpec, path: &Path, report: &mut Report) {
    let on_gateway = top_target(spec.target_ref.as_ref(), &path.field("targetRef"), report);
    let to_path = path.field("to");
    for (i, to) in spec.to.iter().enumerate() {
        let at = to_path.index(i);
        to_target(
            to.target_ref.as_ref(),
            on_gateway,
            &at.field("targetRef"),
            report,
        );
        let rules = at.field("rules");
        if to.rules.is_empty() {
            report.add(&rules, "must have at least one rule");
        }
        for (j, rule) in to.rules.iter().enumerate() {
            let conf = rules.index(j).field("default");
            match &rule.default {
                None => report.add(&conf, "must be set"),
                // Unlike HTTP rules, a TCP rule has no default destination, also on sidecars.
                Some(conf_value) => backend_refs(
                    &conf_value.backend_refs,
                    &conf.field("backendRefs"),
                    true,
                    report,
                ),
            }
        }
    }
}

/// Checks the top-level target; true when it is a MeshGateway.
fn top_target(target: Option<&TargetRef>, path: &Path, report: &mut Report) -> bool {
    let Some(target) = target else {
        report.add(path, "must be set");
        return false;
    };
    target_ref(target, ROUTE_TARGETS, path, report);
    target.kind == TargetKind::MeshGateway
}

fn to_target(target: Option<&TargetRef>, on_gateway: bool, path: &Path, report: &mut Report) {
    let Some(target) = target else {
        report.add(path, "must be set");
        return;
    };
    if on_gateway {
        if target.kind.is_known() && target.kind != TargetKind::Mesh {
            report.add(
                &path.field("kind"),
                "must be Mesh when the top-level targetRef is a MeshGateway",
            );
        }
        // The kind is judged just above; only the name and tag checks remain to run.
        target_ref(target, std::slice::from_ref(&target.kind), path, report);
    } else {
        target_ref(target, SIDECAR_DESTINATIONS, path, report);
    }
}

fn target_ref(target: &TargetRef, allowed: &[TargetKind], path: &Path, report: &mut Report) {
    let kind_path = path.field("kind");
    one_of(report, &kind_path, &target.kind, true);
    if target.kind == TargetKind::MeshExternalService && allowed == SIDECAR_DESTINATIONS {
        report.add(
            &kind_path,
            "routes to a MeshExternalService are not supported yet: reach it from a Dataplane outbound (backendRef) or name it in a rule's backendRefs",
        );
    } else if target.kind.is_known() && !allowed.contains(&target.kind) {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        report.add(
            &kind_path,
            format!(
                "{} is not allowed here; use one of {}",
                target.kind,
                names.join(", ")
            ),
        );
    } else if target.kind == TargetKind::MeshMultiZoneService {
        report.add(&kind_path, NO_MULTI_ZONE_SERVICE);
    }
    let named = !matches!(target.kind, TargetKind::Mesh | TargetKind::MeshSubset);
    if named && target.kind.is_known() && target.name.is_empty() {
        report.add(
            &path.field("name"),
            format!("must be set for kind {}", target.kind),
        );
    }
    not_honoured_reference(&target.labels, &target.mesh, path, report);
    if !target.section_name.is_empty() {
        report.add(
            &path.field("sectionName"),
            "is not supported yet: a route applies to every port of its target",
        );
    }
    if target.kind == TargetKind::Mesh && !target.name.is_empty() {
        report.add(&path.field("name"), "must not be set for kind Mesh");
    }
    tags(report, &path.field("tags"), &target.tags);
}

fn http_rule(rule: &HttpRule, on_gateway: bool, path: &Path, report: &mut Report) {
    for (i, m) in rule.matches.iter().enumerate() {
        http_match(m, &path.field("matches").index(i), report);
    }
    let conf_path = path.field("default");
    let Some(conf) = &rule.default else {
        report.add(&conf_path, "must be set");
        return;
    };
    let redirects = conf
        .filters
        .iter()
        .any(|f| f.filter_type == FilterType::RequestRedirect);
    // `replacePrefixMatch` replaces the matched prefix, so every match must have one; no
    // matches at all is the prefix `/`.
    let all_prefix = rule.matches.iter().all(|m| {
        m.path
            .as_ref()
            .is_some_and(|p| p.match_type == PathMatchType::PathPrefix)
    });
    let context = FilterContext {
        on_gateway,
        all_prefix,
    };
    for (i, filter) in conf.filters.iter().enumerate() {
        http_filter(
            filter,
            &context,
            &conf_path.field("filters").index(i),
            report,
        );
    }
    // A redirect answers the request itself. A gateway has no other destination than its
    // backends; a sidecar's rule without backends goes to the service the route is for.
    backend_refs(
        &conf.backend_refs,
        &conf_path.field("backendRefs"),
        on_gateway && !redirects,
        report,
    );
}

fn http_match(m: &HttpMatch, path: &Path, report: &mut Report) {
    one_of(report, &path.field("method"), &m.method, false);
    if let Some(p) = &m.path {
        let at = path.field("path");
        one_of(report, &at.field("type"), &p.match_type, true);
        let value = at.field("value");
        match p.match_type {
            PathMatchType::Exact | PathMatchType::PathPrefix if !p.value.starts_with('/') => {
                report.add(&value, "must start with '/'")
            }
            PathMatchType::RegularExpression => regex(report, &value, &p.value),
            _ => {}
        }
        if p.match_type == PathMatchType::PathPrefix && p.value != "/" && p.value.ends_with('/') {
            report.add(
                &value,
                "must not end with '/': a prefix matches whole path segments, so /api already covers /api/...",
            );
        }
    }
    for (i, header) in m.headers.iter().enumerate() {
        let at = path.field("headers").index(i);
        one_of(report, &at.field("type"), &header.match_type, true);
        not_empty(report, &at.field("name"), &header.name);
        let needs_value = !matches!(
            header.match_type,
            HeaderMatchType::Present | HeaderMatchType::Absent
        );
        match (&header.value, needs_value) {
            (None, true) if header.match_type.is_known() => report.add(
                &at.field("value"),
                format!("must be set for type {}", header.match_type),
            ),
            (Some(_), false) => report.add(
                &at.field("value"),
                format!("must not be set for type {}", header.match_type),
            ),
            (Some(v), true) if header.match_type == HeaderMatchType::RegularExpression => {
                regex(report, &at.field("value"), v)
            }
            _ => {}
        }
    }
    let mut query_names = BTreeSet::new();
    for (i, query) in m.query_params.iter().enumerate() {
        let at = path.field("queryParams").index(i);
        one_of(report, &at.field("type"), &query.match_type, true);
        not_empty(report, &at.field("name"), &query.name);
        if !query_names.insert(query.name.as_str()) {
            report.add(
                &at.field("name"),
                format!("{:?} is already matched by an earlier entry", query.name),
            );
        }
        if query.match_type == QueryMatchType::RegularExpression {
            regex(report, &at.field("value"), &query.value);
        }
    }
}

/// What a filter's rules depend on outside the filter.
struct FilterContext {
    /// The route's top-level targetRef is a MeshGateway.
    on_gateway: bool,
    /// Every match of the rule has a PathPrefix path.
    all_prefix: bool,
}

fn http_filter(filter: &HttpFilter, context: &FilterContext, path: &Path, report: &mut Report) {
    one_of(report, &path.field("type"), &filter.filter_type, true);
    let configs = [
        (
            "requestHeaderModifier",
            FilterType::RequestHeaderModifier,
            filter.request_header_modifier.is_some(),
        ),
        (
            "responseHeaderModifier",
            FilterType::ResponseHeaderModifier,
            filter.response_header_modifier.is_some(),
        ),
        (
            "requestRedirect",
            FilterType::RequestRedirect,
            filter.request_redirect.is_some(),
        ),
        (
            "urlRewrite",
            FilterType::UrlRewrite,
            filter.url_rewrite.is_some(),
        ),
        (
            "requestMirror",
            FilterType::RequestMirror,
            filter.request_mirror.is_some(),
        ),
    ];
    for (field, filter_type, present) in configs {
        if filter.filter_type == filter_type && !present {
            report.add(
                &path.field(field),
                format!("must be set for type {filter_type}"),
            );
        }
        if filter.filter_type != filter_type && present {
            report.add(
                &path.field(field),
                format!("must not be set for type {}", filter.filter_type),
            );
        }
    }
    for (field, modifier) in [
        ("requestHeaderModifier", &filter.request_header_modifier),
        ("responseHeaderModifier", &filter.response_header_modifier),
    ] {
        if let Some(m) = modifier {
            header_modifier(m, &path.field(field), report);
        }
    }
    if let Some(redirect) = &filter.request_redirect {
        let at = path.field("requestRedirect");
        if let Some(scheme) = &redirect.scheme
            && scheme != "http"
            && scheme != "https"
        {
            report.add(&at.field("scheme"), "must be http or https");
        }
        if let Some(host) = &redirect.hostname {
            precise_hostname(report, &at.field("hostname"), host);
        }
        opt_port(report, &at.field("port"), redirect.port);
        if let Some(code) = redirect.status_code
            && ![301, 302, 303, 307, 308].contains(&code)
        {
            report.add(
                &at.field("statusCode"),
                "must be one of 301, 302, 303, 307, 308",
            );
        }
        if let Some(p) = &redirect.path {
            path_modifier(p, context.all_prefix, &at.field("path"), report);
        }
    }
    if let Some(rewrite) = &filter.url_rewrite {
        let at = path.field("urlRewrite");
        if let Some(host) = &rewrite.hostname {
            precise_hostname(report, &at.field("hostname"), host);
        }
        if rewrite.hostname.is_some() && rewrite.host_to_backend_hostname {
            report.add(
                &at.field("hostToBackendHostname"),
                "must not be set together with hostname",
            );
        }
        // A sidecar sends to its destination's own name already; only a gateway has a
        // request Host that could differ from the backend's.
        if rewrite.host_to_backend_hostname && !context.on_gateway {
            report.add(
                &at.field("hostToBackendHostname"),
                "may only be set when the top-level targetRef is a MeshGateway",
            );
        }
        if let Some(p) = &rewrite.path {
            path_modifier(p, context.all_prefix, &at.field("path"), report);
        }
    }
    if let Some(mirror) = &filter.request_mirror {
        let at = path.field("requestMirror");
        match &mirror.backend_ref {
            Some(backend) => backend_ref(backend, MIRRORS, &at.field("backendRef"), report),
            None => report.add(&at.field("backendRef"), "must be set"),
        }
        if let Some(percentage) = &mirror.percentage
            && percentage.percent().is_none()
        {
            report.add(&at.field("percentage"), "must be a number from 0 to 100");
        }
    }
}

fn header_modifier(modifier: &HeaderModifier, path: &Path, report: &mut Report) {
    if modifier.set.is_empty() && modifier.add.is_empty() && modifier.remove.is_empty() {
        report.add(path, "must set at least one of set, add, remove");
        return;
    }
    // One header, one operation: Kuma refuses a name that appears twice across the lists.
    let mut seen = BTreeSet::new();
    let mut check = |at: Path, name: &str, report: &mut Report| {
        not_empty(report, &at, name);
        if !seen.insert(name.to_string()) {
            report.add(
                &at,
                format!("{name:?} is already modified by an earlier entry"),
            );
        }
    };
    for (field, values) in [("set", &modifier.set), ("add", &modifier.add)] {
        for (i, header) in values.iter().enumerate() {
            check(
                path.field(field).index(i).field("name"),
                &header.name,
                report,
            );
        }
    }
    for (i, name) in modifier.remove.iter().enumerate() {
        check(path.field("remove").index(i), name, report);
    }
}

fn path_modifier(modifier: &PathModifier, all_prefix: bool, path: &Path, report: &mut Report) {
    one_of(report, &path.field("type"), &modifier.modifier_type, true);
    if modifier.replace_prefix_match.is_some() && !all_prefix {
        report.add(
            &path.field("replacePrefixMatch"),
            "may only be used when every match of the rule has a path of type PathPrefix",
        );
    }
    let (wanted, other) = match modifier.modifier_type {
        PathModifierType::ReplaceFullPath => (
            ("replaceFullPath", &modifier.replace_full_path),
            "replacePrefixMatch",
        ),
        PathModifierType::ReplacePrefixMatch => (
            ("replacePrefixMatch", &modifier.replace_prefix_match),
            "replaceFullPath",
        ),
        _ => return,
    };
    match wanted.1 {
        None => report.add(
            &path.field(wanted.0),
            format!("must be set for type {}", modifier.modifier_type),
        ),
        Some(value) if !value.starts_with('/') => {
            report.add(&path.field(wanted.0), "must start with '/'")
        }
        Some(_) => {}
    }
    let other_set = match other {
        "replaceFullPath" => modifier.replace_full_path.is_some(),
        _ => modifier.replace_prefix_match.is_some(),
    };
    if other_set {
        report.add(
            &path.field(other),
            format!("must not be set for type {}", modifier.modifier_type),
        );
    }
}

fn backend_refs(refs: &[BackendRef], path: &Path, required: bool, report: &mut Report) {
    if required && refs.is_empty() {
        report.add(path, "must have at least one backend");
    }
    for (i, backend) in refs.iter().enumerate() {
        backend_ref(backend, BACKENDS, &path.index(i), report);
    }
}

fn backend_ref(backend: &BackendRef, allowed: &[TargetKind], path: &Path, report: &mut Report) {
    let kind_path = path.field("kind");
    one_of(report, &kind_path, &backend.kind, true);
    if backend.kind.is_known() && !allowed.contains(&backend.kind) {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        report.add(
            &kind_path,
            format!(
                "{} is not a backend here; use one of {}",
                backend.kind,
                names.join(", ")
            ),
        );
    } else if backend.kind == TargetKind::MeshMultiZoneService {
        report.add(&kind_path, NO_MULTI_ZONE_SERVICE);
    }
    // A multi-zone service spans ports of services in several zones: nothing picks one.
    if backend.kind == TargetKind::MeshMultiZoneService && backend.port.is_none() {
        report.add(
            &path.field("port"),
            "must be set for kind MeshMultiZoneService",
        );
    }
    not_honoured_reference(&backend.labels, &backend.mesh, path, report);
    if backend.name.is_empty() {
        report.add(&path.field("name"), "must be set");
    }
    if backend.kind == TargetKind::MeshServiceSubset && backend.tags.is_empty() {
        report.add(
            &path.field("tags"),
            "must be set for kind MeshServiceSubset",
        );
    }
    tags(report, &path.field("tags"), &backend.tags);
    opt_port(report, &path.field("port"), backend.port);
}

/// `labels` and `mesh` on a reference: Kuma selects MeshService resources by label and reaches
/// other meshes' services; Atoll has neither (services are named by `kuma.io/service`), so
/// each is refused rather than quietly matched by name.
fn not_honoured_reference(labels: &Tags, mesh: &str, path: &Path, report: &mut Report) {
    if !labels.is_empty() {
        report.add(
            &path.field("labels"),
            "selecting by labels is not supported yet: name the target (its kuma.io/service)",
        );
    }
    if !mesh.is_empty() {
        report.add(
            &path.field("mesh"),
            "is not supported yet: a route reaches services of its own mesh",
        );
    }
}
