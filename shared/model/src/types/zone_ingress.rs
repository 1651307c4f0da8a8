//! `ZoneIngress`: a zone's entry point for cross-zone traffic and the services behind it.

use std::collections::BTreeMap;

use super::{AdminConf, Tags, is_false, is_zero};

model! {
    pub struct ZoneIngressSpec {
        /// Set by the control plane to the zone the ingress runs in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub zone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub networking: Option<ZoneIngressNetworking>,
        /// Computed by the zone control plane: which services this ingress can reach.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub available_services: Vec<AvailableService>,
    }

    pub struct ZoneIngressNetworking {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub address: String,
        /// What other zones dial; defaults to `address`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub advertised_address: Option<String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub advertised_port: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub admin: Option<AdminConf>,
    }

    pub struct AvailableService {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub instances: u32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub mesh: String,
        #[serde(default, skip_serializing_if = "is_false")]
        pub external_service: bool,
        /// The instances' own addresses, `ip:port` (Atoll addition): what clients in mode
        /// `none` connect to directly on a flat network.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub endpoints: Vec<String>,
    }
}
