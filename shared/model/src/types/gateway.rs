//! `MeshGateway`: the listeners of a built-in gateway and the data planes it binds to.

use std::collections::BTreeMap;

use super::{DataSource, Selector, Tags, is_false, is_zero};
use crate::enums::string_enum;

model! {
    pub struct MeshGatewaySpec {
        /// Which builtin-gateway Dataplanes this gateway configures.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub selectors: Vec<Selector>,
        /// Tags common to all listeners; must not set `kuma.io/service`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub conf: Option<GatewayConf>,
    }

    pub struct GatewayConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub listeners: Vec<GatewayListener>,
    }

    pub struct GatewayListener {
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        #[serde(default, skip_serializing_if = "GatewayProtocol::is_unset")]
        pub protocol: GatewayProtocol,
        /// Exact name, leftmost-label wildcard (`*.example.com`), or empty / `*` for any.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub hostname: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls: Option<GatewayTls>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub cross_mesh: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ListenerResources>,
    }

    pub struct GatewayTls {
        #[serde(default, skip_serializing_if = "TlsMode::is_unset")]
        pub mode: TlsMode,
        /// Each entry holds a private key and its certificate chain, server certificate first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub certificates: Vec<DataSource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub options: Option<TlsOptions>,
    }

    /// Reserved by Kuma's schema; it has no fields yet.
    pub struct TlsOptions {}

    pub struct ListenerResources {
        /// Maximum concurrent connections on the listener's port; 0 means no limit.
        #[serde(alias = "connection_limit", default, skip_serializing_if = "is_zero")]
        pub connection_limit: u32,
    }
}

string_enum! {
    GatewayProtocol {
        /// Kuma's zero value: it is not a usable protocol.
        None = "NONE",
        Tcp = "TCP",
        Tls = "TLS",
        Http = "HTTP",
        Https = "HTTPS",
    }
}

string_enum! {
    TlsMode {
        /// Kuma's zero value: it is not a usable mode.
        None = "NONE",
        Terminate = "TERMINATE",
        Passthrough = "PASSTHROUGH",
    }
}

impl GatewayListener {
    /// The hostname the listener accepts, with "any" spelled `*`.
    pub fn effective_hostname(&self) -> &str {
        if self.hostname.is_empty() {
            "*"
        } else {
            &self.hostname
        }
    }

    pub fn connection_limit(&self) -> u32 {
        self.resources.as_ref().map_or(0, |r| r.connection_limit)
    }
}
