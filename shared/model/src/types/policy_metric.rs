//! MeshMetric (Kuma 2.14's field names): where the proxies a policy selects publish their
//! metrics. Unlike the other policies it has one `default` for the whole proxy, no `to[]` or
//! `from[]`.

use super::TargetRef;
use crate::enums::string_enum;

model! {
    pub struct MeshMetricSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_ref: Option<TargetRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default: Option<MetricConf>,
    }

    pub struct MetricConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sidecar: Option<SidecarMetrics>,
        /// Kept as written so Kuma documents read back whole; refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub applications: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub backends: Vec<MetricBackend>,
    }

    pub struct SidecarMetrics {
        /// Also publish the statistics nothing has touched yet (Envoy's `usedonly` off).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub include_unused: Option<bool>,
        /// Kept as written; refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub profiles: Option<serde_json::Value>,
    }

    pub struct MetricBackend {
        #[serde(rename = "type", default, skip_serializing_if = "MetricBackendType::is_unset")]
        pub backend_type: MetricBackendType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub prometheus: Option<PrometheusBackend>,
        /// Kept as written; refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub open_telemetry: Option<serde_json::Value>,
    }

    pub struct PrometheusBackend {
        /// Which Prometheus (its `kuma_sd_configs` `client_id`) scrapes this endpoint; every
        /// one when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_id: Option<String>,
        /// Default 5670.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<u32>,
        /// Default `/metrics`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls: Option<PrometheusTls>,
    }

    pub struct PrometheusTls {
        #[serde(default, skip_serializing_if = "PrometheusTlsMode::is_unset")]
        pub mode: PrometheusTlsMode,
    }
}

string_enum! {
    MetricBackendType {
        Prometheus = "Prometheus",
        OpenTelemetry = "OpenTelemetry",
    }
}

string_enum! {
    PrometheusTlsMode {
        Disabled = "Disabled",
        ProvidedTls = "ProvidedTLS",
        ActiveMtlsBackend = "ActiveMTLSBackend",
    }
}

/// Kuma's defaults for a Prometheus backend.
pub const DEFAULT_METRICS_PORT: u32 = 5670;
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

impl PrometheusBackend {
    pub fn port_or_default(&self) -> u32 {
        self.port.unwrap_or(DEFAULT_METRICS_PORT)
    }

    pub fn path_or_default(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_METRICS_PATH)
    }
}

impl MetricConf {
    /// The Prometheus endpoints this configuration asks for: (port, path, client id).
    pub fn prometheus_endpoints(&self) -> Vec<(u32, &str, Option<&str>)> {
        self.backends
            .iter()
            .filter(|b| b.backend_type == MetricBackendType::Prometheus)
            .filter_map(|b| b.prometheus.as_ref())
            .map(|p| {
                (
                    p.port_or_default(),
                    p.path_or_default(),
                    p.client_id.as_deref(),
                )
            })
            .collect()
    }

    /// Whether statistics nothing has touched are published too.
    pub fn include_unused(&self) -> bool {
        self.sidecar
            .as_ref()
            .and_then(|s| s.include_unused)
            .unwrap_or(false)
    }
}
