//! Policy rules: what a policy may target, which of `to`, `from` and `rules` its type uses,
//! and each type's configuration. Targets Atoll cannot honour yet are refused by name.

use super::common::{duration, one_of, tags};
use super::{Path, Report};
use crate::types::*;

/// Top-level targets: the proxies a policy applies to.
pub(super) const PROXY_TARGETS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshSubset,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
];

/// `to[]` targets: the destinations of outbound traffic.
pub(super) const DESTINATIONS: &[TargetKind] = &[TargetKind::Mesh, TargetKind::MeshService];

/// `to[]` targets of the types that also configure MeshExternalServices' outbounds and
/// clusters.
pub(super) const WITH_EXTERNAL: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshService,
    TargetKind::MeshExternalService,
];

/// `to[]` targets of the types that also configure one MeshHTTPRoute's routes on a sidecar.
pub(super) const WITH_ROUTES: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshService,
    TargetKind::MeshExternalService,
    TargetKind::MeshHttpRoute,
];

/// `from[]` targets: callers, known by their service identity.
const CALLERS: &[TargetKind] = &[TargetKind::Mesh, TargetKind::MeshService];

/// Which sections a policy type uses, and what its top-level `targetRef` may name.
pub(super) struct Sections {
    pub(super) to: bool,
    pub(super) from: bool,
    pub(super) targets: &'static [TargetKind],
    /// What `to[]` entries may name.
    pub(super) destinations: &'static [TargetKind],
}

/// A policy's entries: `to[]`, `from[]` and, per `rules[]` entry, whether it has a `default`.
pub(super) struct Entries<'a, I> {
    pub(super) to: &'a [I],
    pub(super) from: &'a [I],
    pub(super) rules: &'a [bool],
}

/// Top-level targets of the policy types that configure a gateway's clusters: a MeshGateway
/// by name (its listeners share the clusters, so listener `tags` are refused).
pub(super) const PROXY_AND_GATEWAY_CLUSTER_TARGETS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshSubset,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::MeshGateway,
];

/// For a cluster policy aimed at a gateway: no listener `tags`, no inbound sections.
pub(super) fn gateway_clusters(
    target: Option<&TargetRef>,
    (from, rules): (usize, usize),
    path: &Path,
    report: &mut Report,
) {
    let Some(t) = target.filter(|t| t.kind == TargetKind::MeshGateway) else {
        return;
    };
    if !t.tags.is_empty() {
        report.add(
            &path.field("targetRef").field("tags"),
            "must not be set for a policy on a gateway's clusters: its listeners share them",
        );
    }
    for (section, len) in [("from", from), ("rules", rules)] {
        if len > 0 {
            report.add(
                &path.field(section),
                "is not supported with a top-level targetRef of kind MeshGateway: a gateway's clusters are configured with to[]",
            );
        }
    }
}

/// Top-level targets of the policy types that also configure built-in gateways.
pub(super) const PROXY_AND_GATEWAY_TARGETS: &[TargetKind] = &[
    TargetKind::Mesh,
    TargetKind::MeshSubset,
    TargetKind::MeshService,
    TargetKind::MeshServiceSubset,
    TargetKind::MeshGateway,
    TargetKind::MeshHttpRoute,
];

/// [`shape`] for a spec declared with `policy!`: every such spec has the same fields.
macro_rules! policy_shape {
    ($spec:expr, $sections:expr, $path:expr, $report:expr) => {
        $crate::validate::policies::shape(
            $spec.target_ref.as_ref(),
            $crate::validate::policies::Entries {
                to: &$spec.to,
                from: &$spec.from,
                rules: &$spec
                    .rules
                    .iter()
                    .map(|r| r.default.is_some())
                    .collect::<Vec<_>>(),
            },
            |i| (i.target_ref.as_ref(), i.default.is_some()),
            $sections,
            $path,
            $report,
        )
    };
}
pub(super) use policy_shape;

