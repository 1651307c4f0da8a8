//! Kuma's merge of policy configurations: later wins field by field; objects merge
//! recursively; lists and scalars are replaced whole.

use serde_json::Value;

/// Merges `over` into `base`.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_wins_field_by_field_and_lists_are_replaced() {
        let mut base = json!({"idleTimeout": "1h", "http": {"requestTimeout": "15s", "streamIdleTimeout": "30m"}, "retryOn": ["5xx", "reset"]});
        merge(
            &mut base,
            &json!({"http": {"requestTimeout": "2s"}, "retryOn": ["gateway-error"]}),
        );
        assert_eq!(
            base,
            json!({"idleTimeout": "1h", "http": {"requestTimeout": "2s", "streamIdleTimeout": "30m"}, "retryOn": ["gateway-error"]})
        );
    }
}
