//! The `tfplugin6.Provider` service: decodes Terraform's values, dispatches on the type name
//! and encodes the answers. What each type does is in `resource`, `zone`, `token`, `data`.

use std::sync::Arc;

use tokio::sync::RwLock;
use tonic::{Request, Response, Status};

use crate::client::{Client, Settings};
use crate::resource::{self, Outcome, Private};
use crate::tfplugin6::attribute_path::{Step, step::Selector};
use crate::tfplugin6::provider_server::Provider;
use crate::tfplugin6::*;
use crate::value::{self, Value};
use crate::{data, diag, kinds, schema, token, zone};

#[derive(Default, Clone)]
pub struct AtollProvider {
    /// `None` until configured, or while the address is not known yet (planned with the
    /// global it points at).
    client: Arc<RwLock<Option<Client>>>,
}

pub fn path_to(attribute: &str) -> AttributePath {
    AttributePath {
        steps: vec![Step {
            selector: Some(Selector::AttributeName(attribute.into())),
        }],
    }
}

fn decode(type_name: &str, value: Option<&DynamicValue>) -> Result<Value, Status> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    if !value.msgpack.is_empty() {
        let dynamic = schema::dynamic_attributes(type_name);
        return value::decode_object(&value.msgpack, &dynamic)
            .map_err(|e| Status::invalid_argument(format!("decoding {type_name}: {e}")));
    }
    if !value.json.is_empty() {
        let json: serde_json::Value = serde_json::from_slice(&value.json)
            .map_err(|e| Status::invalid_argument(format!("decoding {type_name}: {e}")))?;
        return Ok(from_state_json(type_name, &json));
    }
    Ok(Value::Null)
}

/// State as Terraform stores it in JSON: a dynamic attribute is `{"value", "type"}`.
fn from_state_json(type_name: &str, json: &serde_json::Value) -> Value {
    let mut value = Value::from_json(json);
    if let Value::Map(map) = &mut value {
        for name in schema::dynamic_attributes(type_name) {
            let raw = &json[name];
            let typed = match (raw.get("type"), raw.get("value")) {
                (Some(ty), Some(v)) if !v.is_null() => {
                    Value::Typed(ty.clone(), Box::new(Value::from_json(v)))
                }
                _ => Value::Null,
            };
            map.insert(name.into(), typed);
        }
    }
    value
}

fn encode(value: &Value) -> Option<DynamicValue> {
    Some(DynamicValue {
        msgpack: value::encode(value),
        json: Vec::new(),
    })
}

fn not_configured() -> Vec<Diagnostic> {
    vec![diag::error(
        "the atoll provider is not configured",
        "its address is not known yet; set address (or ATOLL_API_ADDRESS)",
    )]
}

impl AtollProvider {
    async fn client(&self) -> Option<Client> {
        self.client.read().await.clone()
    }
}

fn setting(config: &Value, attr: &str, env: &str) -> Result<Option<String>, ()> {
    match config.get(attr) {
        Value::Unknown => Err(()),
        Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
        _ => Ok(std::env::var(env).ok().filter(|v| !v.is_empty())),
    }
}

