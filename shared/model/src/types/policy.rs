//! Policies in Kuma 2.x's shape: a top-level `targetRef` choosing the proxies, and `to[]`
//! (outbound), `from[]` (inbound) or `rules[]` entries each with a `default` configuration of
//! the policy's own type. One macro declares each policy type so they all share that shape.

use super::TargetRef;
use crate::enums::string_enum;

/// Declares a policy's spec, its `to`/`from` entries and its `rules` entries around `$conf`.
macro_rules! policy {
    ($(#[$meta:meta])* $spec:ident, $item:ident, $rule:ident, $conf:ty) => {
        policy!($(#[$meta])* $spec, $item, $rule, $conf, $conf);
    };
    ($(#[$meta:meta])* $spec:ident, $item:ident, $rule:ident, $conf:ty, $rule_conf:ty) => {
        model! {
            $(#[$meta])*
            pub struct $spec {
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub target_ref: Option<TargetRef>,
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                pub to: Vec<$item>,
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                pub from: Vec<$item>,
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                pub rules: Vec<$rule>,
            }

            /// A `to[]` or `from[]` entry: whom it concerns and the configuration.
            pub struct $item {
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub target_ref: Option<TargetRef>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub default: Option<$conf>,
            }

            /// A `rules[]` entry (Kuma's newer shape for inbound policies): for every caller.
            pub struct $rule {
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub default: Option<$rule_conf>,
            }
        }
    };
}

policy!(
    /// MeshTrafficPermission: who may call the proxies chosen by `targetRef`, by caller
    /// service (`from[]`) or by SPIFFE identity (`rules[]`).
    MeshTrafficPermissionSpec,
    TrafficPermissionItem,
    TrafficPermissionRule,
    TrafficPermissionConf,
    TrafficPermissionRuleConf
);

policy!(
    /// MeshTimeout: connection, idle and HTTP timeouts, outbound (`to[]`) and inbound (`from[]`).
    MeshTimeoutSpec,
    TimeoutItem,
    TimeoutRule,
    TimeoutConf
);

policy!(
    /// MeshRetry: how outbound requests and connections are retried (`to[]`).
    MeshRetrySpec,
    RetryItem,
    RetryRule,
    RetryConf
);

policy!(
    /// MeshCircuitBreaker: connection limits and outlier detection on the clusters of the
    /// destinations (`to[]`).
    MeshCircuitBreakerSpec,
    CircuitBreakerItem,
    CircuitBreakerRule,
    super::CircuitBreakerConf
);

policy!(
    /// MeshHealthCheck: active health checks of the destinations' instances (`to[]`).
    MeshHealthCheckSpec,
    HealthCheckItem,
    HealthCheckRule,
    super::HealthCheckConf
);

policy!(
    /// MeshRateLimit: local rate limits on the inbounds of the proxies chosen (`from[]`).
    MeshRateLimitSpec,
    RateLimitItem,
    RateLimitRule,
    super::RateLimitConf
);

policy!(
    /// MeshFaultInjection: HTTP faults injected on the inbounds (`from[]`).
    MeshFaultInjectionSpec,
    FaultInjectionItem,
    FaultInjectionRule,
    super::FaultInjectionConf
);

policy!(
    /// MeshAccessLog: access logs of outbound (`to[]`) and inbound (`from[]`) traffic.
    MeshAccessLogSpec,
    AccessLogItem,
    AccessLogRule,
    super::AccessLogConf
);

policy!(
    /// MeshLoadBalancingStrategy: locality-aware balancing and the balancer of the
    /// destinations (`to[]`).
    MeshLoadBalancingStrategySpec,
    LoadBalancingItem,
    LoadBalancingRule,
    super::LoadBalancingConf
);

model! {
    pub struct TrafficPermissionConf {
        #[serde(default, skip_serializing_if = "PermissionAction::is_unset")]
        pub action: PermissionAction,
    }

    /// A `rules[]` entry of MeshTrafficPermission: callers by SPIFFE identity. A caller any
    /// `deny` matches is refused whatever else allows it; one that `allow` or
    /// `allowWithShadowDeny` matches is let in; anyone else is refused.
    pub struct TrafficPermissionRuleConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub deny: Vec<IdentityMatcher>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub allow: Vec<IdentityMatcher>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub allow_with_shadow_deny: Vec<IdentityMatcher>,
    }

    pub struct IdentityMatcher {
        #[serde(rename = "spiffeID", default, skip_serializing_if = "Option::is_none")]
        pub spiffe_id: Option<SpiffeIdMatch>,
    }

    pub struct SpiffeIdMatch {
        #[serde(rename = "type", default, skip_serializing_if = "SpiffeIdMatchType::is_unset")]
        pub match_type: SpiffeIdMatchType,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }

    pub struct TimeoutConf {
        /// Time to establish a connection upstream, e.g. `5s`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connection_timeout: Option<String>,
        /// A connection with no traffic for this long is closed, e.g. `1h`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub idle_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<HttpTimeouts>,
    }

    pub struct HttpTimeouts {
        /// The whole request, until the response is complete.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_timeout: Option<String>,
        /// A stream with no activity for this long is reset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stream_idle_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_stream_duration: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_connection_duration: Option<String>,
        /// Time to receive the request's headers (inbound).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_headers_timeout: Option<String>,
    }

    pub struct RetryConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tcp: Option<TcpRetry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<HttpRetry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grpc: Option<HttpRetry>,
    }

    pub struct TcpRetry {
        /// Connection attempts in all, the first included.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_connect_attempt: Option<u32>,
    }

    pub struct HttpRetry {
        /// Retries after the first attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub num_retries: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub per_try_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub back_off: Option<BackOff>,
        /// Envoy retry conditions (`5xx`, `gateway-error`, `reset`, `connect-failure`, …; for
        /// gRPC `cancelled`, `deadline-exceeded`, …) or HTTP status codes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub retry_on: Vec<String>,
    }

    pub struct BackOff {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub base_interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_interval: Option<String>,
    }
}

string_enum! {
    SpiffeIdMatchType {
        Exact = "Exact",
        Prefix = "Prefix",
    }
}

string_enum! {
    PermissionAction {
        Allow = "Allow",
        Deny = "Deny",
        /// Allowed, with what a Deny would refuse logged (Envoy's shadow rules).
        AllowWithShadowDeny = "AllowWithShadowDeny",
    }
}

/// Any policy seen without its type: the top-level target and each entry's configuration as
/// JSON, which is what targeting and merging work on (merging is field by field, the same for
/// every policy type).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyView {
    pub target_ref: Option<TargetRef>,
    pub to: Vec<(Option<TargetRef>, serde_json::Value)>,
    pub from: Vec<(Option<TargetRef>, serde_json::Value)>,
    pub rules: Vec<serde_json::Value>,
    /// The one configuration of a policy for the whole proxy (MeshMetric's `default`).
    pub proxy: Option<serde_json::Value>,
}

/// Builds a [`PolicyView`] from a typed policy spec.
macro_rules! view {
    ($spec:expr) => {{
        let spec = $spec;
        fn conf<T: serde::Serialize>(c: &Option<T>) -> serde_json::Value {
            c.as_ref()
                .and_then(|c| serde_json::to_value(c).ok())
                .unwrap_or(serde_json::Value::Object(Default::default()))
        }
        PolicyView {
            target_ref: spec.target_ref.clone(),
            to: spec
                .to
                .iter()
                .map(|i| (i.target_ref.clone(), conf(&i.default)))
                .collect(),
            from: spec
                .from
                .iter()
                .map(|i| (i.target_ref.clone(), conf(&i.default)))
                .collect(),
            rules: spec.rules.iter().map(|r| conf(&r.default)).collect(),
            proxy: None,
        }
    }};
}

impl crate::Spec {
    /// The policy this spec is, if it is one.
    pub fn policy(&self) -> Option<PolicyView> {
        match self {
            crate::Spec::MeshTrafficPermission(s) => Some(view!(s)),
            crate::Spec::MeshTimeout(s) => Some(view!(s)),
            crate::Spec::MeshRetry(s) => Some(view!(s)),
            crate::Spec::MeshCircuitBreaker(s) => Some(view!(s)),
            crate::Spec::MeshHealthCheck(s) => Some(view!(s)),
            crate::Spec::MeshRateLimit(s) => Some(view!(s)),
            crate::Spec::MeshFaultInjection(s) => Some(view!(s)),
            crate::Spec::MeshAccessLog(s) => Some(view!(s)),
            crate::Spec::MeshLoadBalancingStrategy(s) => Some(view!(s)),
            crate::Spec::MeshMetric(s) => Some(PolicyView {
                target_ref: s.target_ref.clone(),
                proxy: s
                    .default
                    .as_ref()
                    .and_then(|d| serde_json::to_value(d).ok()),
                ..Default::default()
            }),
            _ => None,
        }
    }
}
