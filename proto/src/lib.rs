//! The protocols between Atoll's control planes and proxies.
//!
//! Owns the generated `kuma.mesh.v1alpha1` messages and the `KDSSyncService` client and server
//! stubs (global ↔ zone), the `kuma.observability.v1` MADS service (zone → Prometheus), the
//! `atoll.zoneproxy.v1` table stream (zone → its ingress and egress
//! processes), and re-exports the envoy-types pieces KDS is built from. It holds no logic: the
//! sync state machines live in the KDS and zone crates, sockets in the binaries.
#![forbid(unsafe_code)]

pub mod codec;

/// Generated from `proto/kuma/mesh/v1alpha1/kds.proto`.
pub mod kds {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("kuma.mesh.v1alpha1");
}

/// Generated from `proto/kuma/observability/v1/mads.proto`.
pub mod mads {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("kuma.observability.v1");
}

/// Generated from `proto/atoll/zoneproxy/v1/table.proto`.
pub mod zoneproxy {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("atoll.zoneproxy.v1");
}

pub use envoy_types::pb::envoy::config::core::v3::Metadata;
pub use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as DeltaResource,
};
pub use envoy_types::pb::google::protobuf::{
    Any, Struct, Value as ProtoValue, value as proto_value,
};
pub use kds::KumaResource;
pub use kds::kds_sync_service_client::KdsSyncServiceClient;
pub use kds::kds_sync_service_server::{KdsSyncService, KdsSyncServiceServer};

/// The type URL under which a resource's spec travels inside `KumaResource.spec`.
pub fn spec_type_url(kind: &str) -> String {
    format!("type.googleapis.com/atoll.{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn kuma_resource_field_numbers_match_spec() {
        let res = KumaResource {
            meta: Some(kds::kuma_resource::Meta {
                name: "n".into(),
                mesh: "m".into(),
                version: "v".into(),
                labels: [("k".to_string(), "l".to_string())].into(),
                ..Default::default()
            }),
            spec: None,
            status: None,
        };
        let bytes = res.encode_to_vec();
        // Field 1 (meta), wire type 2 (length-delimited): tag byte 0x0a.
        assert_eq!(bytes[0], 0x0a);
        let meta = &bytes[2..];
        // name=1 -> 0x0a, mesh=2 -> 0x12, version=5 -> 0x2a, labels=6 -> 0x32.
        let tags: Vec<u8> = [0usize, 3, 6, 9].iter().map(|&i| meta[i]).collect();
        assert_eq!(tags, vec![0x0a, 0x12, 0x2a, 0x32]);
        assert_eq!(KumaResource::decode(bytes.as_slice()).unwrap(), res);
    }
}
