//! The configuration of MeshLoadBalancingStrategy (Kuma 2.14's field names): which instances
//! of a destination a proxy prefers (its own zone, then instances sharing its tags, then
//! other zones in a declared order) and how it picks among them.

use super::IntOrString;
use crate::enums::string_enum;

model! {
    /// MeshLoadBalancingStrategy's `default`.
    pub struct LoadBalancingConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub locality_awareness: Option<LocalityAwareness>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub load_balancer: Option<LoadBalancer>,
    }

    /// With the policy present, this zone's instances come first unless `disabled`; other
    /// zones follow in the order `crossZone` gives.
    pub struct LocalityAwareness {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local_zone: Option<LocalZone>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cross_zone: Option<CrossZone>,
    }

    pub struct LocalZone {
        /// Tags of the calling proxy; instances sharing their value get more of its traffic.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub affinity_tags: Vec<AffinityTag>,
    }

    pub struct AffinityTag {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub key: String,
        /// Relative share; when no tag has one, 90% goes to the first tag's match, 9% to the
        /// next, and so on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub weight: Option<u32>,
    }

    pub struct CrossZone {
        /// Rules in order; each one that applies to this zone adds the next tier of zones.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub failover: Vec<Failover>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failover_threshold: Option<FailoverThreshold>,
    }

    pub struct Failover {
        /// The calling zones the rule applies to; absent: every zone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<FailoverFrom>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub to: Option<FailoverTo>,
    }

    pub struct FailoverFrom {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub zones: Vec<String>,
    }

    pub struct FailoverTo {
        #[serde(rename = "type", default, skip_serializing_if = "FailoverType::is_unset")]
        pub to_type: FailoverType,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub zones: Vec<String>,
    }

    /// Below this percentage of healthy instances in a tier, traffic spills to the next.
    pub struct FailoverThreshold {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percentage: Option<IntOrString>,
    }

    pub struct LoadBalancer {
        #[serde(rename = "type", default, skip_serializing_if = "LoadBalancerType::is_unset")]
        pub lb_type: LoadBalancerType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub least_request: Option<LeastRequest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ring_hash: Option<RingHash>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub maglev: Option<Maglev>,
    }

    pub struct LeastRequest {
        /// Instances compared per pick (Envoy's default: 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub choice_count: Option<u32>,
        /// How strongly active requests weigh against an instance's weight: a number or a
        /// decimal string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub active_request_bias: Option<IntOrString>,
    }

    pub struct RingHash {
        #[serde(default, skip_serializing_if = "HashFunction::is_unset")]
        pub hash_function: HashFunction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_ring_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_ring_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub hash_policies: Vec<HashPolicy>,
    }

    pub struct Maglev {
        /// A prime (Envoy's default: 65537).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub table_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub hash_policies: Vec<HashPolicy>,
    }

    /// What a consistent hash of a request is computed from.
    pub struct HashPolicy {
        #[serde(rename = "type", default, skip_serializing_if = "HashPolicyType::is_unset")]
        pub policy_type: HashPolicyType,
        /// Stop at this policy when it produced a hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub terminal: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub header: Option<HashName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cookie: Option<HashCookie>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connection: Option<HashConnection>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub query_parameter: Option<HashName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filter_state: Option<HashFilterState>,
    }

    pub struct HashName {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
    }

    pub struct HashCookie {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        /// When set, Envoy issues the cookie to clients that lack it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ttl: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
    }

    pub struct HashConnection {
        #[serde(rename = "sourceIP", default, skip_serializing_if = "Option::is_none")]
        pub source_ip: Option<bool>,
    }

    pub struct HashFilterState {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub key: String,
    }
}

string_enum! {
    FailoverType {
        /// No other zone.
        None = "None",
        Only = "Only",
        Any = "Any",
        AnyExcept = "AnyExcept",
    }
}

string_enum! {
    LoadBalancerType {
        RoundRobin = "RoundRobin",
        LeastRequest = "LeastRequest",
        RingHash = "RingHash",
        Random = "Random",
        Maglev = "Maglev",
    }
}

string_enum! {
    HashFunction {
        XxHash = "XXHash",
        MurmurHash2 = "MurmurHash2",
    }
}

string_enum! {
    HashPolicyType {
        Header = "Header",
        Cookie = "Cookie",
        Connection = "Connection",
        SourceIp = "SourceIP",
        QueryParameter = "QueryParameter",
        FilterState = "FilterState",
    }
}

impl LoadBalancer {
    /// The hash policies of the consistent-hash balancer chosen, if one is.
    pub fn hash_policies(&self) -> &[HashPolicy] {
        match self.lb_type {
            LoadBalancerType::RingHash => self
                .ring_hash
                .as_ref()
                .map(|r| r.hash_policies.as_slice())
                .unwrap_or_default(),
            LoadBalancerType::Maglev => self
                .maglev
                .as_ref()
                .map(|m| m.hash_policies.as_slice())
                .unwrap_or_default(),
            _ => &[],
        }
    }
}
