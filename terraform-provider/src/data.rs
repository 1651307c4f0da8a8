//! The data sources: `atoll_zones` (with online status) and `atoll_mesh`.

use std::collections::BTreeMap;

use crate::client::Client;
use crate::diag;
use crate::resource;
use crate::tfplugin6::Diagnostic;
use crate::value::Value;

pub async fn zones(client: &Client) -> Result<Value, Vec<Diagnostic>> {
    let overview = client
        .get_json("/zones/_overview")
        .await
        .map_err(|err| diag::from_api(None, "reading /zones/_overview", &err))?;
    let zones = overview["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|zone| {
                    let mut map = BTreeMap::new();
                    map.insert("name".into(), Value::from_json(&zone["name"]));
                    map.insert(
                        "enabled".into(),
                        Value::Bool(zone["enabled"].as_bool().unwrap_or(false)),
                    );
                    map.insert(
                        "online".into(),
                        Value::Bool(zone["online"].as_bool().unwrap_or(false)),
                    );
                    Value::Map(map)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Value::Map(BTreeMap::from([(
        "zones".to_string(),
        Value::List(zones),
    )])))
}

pub async fn mesh(client: &Client, config: &Value) -> Result<Value, Vec<Diagnostic>> {
    let name = config.get("name").as_str().unwrap_or_default();
    let kind = crate::kinds::find("atoll_mesh").ok_or_else(Vec::new)?;
    let path = kind.path(None, name);
    match client.get(&path).await {
        Ok(Some(found)) => Ok(resource::state_from(kind, &found.document)),
        Ok(None) => Err(vec![diag::error(
            format!("reading {path}"),
            format!("mesh {name:?} does not exist"),
        )]),
        Err(err) => Err(diag::from_api(Some(kind), &format!("reading {path}"), &err)),
    }
}
