//! MeshHealthCheck on a destination's cluster: an active health check (HTTP, gRPC or TCP,
//! chosen by the destination's protocol as Kuma chooses), and the cluster's panic settings.
//!
//! The checker opens its connections with the cluster's own transport socket, so with mesh
//! mTLS a check reaches the destination sidecar's inbound exactly like a request does (the
//! same client certificate, the same SNI) and is subject to its permissions; an HTTP check is
//! then answered by the application behind it.

use atoll_model::types::{GrpcHealthCheck, HealthCheckConf, HttpHealthCheck, TcpHealthCheck};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, HealthCheck, TypedExtensionConfig, header_value_option,
    health_check,
};
use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Int64Range, Percent};
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};
use envoy_types::util::pack_any;

use super::timeout::duration;

/// Kuma's defaults for what a policy leaves out.
const DEFAULT_INTERVAL: i64 = 60;
const DEFAULT_TIMEOUT: i64 = 15;
const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 5;
const DEFAULT_HEALTHY_THRESHOLD: u32 = 1;

/// The check a destination of `protocol` gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Checker<'a> {
    Http(&'a HttpHealthCheck, CodecClientType),
    /// `grpc.health.v1.Health/Check` over the cluster's HTTP/2.
    Grpc(&'a GrpcHealthCheck),
    Tcp(&'a TcpHealthCheck),
}

fn on<T>(section: &Option<T>, disabled: impl Fn(&T) -> Option<bool>) -> Option<&T> {
    section.as_ref().filter(|s| disabled(s) != Some(true))
}

/// Kuma's choice: the check of the destination's own protocol; a `tcp` check instead only
/// when that protocol's check is present and disabled. `None` when nothing fits (an HTTP
/// service with only `tcp`, for one). Services without a protocol tag are TCP; Kafka is
/// checked as TCP too.
pub fn checker<'a>(conf: &'a HealthCheckConf, protocol: &str) -> Option<Checker<'a>> {
    let http = on(&conf.http, |h| h.disabled);
    let tcp = on(&conf.tcp, |t| t.disabled);
    let http_off = conf.http.as_ref().is_some_and(|h| h.disabled == Some(true));
    let grpc_off = conf.grpc.as_ref().is_some_and(|g| g.disabled == Some(true));
    match protocol {
        "http" | "http2" => {
            let codec = if protocol == "http2" {
                CodecClientType::Http2
            } else {
                CodecClientType::Http1
            };
            match (http, tcp) {
                (Some(h), _) => Some(Checker::Http(h, codec)),
                (None, Some(t)) if http_off => Some(Checker::Tcp(t)),
                _ => None,
            }
        }
        "grpc" => match (on(&conf.grpc, |g| g.disabled), tcp) {
            (Some(g), _) => Some(Checker::Grpc(g)),
            (None, Some(t)) if grpc_off => Some(Checker::Tcp(t)),
            _ => None,
        },
        _ => tcp.map(Checker::Tcp),
    }
}

