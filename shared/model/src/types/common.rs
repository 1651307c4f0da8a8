//! Building blocks several resource types share: tags, selectors, data sources, target and
//! backend references.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::enums::string_enum;

/// Kuma tags: `kuma.io/service`, `kuma.io/protocol`, user tags.
pub type Tags = BTreeMap<String, String>;

/// The tag that names a service.
pub const SERVICE_TAG: &str = "kuma.io/service";
/// The tag that names a service's application protocol.
pub const PROTOCOL_TAG: &str = "kuma.io/protocol";

model! {
    /// Matches data planes by tags: all listed tags must be present with these values.
    pub struct Selector {
        #[serde(rename = "match", default, skip_serializing_if = "BTreeMap::is_empty")]
        pub match_tags: Tags,
    }

    /// Where a piece of secret material comes from. Exactly one source must be set.
    pub struct DataSource {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<String>,
        /// Base64-encoded bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inline: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inline_string: Option<String>,
        /// The name of a Secret in the same mesh (or a GlobalSecret for global-scoped users).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret: Option<String>,
    }

    /// A reference from a policy to what it applies to.
    pub struct TargetRef {
        #[serde(default, skip_serializing_if = "TargetKind::is_unset")]
        pub kind: TargetKind,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub mesh: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub labels: Tags,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub section_name: String,
    }

    /// A destination of routed traffic.
    pub struct BackendRef {
        #[serde(default, skip_serializing_if = "TargetKind::is_unset")]
        pub kind: TargetKind,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub mesh: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub tags: Tags,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub labels: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub weight: Option<u32>,
    }

    /// Plug-in configuration: a type name and free-form configuration for it.
    pub struct Extension {
        #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
        pub extension_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub config: Option<serde_json::Value>,
    }
}

string_enum! {
    /// What a `targetRef` or `backendRef` points at.
    TargetKind {
        Mesh = "Mesh",
        MeshSubset = "MeshSubset",
        MeshService = "MeshService",
        MeshServiceSubset = "MeshServiceSubset",
        MeshGateway = "MeshGateway",
        MeshExternalService = "MeshExternalService",
        MeshMultiZoneService = "MeshMultiZoneService",
        Dataplane = "Dataplane",
        MeshHttpRoute = "MeshHTTPRoute",
    }
}

impl DataSource {
    /// The names of the sources that are set, in the order the format lists them.
    pub fn sources_set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.file.is_some() {
            set.push("file");
        }
        if self.inline.is_some() {
            set.push("inline");
        }
        if self.inline_string.is_some() {
            set.push("inlineString");
        }
        if self.secret.is_some() {
            set.push("secret");
        }
        set
    }

    /// The decoded bytes of an `inline` source.
    pub fn inline_bytes(&self) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        self.inline
            .as_ref()
            .map(|text| base64::engine::general_purpose::STANDARD.decode(text))
    }
}

/// A field Kuma accepts either as a number or as a string (e.g. a percentage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum IntOrString {
    Int(i64),
    String(String),
}
