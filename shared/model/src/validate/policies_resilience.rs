//! MeshCircuitBreaker and MeshHealthCheck: Kuma 2.x's rules, plus what Envoy would refuse
//! (a refused cluster would cost the proxy every cluster update), and what Atoll does not
//! honour yet refused by name.

use super::common::duration;
use super::policies::{
    DESTINATIONS, PROXY_AND_GATEWAY_CLUSTER_TARGETS, Sections, common_shape, defaults,
    gateway_clusters, policy_shape,
};
use super::{Path, Report};
use crate::duration as durations;
use crate::types::*;

const GREATER_THAN_ZERO: &str = "must be greater than 0";
const PERCENTAGE: &str = "must be a percentage from 0 to 100";

fn positive<T: PartialOrd + Default>(report: &mut Report, path: &Path, value: Option<T>) {
    if value.is_some_and(|v| v <= T::default()) {
        report.add(path, GREATER_THAN_ZERO);
    }
}

fn percentage(report: &mut Report, path: &Path, value: Option<i64>) {
    if value.is_some_and(|v| !(0..=100).contains(&v)) {
        report.add(path, PERCENTAGE);
    }
}

/// A duration that must be longer than zero.
fn positive_duration(report: &mut Report, path: &Path, value: &Option<String>) {
    duration(report, path, value);
    if let Some(text) = value
        && durations::parse(text).is_ok_and(|d| d.is_zero())
    {
        report.add(path, GREATER_THAN_ZERO);
    }
}

pub(super) fn circuit_breaker(spec: &MeshCircuitBreakerSpec, path: &Path, report: &mut Report) {
    common_shape!(
        spec,
        true,
        "inbound circuit breakers (they limit the application's cluster, which every caller shares)",
        path,
        report,
        PROXY_AND_GATEWAY_CLUSTER_TARGETS
    );
    gateway_clusters(
        spec.target_ref.as_ref(),
        (spec.from.len(), spec.rules.len()),
        path,
        report,
    );
    for (at, conf) in defaults!(spec, path, to: true) {
        circuit_breaker_conf(conf, &at, report);
    }
}

fn circuit_breaker_conf(conf: &CircuitBreakerConf, at: &Path, report: &mut Report) {
    if conf.connection_limits.is_none() && conf.outlier_detection.is_none() {
        report.add(
            at,
            "must set at least one of connectionLimits, outlierDetection",
        );
        return;
    }
    if let Some(limits) = &conf.connection_limits {
        let l = at.field("connectionLimits");
        for (name, value) in [
            ("maxConnections", limits.max_connections),
            ("maxConnectionPools", limits.max_connection_pools),
            ("maxPendingRequests", limits.max_pending_requests),
            ("maxRetries", limits.max_retries),
            ("maxRequests", limits.max_requests),
        ] {
            positive(report, &l.field(name), value);
        }
    }
    let Some(outlier) = &conf.outlier_detection else {
        return;
    };
    let o = at.field("outlierDetection");
    positive_duration(report, &o.field("interval"), &outlier.interval);
    positive_duration(
        report,
        &o.field("baseEjectionTime"),
        &outlier.base_ejection_time,
    );
    percentage(
        report,
        &o.field("maxEjectionPercent"),
        outlier.max_ejection_percent.map(i64::from),
    );
    let d = o.field("detectors");
    // As in Kuma: the detectors are required even when `disabled` is true.
    let Some(detectors) = &outlier.detectors else {
        report.add(&d, "must be set");
        return;
    };
    let consecutive = [
        ("totalFailures", &detectors.total_failures),
        ("gatewayFailures", &detectors.gateway_failures),
        ("localOriginFailures", &detectors.local_origin_failures),
    ];
    if consecutive.iter().all(|(_, c)| c.is_none())
        && detectors.success_rate.is_none()
        && detectors.failure_percentage.is_none()
    {
        report.add(
            &d,
            "must set at least one of totalFailures, gatewayFailures, localOriginFailures, successRate, failurePercentage",
        );
        return;
    }
    for (name, detector) in consecutive {
        if let Some(detector) = detector {
            positive(
                report,
                &d.field(name).field("consecutive"),
                detector.consecutive,
            );
        }
    }
    if let Some(rate) = &detectors.success_rate {
        let r = d.field("successRate");
        positive(report, &r.field("minimumHosts"), rate.minimum_hosts);
        positive(report, &r.field("requestVolume"), rate.request_volume);
        if let Some(factor) = &rate.standard_deviation_factor {
            let at = r.field("standardDeviationFactor");
            match factor.as_number() {
                None => report.add(
                    &at,
                    "must be a number (an integer or a decimal string such as \"1.9\")",
                ),
                Some(f) if f <= 0.0 => report.add(&at, GREATER_THAN_ZERO),
                // Envoy takes it in thousandths, as a 32-bit count.
                Some(f) if f * 1000.0 > f64::from(u32::MAX) => report.add(&at, "is too large"),
                Some(_) => {}
            }
        }
    }
    if let Some(failures) = &detectors.failure_percentage {
        let f = d.field("failurePercentage");
        positive(report, &f.field("minimumHosts"), failures.minimum_hosts);
        positive(report, &f.field("requestVolume"), failures.request_volume);
        percentage(
            report,
            &f.field("threshold"),
            failures.threshold.map(i64::from),
        );
    }
}