fn settings(config: &Value) -> Result<Option<Settings>, String> {
    let (Ok(address), Ok(token), Ok(token_file), Ok(ca)) = (
        setting(config, "address", "ATOLL_API_ADDRESS"),
        setting(config, "token", "ATOLL_API_TOKEN"),
        setting(config, "token_file", "ATOLL_API_TOKEN_FILE"),
        setting(config, "ca_cert", "ATOLL_API_CA_CERT"),
    ) else {
        return Ok(None);
    };
    let token = match (token, token_file) {
        (Some(token), _) => Some(token),
        (None, Some(file)) => Some(
            std::fs::read_to_string(&file)
                .map_err(|e| format!("token_file {file}: {e}"))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let ca_cert = match ca {
        Some(pem) if pem.contains("-----BEGIN") => Some(pem),
        Some(file) => {
            Some(std::fs::read_to_string(&file).map_err(|e| format!("ca_cert {file}: {e}"))?)
        }
        None => None,
    };
    Ok(Some(Settings {
        address: address.unwrap_or_else(|| "http://127.0.0.1:5681".into()),
        token: token.map(|t| t.trim().to_string()),
        ca_cert,
    }))
}

#[tonic::async_trait]
impl Provider for AtollProvider {
    async fn get_metadata(
        &self,
        _: Request<get_metadata::Request>,
    ) -> Result<Response<get_metadata::Response>, Status> {
        Ok(Response::new(get_metadata::Response {
            server_capabilities: Some(ServerCapabilities::default()),
            resources: schema::resources()
                .into_keys()
                .map(|type_name| get_metadata::ResourceMetadata { type_name })
                .collect(),
            data_sources: schema::data_sources()
                .into_keys()
                .map(|type_name| get_metadata::DataSourceMetadata { type_name })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(schema::provider()),
            resource_schemas: schema::resources(),
            data_source_schemas: schema::data_sources(),
            server_capabilities: Some(ServerCapabilities::default()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<validate_provider_config::Request>,
    ) -> Result<Response<validate_provider_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_resource_config(
        &self,
        request: Request<validate_resource_config::Request>,
    ) -> Result<Response<validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let config = decode(&request.type_name, request.config.as_ref())?;
        let mut diagnostics = Vec::new();
        if kinds::find(&request.type_name).is_some_and(|k| k.in_mesh)
            && let Some(mesh) = config.get("mesh").as_str()
            && mesh.is_empty()
        {
            diagnostics.push(Diagnostic {
                attribute: Some(path_to("mesh")),
                ..diag::error("mesh must not be empty", "")
            });
        }
        Ok(Response::new(validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<validate_data_resource_config::Request>,
    ) -> Result<Response<validate_data_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<upgrade_resource_state::Request>,
    ) -> Result<Response<upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let json = request.raw_state.map(|r| r.json).unwrap_or_default();
        let state: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| Status::invalid_argument(format!("the stored state is not JSON: {e}")))?;
        let value = from_state_json(&request.type_name, &state);
        Ok(Response::new(upgrade_resource_state::Response {
            upgraded_state: encode(&value),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<configure_provider::Request>,
    ) -> Result<Response<configure_provider::Response>, Status> {
        let config = decode("provider", request.into_inner().config.as_ref())?;
        let diagnostics = match settings(&config) {
            Ok(Some(settings)) => match Client::new(&settings) {
                Ok(client) => {
                    *self.client.write().await = Some(client);
                    Vec::new()
                }
                Err(e) => vec![diag::error("configuring the atoll provider", e.to_string())],
            },
            Ok(None) => Vec::new(),
            Err(e) => vec![diag::error("configuring the atoll provider", e)],
        };
        Ok(Response::new(configure_provider::Response { diagnostics }))
    }

    async fn read_resource(
        &self,
        request: Request<read_resource::Request>,
    ) -> Result<Response<read_resource::Response>, Status> {
        let request = request.into_inner();
        let state = decode(&request.type_name, request.current_state.as_ref())?;
        let private = Private::decode(&request.private);
        let Some(client) = self.client().await else {
            return Ok(Response::new(read_resource::Response {
                new_state: encode(&state),
                diagnostics: Vec::new(),
                private: request.private,
            }));
        };
        let outcome = match request.type_name.as_str() {
            "atoll_zone" => zone::read(&client, state, private).await,
            "atoll_dataplane_token" => Outcome {
                state,
                private,
                diagnostics: Vec::new(),
            },
            name => match kinds::find(name) {
                Some(kind) => resource::read(&client, kind, state, private).await,
                None => return Err(Status::not_found(format!("unknown resource type {name}"))),
            },
        };
        Ok(Response::new(read_resource::Response {
            new_state: encode(&outcome.state),
            diagnostics: outcome.diagnostics,
            private: outcome.private.encode(),
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Result<Response<plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let type_name = request.type_name.as_str();
        let prior = decode(type_name, request.prior_state.as_ref())?;
        let proposed = decode(type_name, request.proposed_new_state.as_ref())?;
        let mut response = plan_resource_change::Response {
            planned_private: request.prior_private.clone(),
            ..Default::default()
        };
        if proposed.is_null() {
            response.planned_state = encode(&proposed);
            return Ok(Response::new(response));
        }
        let (planned, replace) = match type_name {
            "atoll_zone" => zone::plan(&prior, proposed),
            "atoll_dataplane_token" => token::plan(&prior, proposed),
            name => {
                let kind = kinds::find(name)
                    .ok_or_else(|| Status::not_found(format!("unknown resource type {name}")))?;
                let mut replace = Vec::new();
                for attr in ["name", "mesh"] {
                    if !prior.is_null() && prior.get(attr) != proposed.get(attr) {
                        replace.push(path_to(attr));
                    }
                }
                // Only a change is validated: an unchanged resource needs no write
                // permission to plan, and may be one the API would refuse to write anyway.
                if prior != proposed
                    && let Some(client) = self.client().await
                {
                    response.diagnostics = resource::validate(&client, kind, &proposed).await;
                }
                (proposed, replace)
            }
        };
        if type_name == "atoll_zone"
            && prior != planned
            && let Some(client) = self.client().await
        {
            response.diagnostics = resource::validate(&client, &zone::KIND, &planned).await;
        }
        response.planned_state = encode(&planned);
        response.requires_replace = replace;
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        request: Request<apply_resource_change::Request>,
    ) -> Result<Response<apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let type_name = request.type_name.as_str();
        let prior = decode(type_name, request.prior_state.as_ref())?;
        let planned = decode(type_name, request.planned_state.as_ref())?;
        let private = Private::decode(&request.planned_private);
        let Some(client) = self.client().await else {
            return Ok(Response::new(apply_resource_change::Response {
                new_state: encode(&prior),
                diagnostics: not_configured(),
                ..Default::default()
            }));
        };
        let outcome = match type_name {
            "atoll_zone" => zone::apply(&client, prior, planned, private).await,
            "atoll_dataplane_token" => {
                if planned.is_null() {
                    Outcome {
                        state: Value::Null,
                        private,
                        diagnostics: Vec::new(),
                    }
                } else {
                    match token::create(&client, planned).await {
                        Ok(state) => Outcome {
                            state,
                            private,
                            diagnostics: Vec::new(),
                        },
                        Err(diagnostics) => Outcome {
                            state: prior,
                            private,
                            diagnostics,
                        },
                    }
                }
            }
            name => {
                let kind = kinds::find(name)
                    .ok_or_else(|| Status::not_found(format!("unknown resource type {name}")))?;
                if planned.is_null() {
                    resource::delete(&client, kind, prior, private).await
                } else if prior.is_null() {
                    resource::create(&client, kind, planned).await
                } else {
                    resource::update(&client, kind, prior, planned, private).await
                }
            }
        };
        Ok(Response::new(apply_resource_change::Response {
            new_state: encode(&outcome.state),
            private: outcome.private.encode(),
            diagnostics: outcome.diagnostics,
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<import_resource_state::Request>,
    ) -> Result<Response<import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let Some(client) = self.client().await else {
            return Ok(Response::new(import_resource_state::Response {
                diagnostics: not_configured(),
                ..Default::default()
            }));
        };
        let imported = match request.type_name.as_str() {
            "atoll_zone" => zone::import(&client, &request.id).await,
            "atoll_dataplane_token" => Err(vec![diag::error(
                "a dataplane token cannot be imported",
                "the global does not store issued tokens; declare the resource and apply to issue one",
            )]),
            name => match kinds::find(name) {
                Some(kind) => resource::import(&client, kind, &request.id).await,
                None => return Err(Status::not_found(format!("unknown resource type {name}"))),
            },
        };
        let response = match imported {
            Ok((state, private)) => import_resource_state::Response {
                imported_resources: vec![import_resource_state::ImportedResource {
                    type_name: request.type_name,
                    state: encode(&state),
                    private: private.encode(),
                }],
                diagnostics: Vec::new(),
            },
            Err(diagnostics) => import_resource_state::Response {
                imported_resources: Vec::new(),
                diagnostics,
            },
        };
        Ok(Response::new(response))
    }

    async fn move_resource_state(
        &self,
        _: Request<move_resource_state::Request>,
    ) -> Result<Response<move_resource_state::Response>, Status> {
        Err(Status::unimplemented(
            "moving state between types is not supported",
        ))
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Result<Response<read_data_source::Response>, Status> {
        let request = request.into_inner();
        let config = decode(&request.type_name, request.config.as_ref())?;
        let Some(client) = self.client().await else {
            return Ok(Response::new(read_data_source::Response {
                state: None,
                diagnostics: not_configured(),
            }));
        };
        let read = match request.type_name.as_str() {
            "atoll_zones" => data::zones(&client).await,
            "atoll_mesh" => data::mesh(&client, &config).await,
            name => return Err(Status::not_found(format!("unknown data source {name}"))),
        };
        Ok(Response::new(match read {
            Ok(state) => read_data_source::Response {
                state: encode(&state),
                diagnostics: Vec::new(),
            },
            Err(diagnostics) => read_data_source::Response {
                state: None,
                diagnostics,
            },
        }))
    }

    async fn get_functions(
        &self,
        _: Request<get_functions::Request>,
    ) -> Result<Response<get_functions::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn call_function(
        &self,
        _: Request<call_function::Request>,
    ) -> Result<Response<call_function::Response>, Status> {
        Err(Status::unimplemented("the atoll provider has no functions"))
    }

    async fn stop_provider(
        &self,
        _: Request<stop_provider::Request>,
    ) -> Result<Response<stop_provider::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}
