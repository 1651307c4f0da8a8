//! MeshCircuitBreaker on a destination's cluster: `connectionLimits` become Envoy's circuit
//! breaker thresholds, `outlierDetection` its outlier detection, field for field as Kuma 2.x
//! configures them.

use atoll_model::types::{CircuitBreakerConf, ConnectionLimits, Detectors, OutlierDetection};
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlierDetection, circuit_breakers,
};
use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
use envoy_types::pb::google::protobuf::UInt32Value;

use super::timeout::duration;

fn uint(value: Option<u32>) -> Option<UInt32Value> {
    value.map(|value| UInt32Value { value })
}

/// Envoy's enforcement percentage: a detector that is configured always ejects (100), one
/// that is not never does (0, where Envoy's own default may be 100).
fn enforcing(on: bool) -> Option<UInt32Value> {
    uint(Some(if on { 100 } else { 0 }))
}

pub fn cluster(cluster: &mut Cluster, conf: &CircuitBreakerConf) {
    if let Some(limits) = &conf.connection_limits {
        cluster.circuit_breakers = Some(thresholds(limits));
    }
    if let Some(outlier) = &conf.outlier_detection
        && outlier.disabled != Some(true)
    {
        cluster.outlier_detection = Some(outlier_detection(outlier));
    }
}

fn thresholds(limits: &ConnectionLimits) -> CircuitBreakers {
    CircuitBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            priority: RoutingPriority::Default as i32,
            max_connections: uint(limits.max_connections),
            max_pending_requests: uint(limits.max_pending_requests),
            max_requests: uint(limits.max_requests),
            max_retries: uint(limits.max_retries),
            max_connection_pools: uint(limits.max_connection_pools),
            // The remaining capacity shows in the `remaining_*` gauges.
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn outlier_detection(conf: &OutlierDetection) -> EnvoyOutlierDetection {
    let mut od = EnvoyOutlierDetection {
        interval: duration(conf.interval.as_ref()),
        base_ejection_time: duration(conf.base_ejection_time.as_ref()),
        max_ejection_percent: uint(conf.max_ejection_percent),
        split_external_local_origin_errors: conf.split_external_and_local_errors == Some(true),
        ..Default::default()
    };
    let detectors = conf.detectors.clone().unwrap_or_default();
    detectors_into(&mut od, &detectors);
    od
}

fn detectors_into(od: &mut EnvoyOutlierDetection, detectors: &Detectors) {
    let total = detectors
        .total_failures
        .as_ref()
        .and_then(|d| d.consecutive);
    od.enforcing_consecutive_5xx = enforcing(total.is_some());
    od.consecutive_5xx = uint(total);

    let gateway = detectors
        .gateway_failures
        .as_ref()
        .and_then(|d| d.consecutive);
    od.enforcing_consecutive_gateway_failure = enforcing(gateway.is_some());
    od.consecutive_gateway_failure = uint(gateway);

    // Envoy counts these only with split_external_local_origin_errors.
    let local = detectors
        .local_origin_failures
        .as_ref()
        .and_then(|d| d.consecutive);
    od.enforcing_consecutive_local_origin_failure = enforcing(local.is_some());
    od.consecutive_local_origin_failure = uint(local);

    let rate = detectors.success_rate.as_ref();
    od.enforcing_success_rate = enforcing(rate.is_some());
    od.enforcing_local_origin_success_rate = enforcing(rate.is_some());
    if let Some(rate) = rate {
        od.success_rate_minimum_hosts = uint(rate.minimum_hosts);
        od.success_rate_request_volume = uint(rate.request_volume);
        // Envoy takes the factor in thousandths (1900 for 1.9).
        od.success_rate_stdev_factor = rate
            .standard_deviation_factor
            .as_ref()
            .and_then(|f| f.as_number())
            .map(|f| UInt32Value {
                value: (f * 1000.0).round() as u32,
            });
    }

    let failures = detectors.failure_percentage.as_ref();
    od.enforcing_failure_percentage = enforcing(failures.is_some());
    od.enforcing_failure_percentage_local_origin = enforcing(failures.is_some());
    if let Some(failures) = failures {
        od.failure_percentage_minimum_hosts = uint(failures.minimum_hosts);
        od.failure_percentage_request_volume = uint(failures.request_volume);
        od.failure_percentage_threshold = uint(failures.threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(value: serde_json::Value) -> CircuitBreakerConf {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_the_configured_detectors_eject() {
        let mut c = Cluster::default();
        cluster(
            &mut c,
            &conf(json!({"outlierDetection": {
                "baseEjectionTime": "30s",
                "detectors": {
                    "totalFailures": {"consecutive": 3},
                    "successRate": {"standardDeviationFactor": "1.9"},
                },
            }})),
        );
        let od = c.outlier_detection.unwrap();
        assert_eq!(od.consecutive_5xx.unwrap().value, 3);
        assert_eq!(od.enforcing_consecutive_5xx.unwrap().value, 100);
        // Envoy would enforce consecutive gateway failures by default; Kuma turns them off.
        assert_eq!(od.enforcing_consecutive_gateway_failure.unwrap().value, 0);
        assert_eq!(od.enforcing_failure_percentage.unwrap().value, 0);
        assert_eq!(od.enforcing_success_rate.unwrap().value, 100);
        assert_eq!(od.success_rate_stdev_factor.unwrap().value, 1900);
        assert_eq!(od.base_ejection_time.unwrap().seconds, 30);
        assert!(c.circuit_breakers.is_none());
    }

    #[test]
    fn limits_become_one_default_priority_threshold_and_disabled_detection_nothing() {
        let mut c = Cluster::default();
        cluster(
            &mut c,
            &conf(json!({
                "connectionLimits": {"maxConnections": 1, "maxRequests": 2},
                "outlierDetection": {"disabled": true, "detectors": {"totalFailures": {}}},
            })),
        );
        let t = c.circuit_breakers.unwrap().thresholds[0];
        assert_eq!(t.max_connections.unwrap().value, 1);
        assert_eq!(t.max_requests.unwrap().value, 2);
        assert!(t.max_pending_requests.is_none());
        assert!(t.track_remaining);
        assert!(c.outlier_detection.is_none());
    }
}
