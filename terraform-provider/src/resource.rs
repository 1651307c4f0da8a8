//! The generic resource: one implementation for every API type, parameterised by [`Kind`].
//! State holds what the user wrote; the private state remembers the API's version (sent as
//! `If-Match`) and the document the API answered, so a read shows drift only when the API's
//! document changed since, not because the API spells a default differently.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::client::{ApiError, Client, Versioned};
use crate::diag;
use crate::kinds::{FieldType, Kind};
use crate::tfplugin6::Diagnostic;
use crate::value::Value;

/// What the provider keeps between runs beside the state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Private {
    pub version: Option<u64>,
    /// The API's fields (labels and the kind's fields) as last read or written.
    pub seen: Option<Json>,
}

impl Private {
    pub fn decode(bytes: &[u8]) -> Private {
        let json: Json = serde_json::from_slice(bytes).unwrap_or(Json::Null);
        Private {
            version: json["version"].as_u64(),
            seen: json.get("seen").cloned(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        json!({"version": self.version, "seen": self.seen})
            .to_string()
            .into_bytes()
    }

    fn of(kind: &Kind, versioned: &Versioned) -> Private {
        Private {
            version: versioned.version,
            seen: Some(api_fields(kind, &versioned.document)),
        }
    }
}

pub fn mesh_of<'a>(kind: &Kind, state: &'a Value) -> Option<&'a str> {
    if kind.in_mesh {
        state.get("mesh").as_str()
    } else {
        None
    }
}

pub fn path_of(kind: &Kind, state: &Value) -> String {
    kind.path(
        mesh_of(kind, state),
        state.get("name").as_str().unwrap_or_default(),
    )
}

/// The API document for a configuration or state.
pub fn document(kind: &Kind, state: &Value) -> Json {
    let mut doc = serde_json::Map::new();
    doc.insert("type".into(), kind.api_type.into());
    doc.insert("name".into(), state.get("name").to_json());
    if let Some(mesh) = mesh_of(kind, state) {
        doc.insert("mesh".into(), mesh.into());
    }
    let labels = state.get("labels");
    if !labels.is_null() {
        doc.insert("labels".into(), labels.to_json());
    }
    for field in kind.fields {
        let value = state.get(field.hcl);
        if !value.is_null() {
            doc.insert(field.json.into(), value.to_json());
        }
    }
    Json::Object(doc)
}

/// The parts of an API document the state mirrors (drift is judged on these).
fn api_fields(kind: &Kind, doc: &Json) -> Json {
    let mut out = serde_json::Map::new();
    let labels = doc
        .get("labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
    out.insert("labels".into(), labels.cloned().unwrap_or(Json::Null));
    for field in kind.fields {
        out.insert(
            field.json.into(),
            doc.get(field.json).cloned().unwrap_or(Json::Null),
        );
    }
    Json::Object(out)
}

/// A state built from the API's document (import, or a read that found drift).
pub fn state_from(kind: &Kind, doc: &Json) -> Value {
    let mut map = BTreeMap::new();
    map.insert("name".into(), Value::from_json(&doc["name"]));
    if kind.in_mesh {
        map.insert("mesh".into(), Value::from_json(&doc["mesh"]));
    }
    let labels = match doc.get("labels") {
        Some(Json::Object(m)) if !m.is_empty() => Value::from_json(&doc["labels"]),
        _ => Value::Null,
    };
    map.insert("labels".into(), labels);
    for field in kind.fields {
        let raw = doc.get(field.json).unwrap_or(&Json::Null);
        let value = match field.ty {
            FieldType::Dynamic => Value::dynamic_from_json(raw),
            FieldType::String | FieldType::Bool => Value::from_json(raw),
        };
        map.insert(field.hcl.into(), value);
    }
    Value::Map(map)
}

pub struct Outcome {
    pub state: Value,
    pub private: Private,
    pub diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    fn new(state: Value, private: Private, diagnostics: Vec<Diagnostic>) -> Outcome {
        Outcome {
            state,
            private,
            diagnostics,
        }
    }
}

pub async fn read(client: &Client, kind: &Kind, state: Value, private: Private) -> Outcome {
    let path = path_of(kind, &state);
    match client.get(&path).await {
        Ok(None) => Outcome::new(Value::Null, Private::default(), Vec::new()),
        Ok(Some(found)) => {
            let now = Private::of(kind, &found);
            let unchanged = private.seen.is_some() && private.seen == now.seen;
            let state = if unchanged {
                state
            } else {
                state_from(kind, &found.document)
            };
            Outcome::new(state, now, Vec::new())
        }
        Err(err) => {
            let diagnostics = diag::from_api(Some(kind), &format!("reading {path}"), &err);
            Outcome::new(state, private, diagnostics)
        }
    }
}

/// Checks the planned document with the API (`?dryRun=true`): an invalid spec fails the plan
/// with the API's field path and message.
pub async fn validate(client: &Client, kind: &Kind, planned: &Value) -> Vec<Diagnostic> {
    if !planned.is_known() {
        return Vec::new();
    }
    let path = path_of(kind, planned);
    match client.validate(&path, &document(kind, planned)).await {
        Ok(_) => Vec::new(),
        Err(err @ ApiError::Status { status: 400, .. }) => {
            diag::from_api(Some(kind), &format!("invalid {}", kind.api_type), &err)
        }
        // The API may not be up yet (the same run deploys it): apply validates anyway.
        Err(err) => vec![diag::warning(
            format!("{} not validated at plan time", kind.api_type),
            err.to_string(),
        )],
    }
}

pub async fn create(client: &Client, kind: &Kind, planned: Value) -> Outcome {
    let path = path_of(kind, &planned);
    let summary = format!("creating {path}");
    match client.get(&path).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            let import_id = match mesh_of(kind, &planned) {
                Some(mesh) => format!(
                    "{mesh}/{}",
                    planned.get("name").as_str().unwrap_or_default()
                ),
                None => planned.get("name").as_str().unwrap_or_default().to_string(),
            };
            return Outcome::new(
                Value::Null,
                Private::default(),
                vec![diag::error(
                    summary,
                    format!(
                        "{} already exists; bring it under management with `terraform import {}.<name> {import_id}`",
                        kind.api_type, kind.type_name
                    ),
                )],
            );
        }
        Err(err) => {
            return Outcome::new(
                Value::Null,
                Private::default(),
                diag::from_api(Some(kind), &summary, &err),
            );
        }
    }
    write(
        client,
        kind,
        planned,
        None,
        Value::Null,
        Private::default(),
        &summary,
    )
    .await
}

