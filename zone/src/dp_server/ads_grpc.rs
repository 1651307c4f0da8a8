//! The gRPC face of [`Ads`]: the routing tonic generates for Envoy's ADS (envoy-types ships
//! it built with tonic's default codec), written out here only to use Atoll's codec with small
//! buffers ([`atoll_proto::codec`]): at 10,000 proxies the default buffers alone were 160 MB.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use atoll_proto::codec::SmallBuffers;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tonic::codegen::{Body, BoxFuture, Bytes, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::ads::Ads;

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Serves [`Ads`] as `envoy.service.discovery.v3.AggregatedDiscoveryService`.
#[derive(Clone)]
pub struct AdsServer {
    ads: Arc<Ads>,
    max_decoding_message_size: usize,
}

impl AdsServer {
    pub fn new(ads: Ads, max_decoding_message_size: usize) -> AdsServer {
        AdsServer {
            ads: Arc::new(ads),
            max_decoding_message_size,
        }
    }

    fn grpc<Out, In>(&self) -> Grpc<SmallBuffers<Out, In>>
    where
        Out: prost::Message + Send + 'static,
        In: prost::Message + Default + Send + 'static,
    {
        Grpc::new(SmallBuffers::default())
            .apply_max_message_size_config(Some(self.max_decoding_message_size), None)
    }
}

impl NamedService for AdsServer {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<B> tonic::codegen::Service<http::Request<B>> for AdsServer
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match request.uri().path() {
            SOTW_PATH => {
                let mut grpc = self.grpc::<DiscoveryResponse, DiscoveryRequest>();
                let method = StateOfTheWorld(self.ads.clone());
                Box::pin(async move { Ok(grpc.streaming(method, request).await) })
            }
            DELTA_PATH => {
                let mut grpc = self.grpc::<DeltaDiscoveryResponse, DeltaDiscoveryRequest>();
                let method = Delta(self.ads.clone());
                Box::pin(async move { Ok(grpc.streaming(method, request).await) })
            }
            other => {
                let status = Status::unimplemented(format!("no method {other}"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

struct StateOfTheWorld(Arc<Ads>);

impl StreamingService<DiscoveryRequest> for StateOfTheWorld {
    type Response = DiscoveryResponse;
    type ResponseStream = <Ads as AggregatedDiscoveryService>::StreamAggregatedResourcesStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let ads = self.0.clone();
        Box::pin(async move { ads.stream_aggregated_resources(request).await })
    }
}

struct Delta(Arc<Ads>);

impl StreamingService<DeltaDiscoveryRequest> for Delta {
    type Response = DeltaDiscoveryResponse;
    type ResponseStream = <Ads as AggregatedDiscoveryService>::DeltaAggregatedResourcesStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let ads = self.0.clone();
        Box::pin(async move { ads.delta_aggregated_resources(request).await })
    }
}
