//! MeshRetry on an outbound's routes (HTTP or gRPC conditions) and TCP proxy (connection
//! attempts).

use atoll_model::types::{HttpRetry, RetryConf};
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, Route, retry_policy, route};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::google::protobuf::UInt32Value;

use super::timeout::duration;

/// Envoy's retry policy for `http` (gRPC conditions when `grpc`).
pub fn policy(http: &HttpRetry, grpc: bool) -> RetryPolicy {
    let mut codes = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    for condition in &http.retry_on {
        match condition.parse::<u32>() {
            Ok(code) if !grpc => codes.push(code),
            _ => conditions.push(condition.clone()),
        }
    }
    if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
        conditions.push("retriable-status-codes".into());
    }
    if conditions.is_empty() {
        // Kuma's default conditions.
        conditions = if grpc {
            vec![
                "cancelled",
                "deadline-exceeded",
                "internal",
                "resource-exhausted",
                "unavailable",
            ]
        } else {
            vec![
                "5xx",
                "gateway-error",
                "reset",
                "connect-failure",
                "refused-stream",
            ]
        }
        .into_iter()
        .map(String::from)
        .collect();
    }
    RetryPolicy {
        retry_on: conditions.join(","),
        num_retries: http.num_retries.map(|value| UInt32Value { value }),
        per_try_timeout: duration(http.per_try_timeout.as_ref()),
        retriable_status_codes: codes,
        retry_back_off: http.back_off.as_ref().and_then(|b| {
            Some(retry_policy::RetryBackOff {
                base_interval: duration(b.base_interval.as_ref())
                    .or_else(|| duration(Some(&"25ms".to_string())))?
                    .into(),
                max_interval: duration(b.max_interval.as_ref()),
            })
        }),
        ..Default::default()
    }
}

pub fn route(route: &mut Route, conf: &RetryConf, grpc: bool) {
    let chosen = if grpc {
        conf.grpc.as_ref().or(conf.http.as_ref())
    } else {
        conf.http.as_ref()
    };
    let Some(http) = chosen else { return };
    let use_grpc = grpc && conf.grpc.is_some();
    if let Some(route::Action::Route(action)) = route.action.as_mut() {
        action.retry_policy = Some(policy(http, use_grpc));
    }
}

pub fn tcp_proxy(proxy: &mut TcpProxy, conf: &RetryConf) {
    if let Some(attempts) = conf.tcp.as_ref().and_then(|t| t.max_connect_attempt) {
        proxy.max_connect_attempts = Some(UInt32Value { value: attempts });
    }
}