pub(super) fn health_check(spec: &MeshHealthCheckSpec, path: &Path, report: &mut Report) {
    policy_shape!(
        spec,
        Sections {
            to: true,
            from: false,
            targets: PROXY_AND_GATEWAY_CLUSTER_TARGETS,
            destinations: DESTINATIONS,
        },
        path,
        report
    );
    gateway_clusters(
        spec.target_ref.as_ref(),
        (spec.from.len(), spec.rules.len()),
        path,
        report,
    );
    for (i, item) in spec.to.iter().enumerate() {
        let Some(conf) = &item.default else { continue };
        health_check_conf(conf, &path.field("to").index(i).field("default"), report);
    }
}

fn health_check_conf(conf: &HealthCheckConf, at: &Path, report: &mut Report) {
    for (name, value) in [
        ("interval", &conf.interval),
        ("timeout", &conf.timeout),
        ("initialJitter", &conf.initial_jitter),
        ("intervalJitter", &conf.interval_jitter),
        ("noTrafficInterval", &conf.no_traffic_interval),
    ] {
        positive_duration(report, &at.field(name), value);
    }
    positive(
        report,
        &at.field("unhealthyThreshold"),
        conf.unhealthy_threshold,
    );
    positive(
        report,
        &at.field("healthyThreshold"),
        conf.healthy_threshold,
    );
    percentage(
        report,
        &at.field("intervalJitterPercent"),
        conf.interval_jitter_percent.map(i64::from),
    );
    if let Some(threshold) = &conf.healthy_panic_threshold
        && !threshold
            .as_number()
            .is_some_and(|p| (0.0..=100.0).contains(&p))
    {
        report.add(
            &at.field("healthyPanicThreshold"),
            "must be a percentage from 0 to 100 (an integer or a decimal string such as \"50.5\")",
        );
    }
    if let Some(file) = &conf.event_log_path
        && (!file.starts_with('/') || file.contains('\0') || file.ends_with('/'))
    {
        report.add(
            &at.field("eventLogPath"),
            "must be an absolute path to a file, e.g. /tmp/health-checks.log",
        );
    }
    if conf.http.is_none() && conf.tcp.is_none() && conf.grpc.is_none() {
        report.add(at, "must set at least one of http, tcp, grpc");
    }
    if let Some(http) = &conf.http {
        http_check(http, &at.field("http"), report);
    }
    if let Some(tcp) = &conf.tcp {
        let t = at.field("tcp");
        if tcp.send.as_deref() == Some("") {
            report.add(
                &t.field("send"),
                "must not be empty (leave it out to only connect)",
            );
        }
        for (i, block) in tcp.receive.iter().flatten().enumerate() {
            if block.is_empty() {
                report.add(&t.field("receive").index(i), "must not be empty");
            }
        }
    }
}

/// Envoy's `HTTP_HEADER_NAME`: an RFC 7230 token.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Envoy's `HTTP_HEADER_VALUE`: no NUL, CR or LF.
fn is_header_value(value: &str) -> bool {
    !value.contains(['\0', '\r', '\n'])
}

fn http_check(http: &HttpHealthCheck, at: &Path, report: &mut Report) {
    if let Some(path) = &http.path {
        if path.is_empty() {
            report.add(&at.field("path"), "must not be empty");
        } else if !is_header_value(path) {
            report.add(&at.field("path"), "must not contain NUL, CR or LF");
        }
    }
    for (i, status) in http.expected_statuses.iter().flatten().enumerate() {
        if !(100..=599).contains(status) {
            report.add(
                &at.field("expectedStatuses").index(i),
                "must be an HTTP status from 100 to 599",
            );
        }
    }
    let Some(headers) = &http.request_headers_to_add else {
        return;
    };
    let h = at.field("requestHeadersToAdd");
    for (field, list) in [("set", &headers.set), ("add", &headers.add)] {
        if list.len() > 16 {
            report.add(&h.field(field), "must have at most 16 entries");
        }
        for (i, header) in list.iter().enumerate() {
            let e = h.field(field).index(i);
            let name = header.name.to_ascii_lowercase();
            if header.name.is_empty() {
                report.add(&e.field("name"), "must be set");
            } else if name.starts_with(':') || name == "host" {
                // Envoy refuses the whole cluster otherwise.
                report.add(
                    &e.field("name"),
                    format!(
                        "{:?} cannot be changed on a health check request",
                        header.name
                    ),
                );
            } else if !is_header_name(&header.name) {
                report.add(
                    &e.field("name"),
                    format!(
                        "{:?} is not a header name: letters, digits and !#$%&'*+-.^_`|~",
                        header.name
                    ),
                );
            }
            if !is_header_value(&header.value) {
                report.add(&e.field("value"), "must not contain NUL, CR or LF");
            }
        }
    }
}