/// Each configuration of a spec declared with `policy!` with where it sits: the `default` of
/// every `to[]` entry (when `$to`), `from[]` entry and `rules[]` entry.
macro_rules! defaults {
    ($spec:expr, $path:expr, to: $to:expr) => {{
        let (spec, path): (_, &$crate::validate::Path) = ($spec, $path);
        let sections: [(&str, Vec<_>); 2] = [
            (
                "to",
                if $to {
                    spec.to.iter().map(|i| i.default.as_ref()).collect()
                } else {
                    Vec::new()
                },
            ),
            (
                "from",
                spec.from.iter().map(|i| i.default.as_ref()).collect(),
            ),
        ];
        let mut out = Vec::new();
        for (name, confs) in sections {
            for (i, conf) in confs.into_iter().enumerate() {
                if let Some(conf) = conf {
                    out.push((path.field(name).index(i).field("default"), conf));
                }
            }
        }
        for (i, rule) in spec.rules.iter().enumerate() {
            if let Some(conf) = &rule.default {
                out.push((path.field("rules").index(i).field("default"), conf));
            }
        }
        out
    }};
}
pub(super) use defaults;

/// The shape of the inbound policies that cannot tell callers apart (`to[]` only when `$to`):
/// `from[]` entries naming one caller are refused, saying why with `$what`.
macro_rules! common_shape {
    ($spec:expr, $to:expr, $what:expr, $path:expr, $report:expr) => {
        common_shape!(
            $spec,
            $to,
            $what,
            $path,
            $report,
            $crate::validate::policies::PROXY_TARGETS
        )
    };
    ($spec:expr, $to:expr, $what:expr, $path:expr, $report:expr, $targets:expr) => {{
        let (spec, path, report): (_, &$crate::validate::Path, &mut $crate::validate::Report) =
            ($spec, $path, $report);
        $crate::validate::policies::policy_shape!(
            spec,
            $crate::validate::policies::Sections {
                to: $to,
                from: true,
                targets: $targets,
                destinations: $crate::validate::policies::WITH_EXTERNAL,
            },
            path,
            report
        );
        for (i, item) in spec.from.iter().enumerate() {
            if let Some(t) = &item.target_ref
                && t.kind == $crate::types::TargetKind::MeshService
            {
                report.add(
                    &path.field("from").index(i).field("targetRef").field("kind"),
                    format!(
                        "MeshService is not supported yet for {}: use kind Mesh (every caller)",
                        $what
                    ),
                );
            }
        }
    }};
}
pub(super) use common_shape;

/// Validates the shared shape: the targets, and each entry's target and `default`.
pub(super) fn shape<I>(
    target: Option<&TargetRef>,
    entries: Entries<'_, I>,
    item: impl Fn(&I) -> (Option<&TargetRef>, bool),
    sections: Sections,
    path: &Path,
    report: &mut Report,
) {
    let Entries { to, from, rules } = entries;
    let target_path = path.field("targetRef");
    match target {
        None => report.add(&target_path, "must be set"),
        Some(t) => reference(t, sections.targets, &target_path, report),
    }
    let rules_path = path.field("rules");
    if !rules.is_empty() {
        if !sections.from {
            report.add(
                &rules_path,
                "this policy type does not configure inbound traffic, which rules[] are for",
            );
        } else if !from.is_empty() {
            report.add(
                &rules_path,
                "cannot be combined with from[] in one policy (as in Kuma): use one or the other",
            );
        }
    }
    for (i, has_default) in rules.iter().enumerate() {
        if !has_default {
            report.add(&rules_path.index(i).field("default"), "must be set");
        }
    }
    for (name, entries, used, allowed, hint) in [
        (
            "to",
            to,
            sections.to,
            sections.destinations,
            "outbound (to[])",
        ),
        ("from", from, sections.from, CALLERS, "inbound (from[])"),
    ] {
        let section = path.field(name);
        if !used && !entries.is_empty() {
            report.add(
                &section,
                format!("this policy type does not configure {hint} traffic"),
            );
            continue;
        }
        for (i, entry) in entries.iter().enumerate() {
            let at = section.index(i);
            let (target, has_default) = item(entry);
            match target {
                None => report.add(&at.field("targetRef"), "must be set"),
                Some(t) => reference(t, allowed, &at.field("targetRef"), report),
            }
            if !has_default {
                report.add(&at.field("default"), "must be set");
            }
        }
    }
    let inbound = !from.is_empty() || !rules.is_empty();
    if sections.to && sections.from && to.is_empty() && !inbound {
        report.add(path, "must have to[] or from[] entries, or rules[]");
    } else if sections.to && !sections.from && to.is_empty() {
        report.add(&path.field("to"), "must have at least one entry");
    } else if sections.from && !sections.to && !inbound {
        report.add(
            &path.field("from"),
            "must have at least one entry (or use rules[])",
        );
    }
}

