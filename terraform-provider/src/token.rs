//! `atoll_dataplane_token`: a token issued once. Tokens are not stored by the global, so
//! there is nothing to read back or delete: any change of input issues a new one.

use serde_json::{Map, Value as Json};

use crate::client::Client;
use crate::diag;
use crate::tfplugin6::{AttributePath, Diagnostic};
use crate::value::Value;

const INPUTS: [&str; 5] = ["mesh", "name", "type", "tags", "valid_for"];

pub fn plan(prior: &Value, mut proposed: Value) -> (Value, Vec<AttributePath>) {
    let mut replace = Vec::new();
    if !prior.is_null() {
        for input in INPUTS {
            if prior.get(input) != proposed.get(input) {
                replace.push(crate::provider::path_to(input));
            }
        }
    }
    if (prior.is_null() || !replace.is_empty())
        && let Value::Map(map) = &mut proposed
    {
        map.insert("token".into(), Value::Unknown);
    }
    (proposed, replace)
}

pub async fn create(client: &Client, mut planned: Value) -> Result<Value, Vec<Diagnostic>> {
    let mut body = Map::new();
    for (attr, field) in [
        ("mesh", "mesh"),
        ("name", "name"),
        ("type", "type"),
        ("tags", "tags"),
        ("valid_for", "validFor"),
    ] {
        let value = planned.get(attr);
        if !value.is_null() {
            body.insert(field.into(), value.to_json());
        }
    }
    let token = client
        .post("/tokens/dataplane", &Json::Object(body))
        .await
        .map_err(|err| diag::from_api(None, "issuing a dataplane token", &err))?;
    let token = match token {
        Json::String(text) => text.trim().to_string(),
        other => other["token"].as_str().unwrap_or_default().to_string(),
    };
    if let Value::Map(map) = &mut planned {
        map.insert("token".into(), Value::String(token));
    }
    Ok(planned)
}
