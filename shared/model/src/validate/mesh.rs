//! Mesh rules: certificate authorities and their settings.

use std::collections::BTreeSet;

use super::common::{data_source, duration, one_of, resource_name};
use super::{Path, Report};
use crate::types::{CaBackend, CaBackendType, MeshSpec};

/// Kuma refuses builtin CA keys shorter than this.
const MIN_RSA_BITS: u32 = 2048;

pub(super) fn validate(spec: &MeshSpec, root: &Path, report: &mut Report) {
    let Some(mtls) = &spec.mtls else { return };
    let path = root.field("mtls");
    let backends = path.field("backends");
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