fn reference(target: &TargetRef, allowed: &[TargetKind], path: &Path, report: &mut Report) {
    let kind_path = path.field("kind");
    one_of(report, &kind_path, &target.kind, true);
    let gateway_kind = matches!(
        target.kind,
        TargetKind::MeshGateway | TargetKind::MeshHttpRoute
    );
    if gateway_kind && allowed == PROXY_TARGETS {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        report.add(
            &kind_path,
            format!(
                "{} cannot be targeted by this policy type: it does not configure built-in gateways; use one of {}",
                target.kind,
                names.join(", ")
            ),
        );
    } else if target.kind.is_known() && !allowed.contains(&target.kind) {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        report.add(
            &kind_path,
            format!(
                "{} is not supported here yet; use one of {}",
                target.kind,
                names.join(", ")
            ),
        );
    }
    let named = matches!(
        target.kind,
        TargetKind::MeshService
            | TargetKind::MeshExternalService
            | TargetKind::MeshServiceSubset
            | TargetKind::MeshGateway
            | TargetKind::MeshHttpRoute
    );
    if named && target.name.is_empty() {
        report.add(
            &path.field("name"),
            format!("must be set for kind {}", target.kind),
        );
    }
    if matches!(target.kind, TargetKind::Mesh | TargetKind::MeshSubset) && !target.name.is_empty() {
        report.add(
            &path.field("name"),
            format!("must not be set for kind {}", target.kind),
        );
    }
    // A MeshGateway's tags select some of its listeners.
    let subset = matches!(
        target.kind,
        TargetKind::MeshSubset | TargetKind::MeshServiceSubset | TargetKind::MeshGateway
    );
    if !subset && !target.tags.is_empty() {
        report.add(
            &path.field("tags"),
            format!("must not be set for kind {}", target.kind),
        );
    }
    tags(report, &path.field("tags"), &target.tags);
    for (field, set) in [
        ("labels", !target.labels.is_empty()),
        ("mesh", !target.mesh.is_empty()),
        ("sectionName", !target.section_name.is_empty()),
    ] {
        if set {
            report.add(&path.field(field), "is not supported yet");
        }
    }
}

pub(super) fn traffic_permission(
    spec: &MeshTrafficPermissionSpec,
    path: &Path,
    report: &mut Report,
) {
    policy_shape!(
        spec,
        Sections {
            to: false,
            from: true,
            targets: PROXY_TARGETS,
            destinations: DESTINATIONS,
        },
        path,
        report
    );
    for (i, item) in spec.from.iter().enumerate() {
        if let Some(conf) = &item.default {
            let at = path.field("from").index(i).field("default").field("action");
            one_of(report, &at, &conf.action, true);
        }
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        let Some(conf) = &rule.default else { continue };
        let at = path.field("rules").index(i).field("default");
        let lists = [
            ("deny", &conf.deny),
            ("allow", &conf.allow),
            ("allowWithShadowDeny", &conf.allow_with_shadow_deny),
        ];
        if lists.iter().all(|(_, l)| l.is_empty()) {
            report.add(
                &at,
                "must set at least one of deny, allow, allowWithShadowDeny",
            );
        }
        for (name, matchers) in lists {
            for (j, matcher) in matchers.iter().enumerate() {
                let m = at.field(name).index(j).field("spiffeID");
                let Some(id) = &matcher.spiffe_id else {
                    report.add(&m, "must be set");
                    continue;
                };
                one_of(report, &m.field("type"), &id.match_type, true);
                if !id.value.starts_with("spiffe://") {
                    report.add(
                        &m.field("value"),
                        format!(
                            "{:?} is not a SPIFFE ID: Atoll's are spiffe://<mesh>/<service>",
                            id.value
                        ),
                    );
                }
            }
        }
    }
}

