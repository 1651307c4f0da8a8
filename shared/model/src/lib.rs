//! Atoll's resource model.
//!
//! Owns every resource type in Kuma's universal format (the YAML/JSON documents users write),
//! their exact round-trip (de)serialisation, and validation that reports every violation at once
//! with a field path. It is pure: no I/O, no clocks, no async. Storage, sync and Envoy
//! generation live in other crates and take these types as input.
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
mod codec;
pub mod duration;
pub mod enums;
pub mod hostname_template;
mod kind;
mod meta;
pub mod redact;
mod resource;
#[cfg(test)]
mod roundtrip_tests;
pub mod types;
pub mod validate;

pub use codec::{
    DecodeError, Document, assemble_document, content_document, decode_stored, decode_value,
    encode_value, parse_documents, parse_first_document, to_json, to_yaml,
};
pub use kind::{Kind, Layout, Owner, POLICIES, Scope, UnknownKind, with_policies};
pub use meta::{Meta, labels};
pub use resource::{Resource, Spec};
pub use validate::{Path, Violation, validate};
