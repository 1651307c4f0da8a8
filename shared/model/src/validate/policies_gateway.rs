//! MeshTimeout, MeshRetry and MeshRateLimit aimed at a built-in gateway (top-level
//! `targetRef` of kind MeshGateway or MeshHTTPRoute): they configure the gateway's routes, so
//! only `to[]` entries of kind `Mesh` and the fields an Envoy route carries are honoured; the
//! rest is refused.

use super::{Path, Report};
use crate::types::*;

/// For a policy aimed at a gateway or one of its routes: checks the sections (no `from[]`,
/// `to[]` of kind `Mesh` only) and gives the target's kind and each `to[]` configuration with
/// its path; `None` for any other policy.
fn on_gateway<'s, C>(
    target: Option<&'s TargetRef>,
    to: impl Iterator<Item = (Option<&'s TargetRef>, Option<&'s C>)>,
    (from_len, rules_len): (usize, usize),
    path: &Path,
    report: &mut Report,
) -> Option<(&'s str, Vec<(Path, &'s C)>)> {
    let kind = target
        .map(|t| &t.kind)
        .filter(|k| matches!(k, TargetKind::MeshGateway | TargetKind::MeshHttpRoute))?
        .as_str();
    for (section, len) in [("from", from_len), ("rules", rules_len)] {
        if len > 0 {
            report.add(
                &path.field(section),
                format!("is not supported with a top-level targetRef of kind {kind}: a gateway's routes are configured with to[]"),
            );
        }
    }
    let mut confs = Vec::new();
    for (i, (entry, conf)) in to.enumerate() {
        let at = path.field("to").index(i);
        if entry.is_some_and(|t| t.kind != TargetKind::Mesh) {
            report.add(
                &at.field("targetRef").field("kind"),
                format!("must be Mesh with a top-level targetRef of kind {kind}: per-backend configuration of a gateway's routes is not supported yet"),
            );
        }
        if let Some(conf) = conf {
            confs.push((at.field("default"), conf));
        }
    }
    Some((kind, confs))
}

/// [`on_gateway`] for a policy spec made by `policy!`.
macro_rules! gateway_confs {
    ($spec:expr, $path:expr, $report:expr) => {
        on_gateway(
            $spec.target_ref.as_ref(),
            $spec
                .to
                .iter()
                .map(|i| (i.target_ref.as_ref(), i.default.as_ref())),
            ($spec.from.len(), $spec.rules.len()),
            $path,
            $report,
        )
    };
}

fn refuse(report: &mut Report, path: &Path, set: bool, kind: &str) {
    if set {
        report.add(
            path,
            format!("is not supported yet with a top-level targetRef of kind {kind}: on a gateway, only what an Envoy route carries is configured"),
        );
    }
}

pub(super) fn timeout(spec: &MeshTimeoutSpec, path: &Path, report: &mut Report) {
    let Some((kind, confs)) = gateway_confs!(spec, path, report) else {
        return;
    };
    for (at, conf) in confs {
        refuse(
            report,
            &at.field("connectionTimeout"),
            conf.connection_timeout.is_some(),
            kind,
        );
        refuse(
            report,
            &at.field("idleTimeout"),
            conf.idle_timeout.is_some(),
            kind,
        );
        if let Some(http) = &conf.http {
            let h = at.field("http");
            for (name, set) in [
                ("streamIdleTimeout", http.stream_idle_timeout.is_some()),
                (
                    "maxConnectionDuration",
                    http.max_connection_duration.is_some(),
                ),
                (
                    "requestHeadersTimeout",
                    http.request_headers_timeout.is_some(),
                ),
            ] {
                refuse(report, &h.field(name), set, kind);
            }
        }
    }
}

pub(super) fn retry(spec: &MeshRetrySpec, path: &Path, report: &mut Report) {
    let Some((kind, confs)) = gateway_confs!(spec, path, report) else {
        return;
    };
    for (at, conf) in confs {
        refuse(report, &at.field("tcp"), conf.tcp.is_some(), kind);
        refuse(report, &at.field("grpc"), conf.grpc.is_some(), kind);
    }
}

/// MeshAccessLog on a gateway's listeners: `to[]` of kind Mesh; true when aimed at a gateway.
pub(super) fn access_log(spec: &MeshAccessLogSpec, path: &Path, report: &mut Report) -> bool {
    gateway_confs!(spec, path, report).is_some()
}

/// MeshRateLimit on a gateway's routes: request rates only (`local.http`); true when the
/// policy is aimed at a gateway.
pub(super) fn rate_limit(spec: &MeshRateLimitSpec, path: &Path, report: &mut Report) -> bool {
    let Some((kind, confs)) = gateway_confs!(spec, path, report) else {
        return false;
    };
    for (at, conf) in confs {
        let tcp = conf.local.as_ref().is_some_and(|l| l.tcp.is_some());
        refuse(report, &at.field("local").field("tcp"), tcp, kind);
    }
    true
}
