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
    /// W3C `traceparent` of the operation that made the last change, when traces are exported:
    /// kept by the store with the change and carried by KDS, so a change's trace continues in
    /// every process it reaches. Not part of the document users read or write.
    #[cfg_attr(any(test, feature = "arbitrary"), proptest(value = "None"))]
    pub trace: Option<String>,
}

/// Labels the control planes set on synced copies (SPEC.md, "Resources").
pub mod labels {
    pub const ORIGIN: &str = "kuma.io/origin";
    pub const ZONE: &str = "kuma.io/zone";
}
