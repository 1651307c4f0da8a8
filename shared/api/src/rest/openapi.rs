//! The REST API described as an OpenAPI 3 document, served at `/openapi.json`. Built from the
//! same type table the routes use (`Kind::ALL`), so the listed types cannot drift from what the
//! API accepts; a test holds the paths equal to the router's.

use atoll_model::Kind;
use atoll_model::Scope;
use axum::Json;
use serde_json::{Value, json};

/// Every path template the REST router serves, in OpenAPI form.
pub const PATHS: &[&str] = &[
    "/",
    "/openapi.json",
    "/zones/_overview",
    "/zones/{name}/certificate",
    "/tokens/dataplane",
    "/tokens/zone",
    "/tokens/user",
    "/{plural}",
    "/{plural}/{name}",
    "/meshes/{mesh}/{plural}",
    "/meshes/{mesh}/{plural}/{name}",
];

fn plurals(scope: Scope) -> Vec<&'static str> {
    Kind::ALL
        .iter()
        .filter(|k| k.scope() == scope)
        .map(|k| k.plural())
        .collect()
}

fn param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn errors() -> Value {
    json!({
        "400": {"description": "invalid input: `causes` names each field and what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "401": {"description": "no credential where one is needed, or a token that is not valid (the reason is in `details`)"},
        "403": {"description": "the caller's user may not do this (the action and the settings that decide it are named)"},
        "404": {"description": "no such resource"},
        "409": {"description": "version conflict (If-Match)"},
        "503": {"description": "the store is unavailable; retry"}
    })
}

fn resource_ops(scope_params: Vec<Value>) -> Value {
    json!({
        "parameters": scope_params,
        "get": {"summary": "read one resource (YAML with Accept: application/yaml)", "responses": {"200": {"description": "the resource", "headers": {"ETag": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}}, "404": {"description": "no such resource"}}},
        "put": {"summary": "create or replace (JSON, or YAML with Content-Type: application/yaml)", "parameters": [{"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}}, {"name": "dryRun", "in": "query", "required": false, "description": "validate and authorize only; store nothing", "schema": {"type": "boolean"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}, "application/yaml": {"schema": {"$ref": "#/components/schemas/Resource"}}}}, "responses": {"200": {"description": "replaced (or unchanged: see x-atoll-outcome)"}, "201": {"description": "created"}, "400": errors()["400"], "401": errors()["401"], "409": errors()["409"], "503": errors()["503"]}},
        "delete": {"summary": "delete", "responses": {"200": {"description": "deleted"}, "401": errors()["401"], "404": errors()["404"], "503": errors()["503"]}}
    })
}

fn list_op(scope_params: Vec<Value>) -> Value {
    json!({
        "parameters": scope_params,
        "get": {
            "summary": "list, paged and filtered by label",
            "parameters": [
                {"name": "size", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
                {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                {"name": "filter[label]", "in": "query", "description": "`key:value`; repeatable", "schema": {"type": "string"}}
            ],
            "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}, "400": errors()["400"]}
        }
    })
}

fn token_op(what: &str, properties: Value, required: &[&str]) -> Value {
    json!({"post": {
        "summary": format!("issue {what}"),
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": required, "properties": properties, "additionalProperties": false}}}},
        "responses": {"200": {"description": "the token", "content": {"text/plain": {"schema": {"type": "string"}}}}, "400": errors()["400"], "401": errors()["401"], "403": errors()["403"], "503": errors()["503"]}
    }})
}

/// The document.
pub fn document() -> Value {
    let mesh_plurals = json!({"type": "string", "enum": plurals(Scope::Mesh)});
    let all_plurals =
        json!({"type": "string", "enum": Kind::ALL.iter().map(|k| k.plural()).collect::<Vec<_>>()});
    let global_plurals = json!({"type": "string", "enum": plurals(Scope::Global)});
    let name = || param("name", "the resource's name", json!({"type": "string"}));
    let mesh = || param("mesh", "the mesh", json!({"type": "string"}));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Atoll REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kuma-compatible resource API of the Atoll global and zone control planes. Requests carry a user token (Authorization: Bearer); reads of non-secret resources need none, and plain HTTP from localhost acts as the admin unless KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=false. Global-owned types are written on the global, zone-owned types in zones."
        },
        "paths": {
            "/": {"get": {"summary": "version, mode (global or zone) and zone name", "responses": {"200": {"description": "index"}}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/zones/_overview": {"get": {"summary": "every zone with its insight (online, last seen, resources synced)", "responses": {"200": {"description": "zones"}}}},
            "/zones/{name}/certificate": {"parameters": [name()], "post": {"summary": "issue a KDS client certificate for zone `name` (global only; permission to generate zone tokens); with `{\"csr\": PEM}` for the requester's own key", "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"csr": {"type": "string"}}}}}}, "responses": {"200": {"description": "certificate, key (unless a CSR was sent), CA (PEM) and serial"}, "400": errors()["400"], "401": errors()["401"], "403": errors()["403"]}}},
            "/tokens/dataplane": token_op("a data plane token (global or zone)", json!({"mesh": {"type": "string"}, "name": {"type": "string"}, "tags": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}, "type": {"type": "string", "enum": ["dataplane", "gateway", "ingress", "egress"]}, "validFor": {"type": "string"}}), &["mesh"]),
            "/tokens/zone": token_op("a zone token (global only)", json!({"zone": {"type": "string"}, "scope": {"type": "array", "items": {"type": "string", "enum": ["ingress", "egress"]}}, "validFor": {"type": "string"}}), &["zone"]),
            "/tokens/user": token_op("a user token (global only)", json!({"name": {"type": "string"}, "groups": {"type": "array", "items": {"type": "string"}}, "validFor": {"type": "string"}}), &["name"]),
            "/{plural}": list_op(vec![param("plural", "any type: lists it across every mesh", all_plurals)]),
            "/{plural}/{name}": resource_ops(vec![param("plural", "a global-scoped type", global_plurals), name()]),
            "/meshes/{mesh}/{plural}": list_op(vec![mesh(), param("plural", "a mesh-scoped type", mesh_plurals.clone())]),
            "/meshes/{mesh}/{plural}/{name}": resource_ops(vec![mesh(), param("plural", "a mesh-scoped type", mesh_plurals), name()])
        },
        "components": {"schemas": {
            "Resource": {"type": "object", "description": "Kuma's universal format: `type`, `name`, `mesh` (mesh-scoped types), `labels`, then the type's fields (see docs/resources.md)", "required": ["type", "name"], "properties": {"type": {"type": "string", "enum": Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>()}, "name": {"type": "string"}, "mesh": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}, "additionalProperties": true},
            "Page": {"type": "object", "properties": {"total": {"type": "integer"}, "items": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}}, "next": {"type": "string", "nullable": true}}},
            "Error": {"type": "object", "properties": {"title": {"type": "string"}, "details": {"type": "string"}, "causes": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
        }}
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_router_path_is_documented_and_every_type_listed() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let documented: Vec<&str> = paths.keys().map(String::as_str).collect();
        let mut expected = PATHS.to_vec();
        expected.sort();
        let mut got = documented.clone();
        got.sort();
        assert_eq!(got, expected);
        let listed = doc["components"]["schemas"]["Resource"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(listed, Kind::ALL.len());
    }
}
