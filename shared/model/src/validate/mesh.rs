//! Mesh rules: certificate authorities and their settings.

use std::collections::BTreeSet;

use super::common::{data_source, duration, one_of, resource_name};
use super::{Path, Report};
use crate::types::{CaBackend, CaBackendType, MeshSpec};

/// Kuma refuses builtin CA keys shorter than this.
const MIN_RSA_BITS: u32 = 2048;

/// Sections of Kuma's Mesh that Atoll reads and keeps but does not act on, with what to use.
const UNSUPPORTED_SECTIONS: [(&str, &str); 4] = [
    (
        "logging",
        "Atoll generates no access logs from the Mesh (Kuma's TrafficLog policies, which use these backends, are not supported either)",
    ),
    (
        "tracing",
        "Atoll configures no tracing from the Mesh (Kuma's TrafficTrace policies, which use these backends, are not supported either)",
    ),
    (
        "metrics",
        "Atoll exposes no Prometheus endpoint on data planes from the Mesh",
    ),
    (
        "constraints",
        "Atoll does not check data planes against admission constraints; use data plane tokens to control which proxies may join",
    ),
];

pub(super) fn validate(spec: &MeshSpec, root: &Path, report: &mut Report) {
    for ((field, reason), value) in UNSUPPORTED_SECTIONS.iter().zip([
        &spec.logging,
        &spec.tracing,
        &spec.metrics,
        &spec.constraints,
    ]) {
        // An empty section asks for nothing, so accepting it honours it.
        let empty = value
            .as_ref()
            .is_none_or(|v| v.as_object().is_some_and(|m| m.is_empty()));
        if !empty {
            report.add(
                &root.field(field),
                format!("is not supported yet: {reason} (see docs/choices.md)"),
            );
        }
    }
    let zone_egress = spec.routing.as_ref().is_some_and(|r| r.zone_egress);
    let mtls_enabled = spec
        .mtls
        .as_ref()
        .is_some_and(|m| !m.enabled_backend.is_empty());
    if zone_egress && !mtls_enabled {
        // The zone egress tells meshes apart by the mTLS identity of the caller.
        report.add(
            &root.field("mtls"),
            "must be enabled (enabledBackend set) when routing.zoneEgress is true",
        );
    }
    let Some(mtls) = &spec.mtls else { return };
    let path = root.field("mtls");
    let backends = path.field("backends");
    if mtls.backends.len() > 1 {
        report.add(
            &backends,
            format!(
                "must have at most one backend, found {}",
                mtls.backends.len()
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (i, backend) in mtls.backends.iter().enumerate() {
        let at = backends.index(i);
        if !backend.name.is_empty() && !names.insert(backend.name.as_str()) {
            report.add(
                &at.field("name"),
                format!("{:?} is used by another backend", backend.name),
            );
        }
        validate_backend(backend, &at, report);
    }
    if !mtls.enabled_backend.is_empty() && !names.contains(mtls.enabled_backend.as_str()) {
        report.add(
            &path.field("enabledBackend"),
            format!("{:?} must name one of the backends", mtls.enabled_backend),
        );
    }
}

fn validate_backend(backend: &CaBackend, path: &Path, report: &mut Report) {
    resource_name(report, &path.field("name"), &backend.name);
    one_of(report, &path.field("type"), &backend.backend_type, true);
    one_of(report, &path.field("mode"), &backend.mode, false);
    if let Some(dp_cert) = &backend.dp_cert {
        let at = path.field("dpCert");
        duration(
            report,
            &at.field("requestTimeout"),
            &dp_cert.request_timeout,
        );
        if let Some(rotation) = &dp_cert.rotation {
            duration(
                report,
                &at.field("rotation").field("expiration"),
                &rotation.expiration,
            );
        }
    }
    let conf_path = path.field("conf");
    let conf = backend.conf.clone().unwrap_or_default();
    match backend.backend_type {
        CaBackendType::Builtin => {
            if conf.cert.is_some() || conf.key.is_some() {
                report.add(
                    &conf_path,
                    "cert and key belong to type provided; builtin takes caCert",
                );
            }
            if let Some(ca) = &conf.ca_cert {
                let at = conf_path.field("caCert");
                if let Some(bits) = ca.rsa_bits
                    && bits < MIN_RSA_BITS
                {
                    report.add(
                        &at.field("RSAbits"),
                        format!("must be at least {MIN_RSA_BITS}"),
                    );
                }
                duration(report, &at.field("expiration"), &ca.expiration);
            }
        }
        CaBackendType::Provided => {
            if conf.ca_cert.is_some() {
                report.add(
                    &conf_path.field("caCert"),
                    "belongs to type builtin; provided takes cert and key",
                );
            }
            for (field, source) in [("cert", &conf.cert), ("key", &conf.key)] {
                match source {
                    Some(source) => data_source(report, &conf_path.field(field), source),
                    None => report.add(&conf_path.field(field), "must be set for type provided"),
                }
            }
        }
        _ => {}
    }
}
