//! Generators for property tests and fuzzing (feature `arbitrary`).

use proptest::prelude::*;

use crate::{Meta, Resource, Spec};

/// Small JSON values without floats (which need not survive a YAML round trip bit for bit).
pub fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".*", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An optional JSON value; `null` is excluded since an explicit null reads back as absent.
pub fn opt_json() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop::option::of(json().prop_filter("not null", |v| !v.is_null()))
}

/// Any resource; `status` only where the type's layout has one.
pub fn resource() -> impl Strategy<Value = Resource> {
    (any::<Meta>(), any::<Spec>(), opt_json()).prop_map(|(meta, spec, status)| {
        let status = match spec.kind().layout() {
            crate::Layout::Spec => status,
            crate::Layout::Inline => None,
        };
        Resource { meta, spec, status }
    })
}