fn seconds(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

fn threshold(value: Option<i32>, default: u32) -> Option<UInt32Value> {
    Some(UInt32Value {
        value: value.and_then(|v| u32::try_from(v).ok()).unwrap_or(default),
    })
}

/// Applies `conf` to `cluster` for a destination of `protocol`; false when no check fits the
/// protocol (the panic settings apply all the same, as in Kuma).
pub fn cluster(cluster: &mut Cluster, conf: &HealthCheckConf, protocol: &str) -> bool {
    panic_settings(cluster, conf);
    let Some(checker) = checker(conf, protocol) else {
        return false;
    };
    let mut check = HealthCheck {
        interval: duration(conf.interval.as_ref()).or_else(|| seconds(DEFAULT_INTERVAL)),
        timeout: duration(conf.timeout.as_ref()).or_else(|| seconds(DEFAULT_TIMEOUT)),
        unhealthy_threshold: threshold(conf.unhealthy_threshold, DEFAULT_UNHEALTHY_THRESHOLD),
        healthy_threshold: threshold(conf.healthy_threshold, DEFAULT_HEALTHY_THRESHOLD),
        initial_jitter: duration(conf.initial_jitter.as_ref()),
        interval_jitter: duration(conf.interval_jitter.as_ref()),
        interval_jitter_percent: conf
            .interval_jitter_percent
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        no_traffic_interval: duration(conf.no_traffic_interval.as_ref()),
        always_log_health_check_failures: conf.always_log_health_check_failures == Some(true),
        reuse_connection: conf.reuse_connection.map(|value| BoolValue { value }),
        health_checker: Some(match checker {
            Checker::Http(http, codec) => {
                health_check::HealthChecker::HttpHealthCheck(http_check(http, codec))
            }
            Checker::Grpc(grpc) => {
                health_check::HealthChecker::GrpcHealthCheck(health_check::GrpcHealthCheck {
                    service_name: grpc.service_name.clone().unwrap_or_default(),
                    authority: grpc.authority.clone().unwrap_or_default(),
                    ..Default::default()
                })
            }
            Checker::Tcp(tcp) => health_check::HealthChecker::TcpHealthCheck(tcp_check(tcp)),
        }),
        ..Default::default()
    };
    if let Some(path) = &conf.event_log_path {
        check.event_logger = vec![TypedExtensionConfig {
            name: "envoy.health_check.event_sinks.file".into(),
            typed_config: Some(pack_any(HealthCheckEventFileSink {
                event_log_path: path.clone(),
            })),
        }];
    }
    cluster.health_checks.push(check);
    true
}

fn panic_settings(cluster: &mut Cluster, conf: &HealthCheckConf) {
    if let Some(threshold) = conf
        .healthy_panic_threshold
        .as_ref()
        .and_then(|t| t.as_number())
    {
        cluster
            .common_lb_config
            .get_or_insert_with(Default::default)
            .healthy_panic_threshold = Some(Percent { value: threshold });
    }
    if let Some(fail) = conf.fail_traffic_on_panic {
        let common = cluster
            .common_lb_config
            .get_or_insert_with(Default::default);
        // Zone-aware settings carry it; MeshLoadBalancingStrategy's affinity tags replace them
        // with locality weights later, and report the loss.
        if let cluster::common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(zone) =
            common.locality_config_specifier.get_or_insert_with(|| {
                cluster::common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(
                    Default::default(),
                )
            })
        {
            zone.fail_traffic_on_panic = fail;
        }
    }
}

/// The bytes of a text, as Envoy's hex payload. Kuma's field descriptions call `send` and
/// `receive` base64, but Kuma sends the text as it is written; so does Atoll.
fn payload(text: &str) -> health_check::Payload {
    health_check::Payload {
        payload: Some(health_check::payload::Payload::Text(
            text.bytes().map(|b| format!("{b:02x}")).collect(),
        )),
    }
}

fn tcp_check(tcp: &TcpHealthCheck) -> health_check::TcpHealthCheck {
    health_check::TcpHealthCheck {
        send: tcp.send.as_deref().map(payload),
        receive: tcp.receive.iter().flatten().map(|r| payload(r)).collect(),
        ..Default::default()
    }
}

fn http_check(http: &HttpHealthCheck, codec: CodecClientType) -> health_check::HttpHealthCheck {
    let header = |name: &str, value: &str, action| HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_string(),
            value: value.to_string(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    let mut headers = Vec::new();
    if let Some(modifier) = &http.request_headers_to_add {
        // As Kuma: a comma-separated value is one header line per value.
        for (list, action) in [
            (
                &modifier.add,
                header_value_option::HeaderAppendAction::AppendIfExistsOrAdd,
            ),
            (
                &modifier.set,
                header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
            ),
        ] {
            for h in list {
                for value in h.value.split(',') {
                    headers.push(header(&h.name, value, action));
                }
            }
        }
    }
    health_check::HttpHealthCheck {
        path: http.path.clone().unwrap_or_else(|| "/".into()),
        request_headers_to_add: headers,
        expected_statuses: http
            .expected_statuses
            .iter()
            .flatten()
            .map(|s| Int64Range {
                start: i64::from(*s),
                end: i64::from(*s) + 1,
            })
            .collect(),
        codec_client_type: codec as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(value: serde_json::Value) -> HealthCheckConf {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_destination_protocol_chooses_the_check_as_in_kuma() {
        let both = conf(json!({"http": {"path": "/h"}, "tcp": {}}));
        assert!(matches!(checker(&both, "http"), Some(Checker::Http(..))));
        assert!(matches!(
            checker(&both, "http2"),
            Some(Checker::Http(_, CodecClientType::Http2))
        ));
        assert!(matches!(checker(&both, "tcp"), Some(Checker::Tcp(_))));
        assert!(matches!(checker(&both, ""), Some(Checker::Tcp(_))));
        // An HTTP service with only tcp: no check at all (Kuma's rule).
        let tcp_only = conf(json!({"tcp": {}}));
        assert_eq!(checker(&tcp_only, "http"), None);
        // ... unless http is there and disabled.
        let http_off = conf(json!({"http": {"disabled": true}, "tcp": {}}));
        assert!(matches!(checker(&http_off, "http"), Some(Checker::Tcp(_))));
        // gRPC: its own check; tcp only when grpc is disabled.
        assert_eq!(checker(&tcp_only, "grpc"), None);
        let grpc = conf(json!({"grpc": {"serviceName": "svc"}, "tcp": {}}));
        assert!(
            matches!(checker(&grpc, "grpc"), Some(Checker::Grpc(g)) if g.service_name.as_deref() == Some("svc"))
        );
        assert!(matches!(checker(&grpc, "tcp"), Some(Checker::Tcp(_))));
        let grpc_off = conf(json!({"grpc": {"disabled": true}, "tcp": {}}));
        assert!(matches!(checker(&grpc_off, "grpc"), Some(Checker::Tcp(_))));
        // A TCP service with only http: nothing.
        assert_eq!(checker(&conf(json!({"http": {}})), "tcp"), None);
    }

    #[test]
    fn defaults_payloads_headers_and_panic_settings() {
        let mut c = Cluster::default();
        let applied = cluster(
            &mut c,
            &conf(json!({
                "healthyPanicThreshold": "12.5",
                "failTrafficOnPanic": true,
                "http": {"requestHeadersToAdd": {"add": [{"name": "x-a", "value": "1,2"}], "set": [{"name": "x-s", "value": "v"}]}, "expectedStatuses": [204]},
            })),
            "http",
        );
        assert!(applied);
        let check = &c.health_checks[0];
        assert_eq!(check.interval.unwrap().seconds, 60);
        assert_eq!(check.timeout.unwrap().seconds, 15);
        assert_eq!(check.unhealthy_threshold.unwrap().value, 5);
        let Some(health_check::HealthChecker::HttpHealthCheck(http)) = &check.health_checker else {
            panic!("an HTTP check");
        };
        assert_eq!(http.path, "/");
        assert_eq!(http.request_headers_to_add.len(), 3);
        assert_eq!(
            http.expected_statuses,
            [Int64Range {
                start: 204,
                end: 205
            }]
        );
        let common = c.common_lb_config.unwrap();
        assert_eq!(common.healthy_panic_threshold.unwrap().value, 12.5);
        assert!(matches!(
            common.locality_config_specifier,
            Some(cluster::common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(z)) if z.fail_traffic_on_panic
        ));
        assert_eq!(
            payload("ping").payload,
            Some(health_check::payload::Payload::Text("70696e67".into()))
        );
    }
}
