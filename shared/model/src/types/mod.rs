//! The content of each resource type, field for field as Kuma's universal format spells it.
//!
//! Fields that a document may leave out default to empty values and are skipped when empty on
//! output, so that serialising a parsed document and parsing it again is the identity.
//! Nothing here judges values: that is `validate`'s job, so every problem can be reported at once.

/// Declares model structs with the derives and serde conventions every type shares.
///
/// Every field reads an explicit `null` as its default: Kuma (Go's JSON decoding) treats
/// `field: null` as unset, and YAML writes an empty value (`field:`) as null. Doing it per
/// field rather than by dropping nulls from the document leaves free-form values
/// (`extension.config`) and map entries (a tag whose value is null stays an error) untouched.
macro_rules! model {
    ($($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)?
    })+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(deserialize_with = "crate::types::null_as_default")]
                pub $field: $ty,
            )*
        }
    )+};
}

/// Deserialises a field, reading `null` as the field's default.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    let value: Option<T> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or_default())
}

pub mod common;
pub mod dataplane;
pub mod dataplane_insight;
pub mod external_service;
pub mod gateway;
pub mod hostname_generator;
pub mod http_route;
pub mod mesh;
pub mod policy;
pub mod policy_balancing;
pub mod policy_limits;
pub mod policy_metric;
pub mod policy_resilience;
pub mod secret;
pub mod tcp_route;
pub mod zone;
pub mod zone_egress;
pub mod zone_ingress;
pub mod zone_insight;

pub use common::*;
pub use dataplane::*;
pub use dataplane_insight::*;
pub use external_service::*;
pub use gateway::*;
pub use hostname_generator::*;
pub use http_route::*;
pub use mesh::*;
pub use policy::*;
pub use policy_balancing::*;
pub use policy_limits::*;
pub use policy_metric::*;
pub use policy_resilience::*;
pub use secret::*;
pub use tcp_route::*;
pub use zone::*;
pub use zone_egress::*;
pub use zone_ingress::*;
pub use zone_insight::*;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}
