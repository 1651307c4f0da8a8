//! MeshRateLimit, MeshFaultInjection and MeshAccessLog: what Atoll's sidecars honour, and
//! the rest refused by name.

use std::collections::BTreeSet;
use std::time::Duration;

use super::common::{not_empty, one_of};
use super::policies::{
    DESTINATIONS, PROXY_AND_GATEWAY_CLUSTER_TARGETS, PROXY_AND_GATEWAY_TARGETS, Sections,
    common_shape, defaults, policy_shape,
};
use super::{Path, Report};
use crate::duration;
use crate::types::*;

/// Envoy's token buckets refill at most every 50ms.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// The statuses Envoy can answer a limited request with (its `StatusCode` enum).
const ENVOY_STATUSES: &[u32] = &[
    100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421,
    422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

fn rate(rate: &Option<Rate>, name: &str, disabled: bool, path: &Path, report: &mut Report) {
    let at = path.field(name);
    let Some(rate) = rate else {
        if !disabled {
            report.add(&at, "must be set unless disabled is true");
        }
        return;
    };
    if rate.num == 0 {
        report.add(&at.field("num"), "must be at least 1");
    }
    let interval = at.field("interval");
    match duration::parse(&rate.interval) {
        Err(err) => report.add(
            &interval,
            format!("{:?} is not a duration ({err}); e.g. 1s, 1m", rate.interval),
        ),
        Ok(d) if d < MIN_INTERVAL => report.add(&interval, "must be at least 50ms"),
        Ok(_) => {}
    }
}

pub(super) fn rate_limit(spec: &MeshRateLimitSpec, path: &Path, report: &mut Report) {
    // A gateway's routes take `to[]` entries (of kind Mesh); sidecars' inbounds `from[]`.
    let on_gateway = super::policies_gateway::rate_limit(spec, path, report);
    if on_gateway {
        policy_shape!(
            spec,
            Sections {
                to: true,
                from: false,
                targets: PROXY_AND_GATEWAY_TARGETS,
                destinations: DESTINATIONS,
            },
            path,
            report
        );
    } else {
        common_shape!(
            spec,
            false,
            "rate limits (they are per proxy, not per caller)",
            path,
            report
        );
    }
    for (at, conf) in defaults!(spec, path, to: on_gateway) {
        let at = at.field("local");
        let Some(local) = &conf.local else {
            report.add(&at, "must be set");
            continue;
        };
        if local.http.is_none() && local.tcp.is_none() {
            report.add(&at, "must set http, tcp or both");
        }
        if let Some(http) = &local.http {
            let h = at.field("http");
            rate(&http.request_rate, "requestRate", http.disabled, &h, report);
            if let Some(on) = &http.on_rate_limit {
                let o = h.field("onRateLimit");
                if let Some(status) = on.status
                    && !ENVOY_STATUSES.contains(&status)
                {
                    report.add(
                        &o.field("status"),
                        format!("{status} is not an HTTP status Envoy can send (e.g. 429, 503)"),
                    );
                }
                if let Some(headers) = &on.headers {
                    for (field, values) in [("add", &headers.add), ("set", &headers.set)] {
                        for (j, header) in values.iter().enumerate() {
                            let hp = o.field("headers").field(field).index(j);
                            not_empty(report, &hp.field("name"), &header.name);
                        }
                    }
                }
            }
        }
        if let Some(tcp) = &local.tcp {
            let t = at.field("tcp");
            rate(
                &tcp.connection_rate,
                "connectionRate",
                tcp.disabled,
                &t,
                report,
            );
        }
    }
}

/// A percentage from 0 to 100, required.
fn percentage(value: &Option<IntOrString>, path: &Path, report: &mut Report) {
    let at = path.field("percentage");
    match value {
        None => report.add(&at, "must be set"),
        Some(p) if p.percent().is_none() => report.add(&at, "must be a number from 0 to 100"),
        Some(_) => {}
    }
}

pub(super) fn fault_injection(spec: &MeshFaultInjectionSpec, path: &Path, report: &mut Report) {
    common_shape!(spec, false, "fault injection", path, report);
    for (at, conf) in defaults!(spec, path, to: false) {
        let at = at.field("http");
        if conf.http.is_empty() {
            report.add(&at, "must have at least one entry");
        }
        for (j, fault) in conf.http.iter().enumerate() {
            let f = at.index(j);
            if fault.abort.is_none() && fault.delay.is_none() && fault.response_bandwidth.is_none()
            {
                report.add(&f, "must set abort, delay or responseBandwidth");
            }
            if let Some(abort) = &fault.abort {
                let a = f.field("abort");
                if !(200..=599).contains(&abort.http_status) {
                    report.add(
                        &a.field("httpStatus"),
                        "must be an HTTP status from 200 to 599",
                    );
                }
                percentage(&abort.percentage, &a, report);
            }
            if let Some(delay) = &fault.delay {
                let d = f.field("delay");
                if let Err(err) = duration::parse(&delay.value) {
                    report.add(
                        &d.field("value"),
                        format!("{:?} is not a duration ({err}); e.g. 5s", delay.value),
                    );
                }
                percentage(&delay.percentage, &d, report);
            }
            if let Some(bandwidth) = &fault.response_bandwidth {
                let b = f.field("responseBandwidth");
                if bandwidth.kib_per_second().is_none() {
                    report.add(
                        &b.field("limit"),
                        format!(
                            "{:?} is not a bandwidth: a whole number of kbps, Mbps or Gbps of at least 1 KiB/s (9kbps), e.g. 50Mbps",
                            bandwidth.limit
                        ),
                    );
                }
                percentage(&bandwidth.percentage, &b, report);
            }
        }
    }
}

pub(super) fn access_log(spec: &MeshAccessLogSpec, path: &Path, report: &mut Report) {
    super::policies_gateway::access_log(spec, path, report);
    common_shape!(
        spec,
        true,
        "access logs",
        path,
        report,
        PROXY_AND_GATEWAY_CLUSTER_TARGETS
    );
    {
        for (at, conf) in defaults!(spec, path, to: true) {
            let at = at.field("backends");
            if conf.backends.is_empty() {
                report.add(&at, "must have at least one entry");
            }
            for (j, backend) in conf.backends.iter().enumerate() {
                backend_rules(backend, &at.index(j), report);
            }
        }
    }
}

fn backend_rules(backend: &AccessLogBackend, path: &Path, report: &mut Report) {
    let set = [
        backend.file.is_some(),
        backend.tcp.is_some(),
        backend.otel_logs.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        report.add(path, "must set exactly one of file, tcp, otelLogs");
    }
    if backend.otel_logs.is_some() {
        report.add(
            &path.field("otelLogs"),
            "is not supported yet: use a file or tcp backend",
        );
    }
    if let Some(tcp) = &backend.tcp {
        let at = path.field("tcp");
        let port = tcp
            .address
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port > 0);
        if port.is_none() {
            report.add(
                &at.field("address"),
                format!(
                    "{:?} is not host:port, e.g. logstash.internal:5000",
                    tcp.address
                ),
            );
        }
        if let Some(format) = &tcp.format {
            log_format(format, &at.field("format"), report);
            // The relay's own keys carry each record's backend and plain text.
            for (i, field) in format.json.iter().enumerate() {
                if field.key.starts_with("@atoll.") {
                    report.add(
                        &at.field("format").field("json").index(i).field("key"),
                        "keys starting with @atoll. are reserved",
                    );
                }
            }
        }
    }
    if let Some(file) = &backend.file {
        let at = path.field("file");
        if !file.path.starts_with('/') {
            report.add(&at.field("path"), "must be an absolute path");
        }
        if let Some(format) = &file.format {
            log_format(format, &at.field("format"), report);
        }
    }
}

fn log_format(format: &LogFormat, path: &Path, report: &mut Report) {
    one_of(report, &path.field("type"), &format.format_type, true);
    match format.format_type {
        LogFormatType::Plain => {
            if format.plain.as_deref().is_none_or(str::is_empty) {
                report.add(&path.field("plain"), "must be set for type Plain");
            }
            if !format.json.is_empty() {
                report.add(&path.field("json"), "must not be set for type Plain");
            }
        }
        LogFormatType::Json => {
            if format.plain.is_some() {
                report.add(&path.field("plain"), "must not be set for type Json");
            }
            if format.json.is_empty() {
                report.add(
                    &path.field("json"),
                    "must have at least one entry for type Json",
                );
            }
            let mut keys = BTreeSet::new();
            for (i, field) in format.json.iter().enumerate() {
                let at = path.field("json").index(i);
                not_empty(report, &at.field("key"), &field.key);
                not_empty(report, &at.field("value"), &field.value);
                if !field.key.is_empty() && !keys.insert(field.key.as_str()) {
                    report.add(&at.field("key"), format!("{:?} appears twice", field.key));
                }
            }
        }
        _ => {}
    }
}
