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
    }
}
