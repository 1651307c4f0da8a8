//! MeshMetric: a Prometheus endpoint per proxy is honoured; what Atoll does not serve yet
//! (application metrics, stat profiles, OpenTelemetry, TLS on the endpoint) is refused by name.

use super::common::one_of;
use super::policies::PROXY_TARGETS;
use super::{Path, Report};
use crate::types::*;

pub(super) fn metric(spec: &MeshMetricSpec, path: &Path, report: &mut Report) {
    let target = path.field("targetRef");
    match &spec.target_ref {
        None => report.add(&target, "must be set"),
        Some(t) => {
            if t.kind.is_known() && !PROXY_TARGETS.contains(&t.kind) {
                let names: Vec<&str> = PROXY_TARGETS.iter().map(|k| k.as_str()).collect();
                report.add(
                    &target.field("kind"),
                    format!(
                        "{} is not supported here; use one of {}",
                        t.kind,
                        names.join(", ")
                    ),
                );
            }
            one_of(report, &target.field("kind"), &t.kind, true);
        }
    }
    let at = path.field("default");
    let Some(conf) = &spec.default else {
        report.add(&at, "must be set");
        return;
    };
    if conf.applications.is_some() {
        report.add(
            &at.field("applications"),
            "is not supported yet: the endpoint publishes the proxy's own metrics",
        );
    }
    if conf.sidecar.as_ref().is_some_and(|s| s.profiles.is_some()) {
        report.add(
            &at.field("sidecar").field("profiles"),
            "is not supported yet: every statistic is published (sidecar.includeUnused decides about untouched ones)",
        );
    }
    if conf.backends.is_empty() {
        report.add(&at.field("backends"), "must have at least one entry");
    }
    let mut ports = std::collections::BTreeSet::new();
    for (i, backend) in conf.backends.iter().enumerate() {
        let b = at.field("backends").index(i);
        one_of(report, &b.field("type"), &backend.backend_type, true);
        match backend.backend_type {
            MetricBackendType::Prometheus => {
                let Some(prometheus) = &backend.prometheus else {
                    report.add(&b.field("prometheus"), "must be set for type Prometheus");
                    continue;
                };
                let p = b.field("prometheus");
                let port = prometheus.port_or_default();
                if !(1..=65535).contains(&port) {
                    report.add(&p.field("port"), "must be a port from 1 to 65535");
                } else if !ports.insert(port) {
                    report.add(
                        &p.field("port"),
                        format!("{port} is used by another backend"),
                    );
                }
                let path_ok = prometheus.path_or_default();
                if !path_ok.starts_with('/') {
                    report.add(&p.field("path"), "must start with /");
                }
                if let Some(tls) = &prometheus.tls {
                    one_of(report, &p.field("tls").field("mode"), &tls.mode, false);
                    if tls.mode.is_known() && tls.mode != PrometheusTlsMode::Disabled {
                        report.add(
                            &p.field("tls").field("mode"),
                            format!(
                                "{} is not supported yet: the endpoint is plain HTTP (Disabled)",
                                tls.mode
                            ),
                        );
                    }
                }
                if backend.open_telemetry.is_some() {
                    report.add(
                        &b.field("openTelemetry"),
                        "must not be set for type Prometheus",
                    );
                }
            }
            MetricBackendType::OpenTelemetry => report.add(
                &b.field("type"),
                "OpenTelemetry is not supported yet: use a Prometheus backend",
            ),
            _ => {}
        }
    }
}
