//! Registration and bootstrap: `atoll-dp` posts its Dataplane with its data plane token; the
//! zone checks that the token admits it, stores it and answers with the Envoy bootstrap
//! (binary protobuf) that points Envoy's ADS at this server, carrying the same token.
//! `DELETE` deregisters on shutdown, with the same token.

use std::sync::Arc;

use atoll_api::rest::{ApiError, Cause};
use atoll_model::types::{AdminConf, DEFAULT_ADMIN_PORT};
use atoll_model::{Kind, Resource, Spec};
use atoll_store::{Key, Precondition, Store, StoreError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use envoy_types::pb::envoy::config::bootstrap::v3::{Admin, Bootstrap, bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, GrpcService, HeaderValue,
    Node, api_config_source, config_source, grpc_service,
};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, TransportSocket, data_source, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, UpstreamTlsContext, common_tls_context,
};
use envoy_types::util::pack_any;
use prost::Message;
use serde::Deserialize;

use super::authn::{Authenticator, bearer_header};
use crate::proxy::hub::Hub;
use crate::xds::clusters;

/// What `atoll-dp` sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapRequest {
    /// The Dataplane in Kuma's YAML or JSON format.
    pub dataplane: String,
    /// Where Envoy reaches this server (as the data plane sees it).
    pub xds_host: String,
    pub xds_port: u16,
    /// PEM CA that signed this server's certificate, for Envoy to verify it.
    pub ca_cert: String,
    /// Delta xDS instead of state of the world.
    #[serde(default)]
    pub delta: bool,
    /// The loopback UDP port the proxy's DNS listener binds; absent turns it off.
    #[serde(default)]
    pub dns_port: Option<u16>,
    /// The host's system CA bundle, for TLS to external services without their own CA.
    #[serde(default)]
    pub system_ca_path: Option<String>,
    /// The named pipe `atoll-dp` relays access-log records from to TCP backends.
    #[serde(default)]
    pub access_log_pipe: Option<String>,
}

#[derive(Clone)]
struct BootstrapState {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    auth: Authenticator,
}

pub fn router(store: Arc<dyn Store>, hub: Arc<Hub>, auth: Authenticator) -> axum::Router {
    axum::Router::new()
        .route("/bootstrap", post(register))
        .route("/dataplanes/{mesh}/{name}", delete(deregister))
        .route("/zoneegresses/{name}", delete(deregister_egress))
        .with_state(BootstrapState { store, hub, auth })
}

fn cause(field: &str, message: String) -> Cause {
    Cause {
        field: field.into(),
        message,
    }
}

/// Parses and validates the posted Dataplane (exactly one document, nothing after it read);
/// errors are the REST API's, field by field.
fn dataplane(text: &str) -> Result<Resource, ApiError> {
    let (Some(doc), false) = atoll_model::parse_first_document(text) else {
        return Err(ApiError::bad_request(
            "the dataplane field must hold exactly one resource",
            vec![cause(
                "dataplane",
                "expected one YAML or JSON document".into(),
            )],
        ));
    };
    match doc.outcome {
        Err(err) => Err(ApiError::invalid(err.violations)),
        Ok(resource) if !matches!(resource.spec, Spec::Dataplane(_) | Spec::ZoneEgress(_)) => {
            Err(ApiError::bad_request(
                "not a Dataplane",
                vec![cause(
                    "type",
                    format!("must be Dataplane or ZoneEgress, not {}", resource.kind()),
                )],
            ))
        }
        Ok(resource) => Ok(resource),
    }
}

