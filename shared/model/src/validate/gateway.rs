//! MeshGateway rules (seeds 000 and 001).

use std::collections::BTreeMap;

use super::common::{data_source, forbid_tag, hostname, one_of, port, tags};
use super::{Path, Report};
use crate::types::{GatewayListener, GatewayProtocol, MeshGatewaySpec, SERVICE_TAG, TlsMode};

pub(super) fn validate(spec: &MeshGatewaySpec, root: &Path, report: &mut Report) {
    let cross_mesh = spec
        .conf
        .iter()
        .flat_map(|c| &c.listeners)
        .any(|l| l.cross_mesh);
    selectors(spec, cross_mesh, &root.field("selectors"), report);

    tags(report, &root.field("tags"), &spec.tags);
    forbid_tag(report, &root.field("tags"), &spec.tags, SERVICE_TAG);

    let conf = root.field("conf");
    let Some(gateway_conf) = &spec.conf else {
        report.add(&conf, "must be set");
        return;
    };
    let path = conf.field("listeners");
    if gateway_conf.listeners.is_empty() {
        report.add(&path, "must have at least one listener");
    }
    for (i, listener) in gateway_conf.listeners.iter().enumerate() {
        validate_listener(listener, &path.index(i), report);
    }
    shared_ports(&gateway_conf.listeners, &path, report);
}

fn selectors(spec: &MeshGatewaySpec, cross_mesh: bool, path: &Path, report: &mut Report) {
    if spec.selectors.is_empty() {
        report.add(path, "must have at least one selector");
    } else if cross_mesh && spec.selectors.len() != 1 {
        report.add(
            path,
            "must have exactly one selector when a listener is crossMesh",
        );
    }
    for (i, selector) in spec.selectors.iter().enumerate() {
        let at = path.index(i).field("match");
        if selector.match_tags.is_empty() {
            report.add(&at, "must have at least one tag");
        }
        tags(report, &at, &selector.match_tags);
    }
}

fn validate_listener(listener: &GatewayListener, path: &Path, report: &mut Report) {
    port(report, &path.field("port"), listener.port);
    let protocol = &listener.protocol;
    let protocol_path = path.field("protocol");
    if *protocol == GatewayProtocol::None {
        report.add(
            &protocol_path,
            "must be one of TCP, TLS, HTTP, HTTPS (NONE is not a usable protocol)",
        );
    } else {
        one_of(report, &protocol_path, protocol, true);
    }

    if !listener.hostname.is_empty() {
        let at = path.field("hostname");
        hostname(report, &at, &listener.hostname);
        if *protocol == GatewayProtocol::Tcp && listener.hostname != "*" {
            report.add(
                &at,
                "must not be set for protocol TCP, which has no notion of a hostname",
            );
        }
    }

    tags(report, &path.field("tags"), &listener.tags);
    forbid_tag(report, &path.field("tags"), &listener.tags, SERVICE_TAG);

    let tls_path = path.field("tls");
    match (&listener.tls, protocol) {
        (None, GatewayProtocol::Https) => report.add(&tls_path, "must be set for protocol HTTPS"),
        (None, GatewayProtocol::Tls) => report.add(&tls_path, "must be set for protocol TLS"),
        (Some(_), GatewayProtocol::Http | GatewayProtocol::Tcp) if !listener.cross_mesh => report
            .add(
                &tls_path,
                format!("must not be set for protocol {protocol}"),
            ),
        (Some(tls), _) => {
            let mode_path = tls_path.field("mode");
            match &tls.mode {
                TlsMode::None | TlsMode::Unset => {
                    report.add(&mode_path, "must be TERMINATE or PASSTHROUGH")
                }
                mode => one_of(report, &mode_path, mode, true),
            }
            if *protocol == GatewayProtocol::Https
                && tls.mode.is_known()
                && tls.mode != TlsMode::Terminate
            {
                report.add(&mode_path, "must be TERMINATE for protocol HTTPS");
            }
            if tls.mode == TlsMode::Passthrough && *protocol != GatewayProtocol::Tls {
                report.add(&mode_path, "PASSTHROUGH is only allowed with protocol TLS");
            }
            let certs = tls_path.field("certificates");
            if tls.mode == TlsMode::Passthrough && !tls.certificates.is_empty() {
                report.add(
                    &certs,
                    "must be empty with mode PASSTHROUGH: the gateway does not terminate TLS",
                );
            }
            if tls.mode == TlsMode::Terminate && !(1..=2).contains(&tls.certificates.len()) {
                report.add(
                    &certs,
                    format!(
                        "must have one or two certificates (e.g. one RSA and one ECDSA), found {}",
                        tls.certificates.len()
                    ),
                );
            }
            for (i, cert) in tls.certificates.iter().enumerate() {
                data_source(report, &certs.index(i), cert);
            }
        }
        (None, _) => {}
    }

    if listener.cross_mesh {
        let at = path.field("crossMesh");
        if protocol.is_known() && *protocol != GatewayProtocol::Http {
            report.add(
                &at,
                format!("is only allowed with protocol HTTP, not {protocol}"),
            );
        }
        if listener.tls.is_some() {
            report.add(
                &tls_path,
                "must not be set on a crossMesh listener: mesh mTLS already protects it",
            );
        }
    }
}

/// Listeners on one port become one Envoy listener: they must agree on protocol and limits,
/// and each hostname may appear once.
fn shared_ports(listeners: &[GatewayListener], path: &Path, report: &mut Report) {
    let mut first_on_port: BTreeMap<u32, usize> = BTreeMap::new();
    let mut hostnames: BTreeMap<(u32, &str), usize> = BTreeMap::new();
    // The first connection limit set on each port, and the listener that set it.
    let mut limits: BTreeMap<u32, (u32, usize)> = BTreeMap::new();
    for (i, listener) in listeners.iter().enumerate() {
        let at = path.index(i);
        let port = listener.port;
        let mine = listener.connection_limit();
        if mine != 0 {
            match limits.get(&port) {
                None => {
                    limits.insert(port, (mine, i));
                }
                Some(&(theirs, setter)) if theirs != mine => report.add(
                    &at.field("resources").field("connectionLimit"),
                    format!(
                        "{mine} conflicts with {theirs} set on port {port} by {}",
                        path.index(setter)
                    ),
                ),
                Some(_) => {}
            }
        }
        let Some(&first) = first_on_port.get(&port) else {
            first_on_port.insert(port, i);
            hostnames.insert((port, listener.effective_hostname()), i);
            continue;
        };
        let other = &listeners[first];
        let other_path = path.index(first);
        if listener.protocol != other.protocol {
            report.add(
                &at.field("protocol"),
                format!(
                    "must be {} like {other_path}, which shares port {port}",
                    other.protocol
                ),
            );
        } else if matches!(listener.protocol, GatewayProtocol::Tcp) {
            report.add(
                &at.field("port"),
                format!("port {port} is already used by {other_path}; only HTTP, HTTPS and TLS listeners can share a port"),
            );
        }
        let host = listener.effective_hostname();
        if let Some(&previous) = hostnames.get(&(port, host)) {
            report.add(
                &at.field("hostname"),
                format!(
                    "{host:?} is already used on port {port} by {}",
                    path.index(previous)
                ),
            );
        } else {
            hostnames.insert((port, host), i);
        }
    }
}
