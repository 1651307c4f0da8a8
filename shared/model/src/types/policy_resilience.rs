//! The configurations of MeshCircuitBreaker and MeshHealthCheck, field for field as Kuma 2.x
//! spells them. Both act on the clusters of a proxy's destinations: circuit breakers and
//! outlier detection watch live traffic, health checks send probes of their own.
//!
//! Integer widths follow Kuma's: its `uint32` fields are `u32` here (a negative number is a
//! shape error), its `int32` fields `i32` (a negative number reaches validation, as in Kuma).

use super::{HeaderValue, IntOrString};

model! {
    pub struct CircuitBreakerConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connection_limits: Option<ConnectionLimits>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub outlier_detection: Option<OutlierDetection>,
    }

    /// Envoy's circuit-breaker thresholds: what overflows is refused at once (503).
    pub struct ConnectionLimits {
        /// Connections to all the destination's instances together.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_connections: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_connection_pools: Option<u32>,
        /// Requests waiting for a connection (for TCP traffic, connections waiting).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_pending_requests: Option<u32>,
        /// Retries in flight at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_retries: Option<u32>,
        /// Requests in flight at once (HTTP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_requests: Option<u32>,
    }

    /// Passive health checking: instances that misbehave on live traffic are ejected for a
    /// while.
    pub struct OutlierDetection {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        /// Between ejection sweeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        /// An ejection lasts this long times the number of times the instance was ejected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub base_ejection_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_ejection_percent: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub split_external_and_local_errors: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detectors: Option<Detectors>,
    }

    pub struct Detectors {
        /// Consecutive errors of any kind (HTTP 5xx, failed connections).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub total_failures: Option<ConsecutiveFailures>,
        /// Consecutive 502, 503 and 504 (and, unsplit, local failures).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub gateway_failures: Option<ConsecutiveFailures>,
        /// Consecutive locally originated failures (timeouts, resets), when split.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local_origin_failures: Option<ConsecutiveFailures>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub success_rate: Option<SuccessRateDetector>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failure_percentage: Option<FailurePercentageDetector>,
    }

    pub struct ConsecutiveFailures {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub consecutive: Option<u32>,
    }

    pub struct SuccessRateDetector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub minimum_hosts: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_volume: Option<u32>,
        /// A number, or a decimal as a string (`"1.9"`): instances below the mean success rate
        /// minus this many standard deviations are ejected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub standard_deviation_factor: Option<IntOrString>,
    }

    pub struct FailurePercentageDetector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub minimum_hosts: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_volume: Option<u32>,
        /// Instances failing this percentage of requests or more are ejected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub threshold: Option<u32>,
    }

    pub struct HealthCheckConf {
        /// Between checks (Kuma's default: 1m).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        /// For an answer (default 15s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String>,
        /// Failed checks in a row before an instance is unhealthy (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unhealthy_threshold: Option<i32>,
        /// Passed checks in a row before it is healthy again (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub healthy_threshold: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub initial_jitter: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval_jitter: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval_jitter_percent: Option<i32>,
        /// Below this percentage of healthy instances, traffic goes to all of them (Envoy's
        /// panic mode); a number or a decimal string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub healthy_panic_threshold: Option<IntOrString>,
        /// In panic mode, fail the requests instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fail_traffic_on_panic: Option<bool>,
        /// Checks while the destination has had no traffic yet (Envoy's default: 60s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub no_traffic_interval: Option<String>,
        /// A file on the data plane's host where Envoy writes health check events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_log_path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub always_log_health_check_failures: Option<bool>,
        /// Keep the check's connection between checks (Envoy's default: true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reuse_connection: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tcp: Option<TcpHealthCheck>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<HttpHealthCheck>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grpc: Option<GrpcHealthCheck>,
    }

    pub struct TcpHealthCheck {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        /// Text sent once connected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub send: Option<String>,
        /// Texts the answer must contain, in this order; none: connecting is enough.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub receive: Option<Vec<String>>,
    }

    pub struct HttpHealthCheck {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        /// The path asked for (default `/`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_headers_to_add: Option<HealthCheckHeaders>,
        /// Statuses that count as healthy (default: 200-299).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expected_statuses: Option<Vec<i32>>,
    }

    /// Headers of a health check request: `set` replaces, `add` appends.
    pub struct HealthCheckHeaders {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub set: Vec<HeaderValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add: Vec<HeaderValue>,
    }

    pub struct GrpcHealthCheck {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub authority: Option<String>,
    }
}

impl IntOrString {
    /// The number it holds: an integer, or a decimal written as a string (`"1.9"`), as Kuma
    /// reads its int-or-string numbers; `None` when the string is not a finite number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            IntOrString::Int(n) => Some(*n as f64),
            IntOrString::String(s) => s.parse::<f64>().ok().filter(|f| f.is_finite()),
        }
    }
}
