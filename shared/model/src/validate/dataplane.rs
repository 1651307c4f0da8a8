//! Dataplane rules: a proxy is either a sidecar (inbounds) or a gateway, with valid ports/tags.

use super::common::{forbid_tag, ip_or_dns, not_empty, one_of, opt_port, port, tags};
use super::{Path, Report};
use crate::types::{DataplaneSpec, PROTOCOL_TAG, SERVICE_TAG, Tags, TargetKind};

const PROTOCOLS: &[&str] = &["http", "http2", "grpc", "tcp", "kafka"];

pub(super) fn validate(spec: &DataplaneSpec, root: &Path, report: &mut Report) {
    let path = root.field("networking");
    let Some(net) = &spec.networking else {
        report.add(&path, "must be set");
        return;
    };
    ip_or_dns(report, &path.field("address"), &net.address);
    if let Some(advertised) = &net.advertised_address {
        ip_or_dns(report, &path.field("advertisedAddress"), advertised);
    }
    if let Some(admin) = &net.admin {
        port(report, &path.field("admin").field("port"), admin.port);
    }
    match (&net.gateway, net.inbound.is_empty()) {
        (None, true) => report.add(&path, "must have at least one inbound, or a gateway"),
        (Some(_), false) => report.add(
            &path.field("inbound"),
            "must be empty on a gateway Dataplane",
        ),
        _ => {}
    }
    for (i, inbound) in net.inbound.iter().enumerate() {
        let at = path.field("inbound").index(i);
        port(report, &at.field("port"), inbound.port);
        opt_port(report, &at.field("servicePort"), inbound.service_port);
        if let Some(address) = &inbound.address {
            ip_or_dns(report, &at.field("address"), address);
        }
        if let Some(address) = &inbound.service_address {
            ip_or_dns(report, &at.field("serviceAddress"), address);
        }
        one_of(report, &at.field("state"), &inbound.state, false);
        service_tags(&inbound.tags, &at.field("tags"), report);
    }
    for (i, outbound) in net.outbound.iter().enumerate() {
        let at = path.field("outbound").index(i);
        port(report, &at.field("port"), outbound.port);
        if let Some(address) = &outbound.address {
            ip_or_dns(report, &at.field("address"), address);
        }
        match &outbound.backend_ref {
            Some(backend) => {
                let backend_path = at.field("backendRef");
                let kind_path = backend_path.field("kind");
                one_of(report, &kind_path, &backend.kind, true);
                if backend.kind.is_known()
                    && !matches!(
                        backend.kind,
                        TargetKind::MeshService | TargetKind::MeshExternalService
                    )
                {
                    report.add(
                        &kind_path,
                        format!(
                            "{} cannot be an outbound's destination: use MeshService (a kuma.io/service) or MeshExternalService",
                            backend.kind
                        ),
                    );
                }
                not_empty(report, &backend_path.field("name"), &backend.name);
                // A MeshExternalService has its one port (match.port).
                if backend.port != 0 && backend.kind == TargetKind::MeshExternalService {
                    report.add(
                        &backend_path.field("port"),
                        "must not be set for a MeshExternalService: it is reached on its match.port",
                    );
                }
                if !backend.labels.is_empty() {
                    report.add(
                        &backend_path.field("labels"),
                        "selecting by labels is not supported yet: name the service",
                    );
                }
            }
            None => service_tags(&outbound.tags, &at.field("tags"), report),
        }
    }
    if let Some(gateway) = &net.gateway {
        let at = path.field("gateway");
        one_of(report, &at.field("type"), &gateway.gateway_type, false);
        service_tags(&gateway.tags, &at.field("tags"), report);
        forbid_tag(report, &at.field("tags"), &gateway.tags, PROTOCOL_TAG);
    }
}

fn service_tags(values: &Tags, path: &Path, report: &mut Report) {
    tags(report, path, values);
    if !values.contains_key(SERVICE_TAG) {
        report.add(&path.key(SERVICE_TAG), "must be set");
    }
    if let Some(protocol) = values.get(PROTOCOL_TAG)
        && !PROTOCOLS.contains(&protocol.as_str())
    {
        report.add(
            &path.key(PROTOCOL_TAG),
            format!(
                "unknown protocol {protocol:?}: must be one of {}",
                PROTOCOLS.join(", ")
            ),
        );
    }
}
