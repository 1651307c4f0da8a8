//! MADS over gRPC (`kuma.observability.v1.MonitoringAssignmentDiscoveryService`), on the
//! same port as its HTTP form: `FetchMonitoringAssignments` answers the whole set at once,
//! with the version the HTTP form gives for the same set.

use atoll_proto::mads::MonitoringAssignment;
use atoll_proto::mads::monitoring_assignment::Target;
use atoll_proto::mads::monitoring_assignment_discovery_service_server::{
    MonitoringAssignmentDiscoveryService, MonitoringAssignmentDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tonic::{Request, Response, Status};

use super::assignments::{self, TYPE_URL};
use super::server::{Mads, version_of};

/// The gRPC method's path.
pub const FETCH_PATH: &str =
    "/kuma.observability.v1.MonitoringAssignmentDiscoveryService/FetchMonitoringAssignments";

pub(super) fn service(mads: Mads) -> MonitoringAssignmentDiscoveryServiceServer<Grpc> {
    MonitoringAssignmentDiscoveryServiceServer::new(Grpc { mads })
}

pub struct Grpc {
    mads: Mads,
}

#[tonic::async_trait]
impl MonitoringAssignmentDiscoveryService for Grpc {
    #[tracing::instrument(name = "mads.grpc_fetch", skip_all)]
    async fn fetch_monitoring_assignments(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let request = request.into_inner();
        if !request.type_url.is_empty() && request.type_url != TYPE_URL {
            return Err(Status::invalid_argument(format!(
                "type_url {:?} is not served here; use {TYPE_URL}",
                request.type_url
            )));
        }
        let client = request.node.map(|n| n.id).unwrap_or_default();
        let all = self
            .mads
            .assignments()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let version = version_of(&assignments::resources(&all, &client));
        let resources = assignments::for_client(&all, &client)
            .map(|(mesh, service, targets)| {
                let targets: Vec<Target> = targets
                    .into_iter()
                    .map(|t| Target {
                        name: t.name.clone(),
                        scheme: "http".into(),
                        address: t.address.clone(),
                        metrics_path: t.path.clone(),
                        labels: t.labels.clone().into_iter().collect(),
                    })
                    .collect();
                Any {
                    type_url: TYPE_URL.into(),
                    value: MonitoringAssignment {
                        mesh: mesh.to_string(),
                        service: service.to_string(),
                        targets,
                        labels: Default::default(),
                    }
                    .encode_to_vec(),
                }
            })
            .collect();
        metrics::counter!("atoll_mads_responses_total", "status" => "grpc").increment(1);
        Ok(Response::new(DiscoveryResponse {
            version_info: version,
            resources,
            type_url: TYPE_URL.into(),
            ..Default::default()
        }))
    }
}
