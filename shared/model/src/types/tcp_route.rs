//! `MeshTCPRoute`: where TCP connections go, attached to a MeshGateway's listeners or services.

use super::{BackendRef, TargetRef};

model! {
    pub struct MeshTcpRouteSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_ref: Option<TargetRef>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub to: Vec<TcpRouteTo>,
    }

    pub struct TcpRouteTo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_ref: Option<TargetRef>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub rules: Vec<TcpRule>,
    }

    pub struct TcpRule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default: Option<TcpRuleConf>,
    }

    pub struct TcpRuleConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub backend_refs: Vec<BackendRef>,
    }
}
