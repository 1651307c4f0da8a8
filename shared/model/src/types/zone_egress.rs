//! `ZoneEgress`: a zone's exit point for cross-zone (`local` mode) and external traffic.

use super::{AdminConf, is_zero};

model! {
    pub struct ZoneEgressSpec {
        /// Set by the control plane to the zone the egress runs in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub zone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub networking: Option<ZoneEgressNetworking>,
    }

    pub struct ZoneEgressNetworking {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub address: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub admin: Option<AdminConf>,
        /// Atoll: where an egress run by `atoll-dp` serves its Envoy's statistics to
        /// Prometheus, on `address`; MADS lists it as service `zone-egress`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub prometheus: Option<EgressPrometheus>,
    }

    pub struct EgressPrometheus {
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        /// Default `/metrics`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
    }
}

impl EgressPrometheus {
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/metrics")
    }
}
