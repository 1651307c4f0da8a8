//! What every resource carries besides its content: name, mesh, labels and server timestamps.

use std::collections::BTreeMap;

/// Identity and labels of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Meta {
    pub name: String,
    /// Set for mesh-scoped types, absent for global-scoped ones.
    pub mesh: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, set by the server that stores the resource.
    pub creation_time: Option<String>,
    /// RFC 3339, set by the server that stores the resource.
    pub modification_time: Option<String>,
}

/// Labels the control planes set on synced copies (SPEC.md, "Resources").
pub mod labels {
    pub const ORIGIN: &str = "kuma.io/origin";
    pub const ZONE: &str = "kuma.io/zone";
}
