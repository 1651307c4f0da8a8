//! Property: encoding any resource and decoding it again gives the same resource, through the
//! JSON value, JSON text and YAML text.

use proptest::prelude::*;

use crate::arbitrary::resource;
use crate::codec::decode_stored as decode;
use crate::{encode_value, to_json, to_yaml};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn value_round_trip_is_identity(r in resource()) {
        prop_assert_eq!(decode(encode_value(&r)).map_err(|e| e.violations), Ok(r));
    }

    #[test]
    fn yaml_round_trip_is_identity(r in resource()) {
        let text = to_yaml(&r);
        let value: serde_json::Value = serde_norway::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(decode(value).map_err(|e| e.violations), Ok(r), "yaml was:\n{}", text);
    }

    #[test]
    fn json_round_trip_is_identity(r in resource()) {
        let value: serde_json::Value = serde_json::from_str(&to_json(&r)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode(value).map_err(|e| e.violations), Ok(r));
    }
}