pub async fn update(
    client: &Client,
    kind: &Kind,
    prior: Value,
    planned: Value,
    private: Private,
) -> Outcome {
    let path = path_of(kind, &planned);
    let summary = format!("updating {path}");
    let version = private.version;
    write(client, kind, planned, version, prior, private, &summary).await
}

async fn write(
    client: &Client,
    kind: &Kind,
    planned: Value,
    if_match: Option<u64>,
    prior: Value,
    prior_private: Private,
    summary: &str,
) -> Outcome {
    let path = path_of(kind, &planned);
    match client.put(&path, &document(kind, &planned), if_match).await {
        Ok(written) => Outcome::new(planned, Private::of(kind, &written), Vec::new()),
        Err(err) => Outcome::new(
            prior,
            prior_private,
            diag::from_api(Some(kind), summary, &err),
        ),
    }
}

pub async fn delete(client: &Client, kind: &Kind, prior: Value, private: Private) -> Outcome {
    let path = path_of(kind, &prior);
    match client.delete(&path, private.version).await {
        Ok(()) => Outcome::new(Value::Null, Private::default(), Vec::new()),
        Err(err) => {
            let diagnostics = diag::from_api(Some(kind), &format!("deleting {path}"), &err);
            Outcome::new(prior, private, diagnostics)
        }
    }
}

/// `terraform import`: `NAME` for global-scoped types, `MESH/NAME` for mesh-scoped ones.
pub async fn import(
    client: &Client,
    kind: &Kind,
    id: &str,
) -> Result<(Value, Private), Vec<Diagnostic>> {
    let (mesh, name) = match (kind.in_mesh, id.split_once('/')) {
        (true, Some((mesh, name))) => (Some(mesh), name),
        (true, None) => {
            return Err(vec![diag::error(
                format!("importing {}", kind.type_name),
                format!("{id:?}: a {} is imported as MESH/NAME", kind.api_type),
            )]);
        }
        (false, _) => (None, id),
    };
    let path = kind.path(mesh, name);
    let summary = format!("importing {path}");
    match client.get(&path).await {
        Ok(Some(found)) => Ok((state_from(kind, &found.document), Private::of(kind, &found))),
        Ok(None) => Err(vec![diag::error(
            summary,
            format!("{} {id:?} does not exist", kind.api_type),
        )]),
        Err(err) => Err(diag::from_api(Some(kind), &summary, &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_built_from_a_document_gives_the_document_back() {
        let kind = crate::kinds::find("atoll_mesh_gateway").unwrap();
        let doc = json!({
            "type": "MeshGateway", "name": "edge", "mesh": "demo",
            "labels": {"team": "web"},
            "selectors": [{"match": {"kuma.io/service": "edge"}}],
            "conf": {"listeners": [{"port": 8080, "protocol": "HTTP"}]},
        });
        let state = state_from(kind, &doc);
        assert_eq!(document(kind, &state), doc);
        assert_eq!(path_of(kind, &state), "/meshes/demo/meshgateways/edge");
    }

    #[test]
    fn private_state_survives_its_encoding() {
        let private = Private {
            version: Some(7),
            seen: Some(json!({"spec": {"a": 1}})),
        };
        assert_eq!(Private::decode(&private.encode()), private);
        assert_eq!(Private::decode(b"garbage"), Private::default());
    }
}