#[tracing::instrument(skip_all, fields(mesh, name))]
async fn register(
    State(state): State<BootstrapState>,
    headers: HeaderMap,
    Json(request): Json<BootstrapRequest>,
) -> Response {
    let token = bearer_header(&headers);
    let parsed = dataplane(&request.dataplane);
    if let Ok(resource) = &parsed
        && matches!(resource.spec, Spec::ZoneEgress(_))
    {
        return register_egress(&state, token, &request, resource.clone()).await;
    }
    let grant = match state.auth.dataplane(token) {
        Ok(grant) => grant,
        Err(denied) => {
            tracing::warn!(?denied, "registration refused");
            return denied.into_api_error().into_response();
        }
    };
    let resource = match parsed {
        Ok(r) => r,
        Err(err) => return err.into_response(),
    };
    let mesh = resource.meta.mesh.clone().unwrap_or_default();
    let name = resource.meta.name.clone();
    tracing::Span::current()
        .record("mesh", mesh.as_str())
        .record("name", name.as_str());
    let (admin_port, admitted) = match &resource.spec {
        Spec::Dataplane(dp) => (
            AdminConf::port_of(dp.networking.as_ref().and_then(|n| n.admin.as_ref())),
            grant.admits(&mesh, &name, dp),
        ),
        _ => (DEFAULT_ADMIN_PORT, Ok(())),
    };
    if let Err(denied) = admitted {
        tracing::warn!(?denied, jti = ?grant.jti(), "registration refused");
        return denied.into_api_error().into_response();
    }
    match state.store.put(resource, Precondition::Any).await {
        Err(err) => return ApiError::from(err).into_response(),
        // A new registration starts a fresh insight; a data plane re-registering keeps it.
        Ok(atoll_store::PutOutcome::Created(_)) => {
            state.hub.forget(&(mesh.clone(), name.clone()));
            tracing::info!(jti = ?grant.jti(), "Dataplane registered");
        }
        Ok(atoll_store::PutOutcome::Updated(_)) => tracing::info!("Dataplane updated"),
        Ok(atoll_store::PutOutcome::Unchanged(_)) => {
            tracing::debug!("Dataplane registered again, unchanged")
        }
    }
    metrics::counter!("atoll_dp_registrations_total").increment(1);
    let bootstrap = build(&mesh, &name, admin_port, &request, token);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        bootstrap.encode_to_vec(),
    )
        .into_response()
}

/// A zone egress run by `atoll-dp`: authenticated by a zone token with scope `egress`, stored
/// as this zone's ZoneEgress, bootstrapped as the mesh-less node `.<name>`.
async fn register_egress(
    state: &BootstrapState,
    token: Option<&str>,
    request: &BootstrapRequest,
    mut resource: Resource,
) -> Response {
    let name = resource.meta.name.clone();
    tracing::Span::current().record("name", name.as_str());
    if let Err(denied) = state.auth.zone_proxy(token, "egress") {
        tracing::warn!(?denied, "zone egress registration refused");
        return denied.into_api_error().into_response();
    }
    if name == crate::naming::EGRESS_NAME {
        return ApiError::bad_request(
            "reserved name",
            vec![cause(
                "name",
                format!("{name:?} is the zone's in-process egress; give this one another name"),
            )],
        )
        .into_response();
    }
    let Spec::ZoneEgress(spec) = &mut resource.spec else {
        return ApiError::bad_request("not a ZoneEgress", Vec::new()).into_response();
    };
    spec.zone = Some(state.auth.zone.clone());
    let admin_port = AdminConf::port_of(spec.networking.as_ref().and_then(|n| n.admin.as_ref()));
    match state.store.put(resource, Precondition::Any).await {
        Err(err) => return ApiError::from(err).into_response(),
        Ok(atoll_store::PutOutcome::Created(_)) => tracing::info!("ZoneEgress registered"),
        Ok(_) => tracing::debug!("ZoneEgress registered again"),
    }
    metrics::counter!("atoll_dp_registrations_total").increment(1);
    let bootstrap = build("", &name, admin_port, request, token);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        bootstrap.encode_to_vec(),
    )
        .into_response()
}

