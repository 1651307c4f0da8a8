//! ZoneIngress and ZoneEgress rules.

use super::common::{ip_or_dns, not_empty, opt_port, port, tags};
use super::{Path, Report};
use crate::types::{SERVICE_TAG, ZoneEgressSpec, ZoneIngressSpec};

pub(super) fn validate_ingress(spec: &ZoneIngressSpec, root: &Path, report: &mut Report) {
    let path = root.field("networking");
    match &spec.networking {
        None => report.add(&path, "must be set"),
        Some(net) => {
            ip_or_dns(report, &path.field("address"), &net.address);
            port(report, &path.field("port"), net.port);
            if let Some(advertised) = &net.advertised_address {
                ip_or_dns(report, &path.field("advertisedAddress"), advertised);
            }
            opt_port(report, &path.field("advertisedPort"), net.advertised_port);
            if net.advertised_address.is_some() != net.advertised_port.is_some() {
                report.add(
                    &path,
                    "advertisedAddress and advertisedPort must be set together",
                );
            }
            if let Some(admin) = &net.admin {
                port(report, &path.field("admin").field("port"), admin.port);
            }
        }
    }
    for (i, service) in spec.available_services.iter().enumerate() {
        let at = root.field("availableServices").index(i);
        tags(report, &at.field("tags"), &service.tags);
        if !service.tags.contains_key(SERVICE_TAG) {
            report.add(&at.field("tags").key(SERVICE_TAG), "must be set");
        }
        not_empty(report, &at.field("mesh"), &service.mesh);
        for (j, endpoint) in service.endpoints.iter().enumerate() {
            if endpoint.parse::<std::net::SocketAddr>().is_err() {
                report.add(
                    &at.field("endpoints").index(j),
                    format!("{endpoint:?} is not an ip:port address"),
                );
            }
        }
    }
}

pub(super) fn validate_egress(spec: &ZoneEgressSpec, root: &Path, report: &mut Report) {
    let path = root.field("networking");
    match &spec.networking {
        None => report.add(&path, "must be set"),
        Some(net) => {
            ip_or_dns(report, &path.field("address"), &net.address);
            port(report, &path.field("port"), net.port);
            if let Some(admin) = &net.admin {
                port(report, &path.field("admin").field("port"), admin.port);
            }
            if let Some(prometheus) = &net.prometheus {
                let at = path.field("prometheus");
                port(report, &at.field("port"), prometheus.port);
                let admin = net.admin.as_ref().map(|a| a.port);
                if prometheus.port == net.port || Some(prometheus.port) == admin {
                    report.add(
                        &at.field("port"),
                        "must differ from networking.port and networking.admin.port",
                    );
                }
                if !prometheus.path().starts_with('/') {
                    report.add(&at.field("path"), "must start with /");
                }
            }
        }
    }
}
