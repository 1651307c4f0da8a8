//! MeshTimeout and MeshRetry aimed at a built-in gateway (top-level `targetRef` of kind
//! MeshGateway or MeshHTTPRoute): they configure the gateway's routes, so only `to[]` entries
//! of kind `Mesh` and the fields an Envoy route carries are honoured; the rest is refused.

use super::{Path, Report};
use crate::types::*;

/// Whether a policy's top-level target is a gateway or one of its routes.
fn on_gateway(target: Option<&TargetRef>) -> bool {
    target.is_some_and(|t| matches!(t.kind, TargetKind::MeshGateway | TargetKind::MeshHttpRoute))
}

/// The entries' shape on a gateway: no `from[]`, `to[]` of kind `Mesh` only.
fn sections(
    target: Option<&TargetRef>,
    to: &[Option<&TargetRef>],
    from_len: usize,
    path: &Path,
    report: &mut Report,
) {
    let kind = target.map(|t| t.kind.as_str()).unwrap_or_default();
    if from_len > 0 {
        report.add(
            &path.field("from"),
            format!("is not supported with a top-level targetRef of kind {kind}: a gateway's routes are configured with to[]"),
        );
    }
    for (i, entry) in to.iter().enumerate() {
        if entry.is_some_and(|t| t.kind != TargetKind::Mesh) {
            report.add(
                &path.field("to").index(i).field("targetRef").field("kind"),
                format!("must be Mesh with a top-level targetRef of kind {kind}: per-backend configuration of a gateway's routes is not supported yet"),
            );
        }
    }
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
    let target = spec.target_ref.as_ref();
    if !on_gateway(target) {
        return;
    }
    let to: Vec<Option<&TargetRef>> = spec.to.iter().map(|i| i.target_ref.as_ref()).collect();
    sections(target, &to, spec.from.len(), path, report);
    let kind = target.map(|t| t.kind.as_str()).unwrap_or_default();
    for (i, item) in spec.to.iter().enumerate() {
        let Some(conf) = &item.default else { continue };
        let at = path.field("to").index(i).field("default");
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
    let target = spec.target_ref.as_ref();
    if !on_gateway(target) {
        return;
    }
    let to: Vec<Option<&TargetRef>> = spec.to.iter().map(|i| i.target_ref.as_ref()).collect();
    sections(target, &to, spec.from.len(), path, report);
    let kind = target.map(|t| t.kind.as_str()).unwrap_or_default();
    for (i, item) in spec.to.iter().enumerate() {
        let Some(conf) = &item.default else { continue };
        let at = path.field("to").index(i).field("default");
        refuse(report, &at.field("tcp"), conf.tcp.is_some(), kind);
        refuse(report, &at.field("grpc"), conf.grpc.is_some(), kind);
    }
}
