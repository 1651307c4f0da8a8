//! `HostnameGenerator`: templates that give services (e.g. MeshExternalServices) DNS names.

use std::collections::BTreeMap;

use super::{Extension, Tags};

model! {
    pub struct HostnameGeneratorSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub selector: Option<HostnameSelector>,
        /// A Go-template-style string such as `{{ .DisplayName }}.extsvc.mesh.local`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub template: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub extension: Option<Extension>,
    }

    /// Exactly one of the service kinds is selected.
    pub struct HostnameSelector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mesh_service: Option<LabelSelector>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mesh_external_service: Option<LabelSelector>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mesh_multi_zone_service: Option<LabelSelector>,
    }

    pub struct LabelSelector {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub match_labels: Tags,
    }
}
