//! MeshExternalService rules (seed 002).

use std::net::IpAddr;

use super::common::{
    PORT_RANGE, data_source, extension, hostname, is_dns_name, not_empty, one_of, port,
};
use super::{Path, Report};
use crate::types::{MesEndpoint, MesTls, MeshExternalServiceSpec, UNIX_SOCKET_PREFIX};

pub(super) fn validate(spec: &MeshExternalServiceSpec, path: &Path, report: &mut Report) {
    let match_path = path.field("match");
    match &spec.match_ {
        None => report.add(&match_path, "must be set"),
        Some(m) => {
            one_of(report, &match_path.field("type"), &m.match_type, false);
            port(report, &match_path.field("port"), m.port);
            one_of(report, &match_path.field("protocol"), &m.protocol, false);
        }
    }

    let endpoints = path.field("endpoints");
    if spec.endpoints.is_empty() {
        report.add(&endpoints, "must have at least one endpoint");
    }
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        validate_endpoint(endpoint, &endpoints.index(i), report);
    }

    extension(report, &path.field("extension"), spec.extension.as_ref());
    if let Some(tls) = &spec.tls {
        validate_tls(tls, &path.field("tls"), report);
    }
}

/// Kuma's highest endpoint priority.
const MAX_PRIORITY: u32 = 128;

fn validate_endpoint(endpoint: &MesEndpoint, path: &Path, report: &mut Report) {
    match endpoint.priority {
        Some(p) if p > MAX_PRIORITY => report.add(
            &path.field("priority"),
            format!("must be from 0 to {MAX_PRIORITY}"),
        ),
        // Priority 0 puts the endpoint among the primaries, which is what every endpoint is.
        Some(p) if p > 0 => report.add(
            &path.field("priority"),
            "is not supported yet: every endpoint is primary, so only 0 is accepted (see docs/choices.md)",
        ),
        _ => {}
    }
    let address = &endpoint.address;
    let address_path = path.field("address");
    let port_path = path.field("port");
    if let Some(socket) = address.strip_prefix(UNIX_SOCKET_PREFIX) {
        if !socket.starts_with('/') || socket.len() < 2 {
            report.add(
                &address_path,
                "a unix socket address must be unix:// followed by an absolute path",
            );
        }
        if endpoint.port.is_some() {
            report.add(&port_path, "must not be set for a unix socket address");
        }
        return;
    }
    if address.is_empty() {
        report.add(&address_path, "must not be empty");
    } else if address.parse::<IpAddr>().is_err() && !is_dns_name(address) {
        report.add(
            &address_path,
            format!("{address:?} must be an IP address, a DNS name, or unix:// followed by a socket path"),
        );
    }
    match endpoint.port {
        None => report.add(&port_path, format!("must be set: {PORT_RANGE}")),
        Some(value) => port(report, &port_path, value),
    }
}

fn validate_tls(tls: &MesTls, path: &Path, report: &mut Report) {
    if let Some(version) = &tls.version {
        let at = path.field("version");
        one_of(report, &at.field("min"), &version.min, false);
        one_of(report, &at.field("max"), &version.max, false);
        if let (Some(min), Some(max)) = (version.min.rank(), version.max.rank())
            && min > max
        {
            report.add(
                &at.field("min"),
                format!(
                    "{} must not be greater than max ({})",
                    version.min, version.max
                ),
            );
        }
    }
    let Some(verification) = &tls.verification else {
        return;
    };
    let at = path.field("verification");
    one_of(report, &at.field("mode"), &verification.mode, false);
    if let Some(name) = &verification.server_name {
        hostname(report, &at.field("serverName"), name);
    }
    for (i, san) in verification.subject_alt_names.iter().enumerate() {
        let san_path = at.field("subjectAltNames").index(i);
        one_of(report, &san_path.field("type"), &san.match_type, false);
        not_empty(report, &san_path.field("value"), &san.value);
    }
    for (field, source) in [
        ("caCert", &verification.ca_cert),
        ("clientCert", &verification.client_cert),
        ("clientKey", &verification.client_key),
    ] {
        if let Some(source) = source {
            data_source(report, &at.field(field), source);
        }
    }
    match (&verification.client_cert, &verification.client_key) {
        (Some(_), None) => report.add(
            &at.field("clientKey"),
            "must be set together with clientCert",
        ),
        (None, Some(_)) => report.add(
            &at.field("clientCert"),
            "must be set together with clientKey",
        ),
        _ => {}
    }
}
