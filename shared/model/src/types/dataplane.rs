//! `Dataplane`: one proxy's network identity — its inbounds, outbounds, or gateway role.

use std::collections::BTreeMap;

use super::{Tags, TargetKind, is_false, is_zero};
use crate::enums::string_enum;

model! {
    pub struct DataplaneSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub networking: Option<DataplaneNetworking>,
    }

    pub struct DataplaneNetworking {
        /// The address other proxies reach this one at.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub advertised_address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub admin: Option<AdminConf>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub inbound: Vec<Inbound>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub outbound: Vec<Outbound>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub gateway: Option<DataplaneGateway>,
    }

    pub struct AdminConf {
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
    }

    pub struct Inbound {
        /// The port the proxy accepts mesh traffic on.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        /// The application's port; defaults to `port`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_port: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub health: Option<Health>,
        #[serde(default, skip_serializing_if = "InboundState::is_unset")]
        pub state: InboundState,
    }

    pub struct Health {
        #[serde(default, skip_serializing_if = "is_false")]
        pub ready: bool,
    }

    pub struct Outbound {
        /// The local port the application connects to.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub address: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub backend_ref: Option<OutboundBackendRef>,
    }

    pub struct OutboundBackendRef {
        #[serde(default, skip_serializing_if = "TargetKind::is_unset")]
        pub kind: TargetKind,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub labels: Tags,
    }

    pub struct DataplaneGateway {
        /// Defaults to `DELEGATED`; `BUILTIN` makes this proxy a MeshGateway.
        #[serde(rename = "type", default, skip_serializing_if = "DataplaneGatewayType::is_unset")]
        pub gateway_type: DataplaneGatewayType,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
    }
}

string_enum! {
    InboundState {
        Ready = "Ready",
        NotReady = "NotReady",
        Ignored = "Ignored",
    }
}

string_enum! {
    DataplaneGatewayType {
        Delegated = "DELEGATED",
        Builtin = "BUILTIN",
    }
}

/// Envoy's admin port when a Dataplane or zone egress names none (Kuma's default).
pub const DEFAULT_ADMIN_PORT: u32 = 9901;

impl AdminConf {
    /// The admin port `admin` names, or the default when it names none (or 0).
    pub fn port_of(admin: Option<&AdminConf>) -> u32 {
        admin
            .map(|a| a.port)
            .filter(|p| *p != 0)
            .unwrap_or(DEFAULT_ADMIN_PORT)
    }
}