pub(super) fn timeout(spec: &MeshTimeoutSpec, path: &Path, report: &mut Report) {
    super::policies_gateway::timeout(spec, path, report);
    policy_shape!(
        spec,
        Sections {
            to: true,
            from: true,
            targets: PROXY_AND_GATEWAY_TARGETS,
            destinations: WITH_ROUTES,
        },
        path,
        report
    );
    {
        for (at, conf) in defaults!(spec, path, to: true) {
            duration(
                report,
                &at.field("connectionTimeout"),
                &conf.connection_timeout,
            );
            duration(report, &at.field("idleTimeout"), &conf.idle_timeout);
            if let Some(http) = &conf.http {
                let h = at.field("http");
                duration(report, &h.field("requestTimeout"), &http.request_timeout);
                duration(
                    report,
                    &h.field("streamIdleTimeout"),
                    &http.stream_idle_timeout,
                );
                duration(
                    report,
                    &h.field("maxStreamDuration"),
                    &http.max_stream_duration,
                );
                duration(
                    report,
                    &h.field("maxConnectionDuration"),
                    &http.max_connection_duration,
                );
                duration(
                    report,
                    &h.field("requestHeadersTimeout"),
                    &http.request_headers_timeout,
                );
            }
        }
    }
}

/// Envoy's HTTP retry conditions (`x-envoy-retry-on`).
const HTTP_RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
];

/// Envoy's gRPC retry conditions (`x-envoy-retry-grpc-on`).
const GRPC_RETRY_ON: &[&str] = &[
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

pub(super) fn retry(spec: &MeshRetrySpec, path: &Path, report: &mut Report) {
    super::policies_gateway::retry(spec, path, report);
    policy_shape!(
        spec,
        Sections {
            to: true,
            from: false,
            targets: PROXY_AND_GATEWAY_TARGETS,
            destinations: WITH_ROUTES,
        },
        path,
        report
    );
    for (i, item) in spec.to.iter().enumerate() {
        let Some(conf) = &item.default else { continue };
        let at = path.field("to").index(i).field("default");
        if let Some(tcp) = &conf.tcp
            && tcp.max_connect_attempt == Some(0)
        {
            report.add(
                &at.field("tcp").field("maxConnectAttempt"),
                "must be at least 1 (the first attempt counts)",
            );
        }
        for (name, http, allowed) in [
            ("http", &conf.http, HTTP_RETRY_ON),
            ("grpc", &conf.grpc, GRPC_RETRY_ON),
        ] {
            let Some(http) = http else { continue };
            let h = at.field(name);
            duration(report, &h.field("perTryTimeout"), &http.per_try_timeout);
            if let Some(back_off) = &http.back_off {
                let b = h.field("backOff");
                duration(report, &b.field("baseInterval"), &back_off.base_interval);
                duration(report, &b.field("maxInterval"), &back_off.max_interval);
            }
            for (j, condition) in http.retry_on.iter().enumerate() {
                let status = name == "http"
                    && condition
                        .parse::<u16>()
                        .is_ok_and(|c| (100..=599).contains(&c));
                if !status && !allowed.contains(&condition.as_str()) {
                    report.add(
                        &h.field("retryOn").index(j),
                        format!(
                            "unknown condition {condition:?}: use one of {}{}",
                            allowed.join(", "),
                            if name == "http" {
                                ", or a status code"
                            } else {
                                ""
                            }
                        ),
                    );
                }
            }
        }
    }
}
