//! The configurations of MeshRateLimit, MeshFaultInjection and MeshAccessLog (Kuma 2.14's
//! field names); their specs are declared with the other policies in `policy.rs`.

use super::{HeaderValue, IntOrString, is_false};
use crate::enums::string_enum;

model! {
    /// MeshRateLimit's `default`: Envoy's local (per proxy instance) rate limits.
    pub struct RateLimitConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local: Option<LocalRateLimit>,
    }

    pub struct LocalRateLimit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<HttpRateLimit>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tcp: Option<TcpRateLimit>,
    }

    pub struct HttpRateLimit {
        /// Turns off a limit that a less specific policy set.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disabled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_rate: Option<Rate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub on_rate_limit: Option<OnRateLimit>,
    }

    pub struct TcpRateLimit {
        #[serde(default, skip_serializing_if = "is_false")]
        pub disabled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connection_rate: Option<Rate>,
    }

    /// `num` requests (or connections) per `interval`.
    pub struct Rate {
        #[serde(default)]
        pub num: u32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub interval: String,
    }

    /// The answer to a limited request.
    pub struct OnRateLimit {
        /// Defaults to 429.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub headers: Option<RateLimitHeaders>,
    }

    pub struct RateLimitHeaders {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add: Vec<HeaderValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub set: Vec<HeaderValue>,
    }

    /// MeshFaultInjection's `default`: HTTP faults, applied in order.
    pub struct FaultInjectionConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub http: Vec<HttpFault>,
    }

    pub struct HttpFault {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub abort: Option<FaultAbort>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub delay: Option<FaultDelay>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_bandwidth: Option<FaultBandwidth>,
    }

    pub struct FaultAbort {
        #[serde(default)]
        pub http_status: u32,
        /// 0 to 100, a number or a string such as `"2.5"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percentage: Option<IntOrString>,
    }

    pub struct FaultDelay {
        /// A duration, e.g. `5s`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percentage: Option<IntOrString>,
    }

    pub struct FaultBandwidth {
        /// A rate such as `50Mbps`, `100kbps` or `1gbps`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub limit: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percentage: Option<IntOrString>,
    }

    /// MeshAccessLog's `default`: where each request's or connection's record goes.
    pub struct AccessLogConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub backends: Vec<AccessLogBackend>,
    }

    pub struct AccessLogBackend {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<FileBackend>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tcp: Option<TcpBackend>,
        /// Kept as written so Kuma documents read back whole; refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub otel_logs: Option<serde_json::Value>,
    }

    pub struct FileBackend {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub format: Option<LogFormat>,
    }

    pub struct TcpBackend {
        /// `host:port` receiving one record a line.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub format: Option<LogFormat>,
    }

    pub struct LogFormat {
        #[serde(rename = "type", default, skip_serializing_if = "LogFormatType::is_unset")]
        pub format_type: LogFormatType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub plain: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub json: Vec<JsonField>,
        /// Empty values print as `""` (plain) or are left out (JSON) instead of `-` or null.
        #[serde(default, skip_serializing_if = "is_false")]
        pub omit_empty_values: bool,
    }

    pub struct JsonField {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub key: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }
}

string_enum! {
    LogFormatType {
        Plain = "Plain",
        Json = "Json",
    }
}

impl IntOrString {
    /// The value as a percentage from 0 to 100, if it is one.
    pub fn percent(&self) -> Option<f64> {
        let p = match self {
            IntOrString::Int(n) => *n as f64,
            IntOrString::String(s) => s.trim().parse::<f64>().ok()?,
        };
        (0.0..=100.0).contains(&p).then_some(p)
    }
}

impl FaultBandwidth {
    /// The limit in KiB per second, Envoy's unit, if it is a whole number of kbps, Mbps or
    /// Gbps (bits, decimal prefixes) of at least 1 KiB/s.
    pub fn kib_per_second(&self) -> Option<u64> {
        let split = self.limit.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = self.limit.split_at(split);
        let number: u64 = number.parse().ok()?;
        let bits_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
            "kbps" => 1_000,
            "mbps" => 1_000_000,
            "gbps" => 1_000_000_000,
            _ => return None,
        };
        let bytes = number.checked_mul(bits_per_unit)? / 8;
        Some((bytes + 512) / 1024).filter(|k| *k > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_in_kib_per_second() {
        let kib = |limit: &str| {
            FaultBandwidth {
                limit: limit.into(),
                percentage: None,
            }
            .kib_per_second()
        };
        assert_eq!(kib("50Mbps"), Some(6104));
        assert_eq!(kib("100kbps"), Some(12));
        assert_eq!(kib("1gbps"), Some(122_070));
        assert_eq!(kib("9kbps"), Some(1));
        assert_eq!(kib("4kbps"), None);
        assert_eq!(kib("50MB/s"), None);
        assert_eq!(kib("Mbps"), None);
    }
}