#[tracing::instrument(skip(state, headers))]
async fn deregister_egress(
    State(state): State<BootstrapState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(denied) = state.auth.zone_proxy(bearer_header(&headers), "egress") {
        return denied.into_api_error().into_response();
    }
    if name == crate::naming::EGRESS_NAME {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state
        .store
        .delete(&Key::new(Kind::ZoneEgress, None, &name), None)
        .await
    {
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            tracing::info!("ZoneEgress deregistered");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => ApiError::from(err).into_response(),
    }
}

#[tracing::instrument(skip(state, headers))]
async fn deregister(
    State(state): State<BootstrapState>,
    headers: HeaderMap,
    Path((mesh, name)): Path<(String, String)>,
) -> Response {
    let grant = match state.auth.dataplane(bearer_header(&headers)) {
        Ok(grant) => grant,
        Err(denied) => return denied.into_api_error().into_response(),
    };
    if let Err(denied) = grant.admits_proxy(&mesh, &name) {
        return denied.into_api_error().into_response();
    }
    let key = Key::new(Kind::Dataplane, Some(&mesh), &name);
    // A token restricted to some tags may only remove a Dataplane it could have registered.
    match state.store.get(&key).await {
        Ok(Some(stored)) => {
            if let Spec::Dataplane(dp) = &stored.resource.spec
                && let Err(denied) = grant.admits(&mesh, &name, dp)
            {
                return denied.into_api_error().into_response();
            }
        }
        Ok(None) => return StatusCode::NO_CONTENT.into_response(),
        Err(err) => return ApiError::from(err).into_response(),
    }
    match state.store.delete(&key, None).await {
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            tracing::info!("Dataplane deregistered");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => ApiError::from(err).into_response(),
    }
}

const ADS_CLUSTER: &str = "atoll_ads";

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

/// The bootstrap of one proxy; `token` goes into the ADS stream's metadata, where the DP
/// server checks it again.
pub fn build(
    mesh: &str,
    name: &str,
    admin_port: u32,
    request: &BootstrapRequest,
    token: Option<&str>,
) -> Bootstrap {
    let mut cluster = clusters::with_http2(clusters::fixed(
        ADS_CLUSTER,
        &request.xds_host,
        u32::from(request.xds_port),
    ));
    if request.xds_host.parse::<std::net::IpAddr>().is_err() {
        cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
    }
    let sni = if request.xds_host.parse::<std::net::IpAddr>().is_ok() {
        String::new()
    } else {
        request.xds_host.clone()
    };
    cluster.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
            UpstreamTlsContext {
                sni,
                common_tls_context: Some(CommonTlsContext {
                    validation_context_type: Some(
                        common_tls_context::ValidationContextType::ValidationContext(
                            CertificateValidationContext {
                                trusted_ca: Some(DataSource {
                                    specifier: Some(data_source::Specifier::InlineString(
                                        request.ca_cert.clone(),
                                    )),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        ),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))),
    });
    let api_type = if request.delta {
        api_config_source::ApiType::DeltaGrpc
    } else {
        api_config_source::ApiType::Grpc
    };
    Bootstrap {
        node: Some(Node {
            id: super::ads::node_id(mesh, name),
            cluster: name.to_string(),
            metadata: crate::proxy::meta::ProxyMeta {
                dns_port: request.dns_port,
                system_ca_path: request.system_ca_path.clone(),
                access_log_pipe: request.access_log_pipe.clone(),
            }
            .to_struct(),
            ..Default::default()
        }),
        admin: Some(Admin {
            address: Some(clusters::socket_address("127.0.0.1", admin_port)),
            ..Default::default()
        }),
        static_resources: Some(bootstrap::StaticResources {
            clusters: vec![cluster],
            ..Default::default()
        }),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_type as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: ADS_CLUSTER.into(),
                            ..Default::default()
                        },
                    )),
                    initial_metadata: token
                        .map(|token| HeaderValue {
                            key: "authorization".into(),
                            value: format!("Bearer {token}"),
                            ..Default::default()
                        })
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }],
                set_node_on_first_message_only: true,
                ..Default::default()
            }),
            lds_config: Some(ads()),
            cds_config: Some(ads()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(xds_host: &str) -> BootstrapRequest {
        BootstrapRequest {
            dataplane: String::new(),
            xds_host: xds_host.into(),
            xds_port: 5678,
            ca_cert: "CA".into(),
            delta: false,
            dns_port: None,
            system_ca_path: None,
            access_log_pipe: None,
        }
    }

    /// Envoy must dial the control plane where `atoll-dp` reached it: the zone cannot know
    /// which of its addresses the data plane's network can see.
    #[test]
    fn envoy_dials_the_address_the_data_plane_used() {
        let by_ip = build("default", "web-1", 9901, &request("10.213.0.3"), None);
        let ads = format!("{:?}", by_ip.static_resources);
        assert!(ads.contains("\"10.213.0.3\""), "{ads}");
        assert!(!ads.contains("127.0.0.1"), "{ads}");
        let by_name = build(
            "default",
            "web-1",
            9901,
            &request("zone-1.example.internal"),
            None,
        );
        let cluster = &by_name.static_resources.unwrap().clusters[0];
        assert_eq!(
            cluster.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::StrictDns as i32
            ))
        );
        let text = format!("{cluster:?}");
        assert!(text.contains("zone-1.example.internal"), "{text}");
    }
}
