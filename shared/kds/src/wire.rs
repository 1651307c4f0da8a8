//! The encoding of resources and control messages on KDS streams (docs/kds.md):
//! - the delta type URL is the bare type name (`MeshGateway`);
//! - a delta resource is named `<name>.<mesh>` (`<name>` for global-scoped types) and versioned
//!   by a hash of its content, so unchanged resources are recognised on both sides;
//! - it carries a `kuma.mesh.v1alpha1.KumaResource` whose `spec` holds the resource's JSON
//!   document (without metadata) under the type URL `type.googleapis.com/atoll.<Type>`;
//! - `system_version_info` marks the chunks of a full set (`snapshot <i>/<n>`) and heartbeats.

use atoll_model::{Kind, Resource, decode_value};
use atoll_proto::kds::kuma_resource::Meta;
use atoll_proto::{Any, DeltaResource, KumaResource, Metadata, ProtoValue, Struct, proto_value};
use prost::Message;
use serde_json::{Map, Value};

/// `type_url` of the heartbeat a sender emits when it has had nothing to send for a while.
pub const HEARTBEAT_TYPE: &str = "atoll.Heartbeat";
const KUMA_RESOURCE_TYPE: &str = "type.googleapis.com/kuma.mesh.v1alpha1.KumaResource";

/// `Resource.metadata` filter under which a change carries the trace it belongs to.
const TRACE_METADATA: &str = "atoll.trace";
const TRACEPARENT: &str = "traceparent";

/// Marks `delta` as part of the trace `traceparent` names (docs/kds.md, "Trace context").
pub fn set_trace(delta: &mut DeltaResource, traceparent: &str) {
    let fields = [(
        TRACEPARENT.to_string(),
        ProtoValue {
            kind: Some(proto_value::Kind::StringValue(traceparent.to_string())),
        },
    )];
    delta.metadata = Some(Metadata {
        filter_metadata: [(
            TRACE_METADATA.to_string(),
            Struct {
                fields: fields.into_iter().collect(),
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    });
}

/// The `traceparent` a received delta carries, if any.
pub fn trace_of(delta: &DeltaResource) -> Option<&str> {
    let value = delta
        .metadata
        .as_ref()?
        .filter_metadata
        .get(TRACE_METADATA)?
        .fields
        .get(TRACEPARENT)?;
    match &value.kind {
        Some(proto_value::Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The delta name: `<name>.<mesh>` or `<name>`.
pub fn delta_name(resource: &Resource) -> String {
    named(resource.name(), resource.mesh())
}

/// The delta name of the resource at `key` (see [`delta_name`]).
pub fn key_delta_name(key: &atoll_store::Key) -> String {
    named(&key.name, key.mesh.as_deref())
}

fn named(name: &str, mesh: Option<&str>) -> String {
    match mesh {
        Some(mesh) => format!("{name}.{mesh}"),
        None => name.to_string(),
    }
}

/// A hash of everything a peer stores: spec, status, labels, name and mesh (not timestamps).
pub fn content_version(resource: &Resource) -> String {
    let mut doc = atoll_model::content_document(resource);
    if let Value::Object(map) = &mut doc {
        map.insert("name".into(), Value::from(resource.name()));
        map.insert(
            "mesh".into(),
            resource.mesh().map_or(Value::Null, Value::from),
        );
        let labels: Map<String, Value> = resource
            .meta
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        map.insert("labels".into(), Value::Object(labels));
    }
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A resource as a delta resource, with its content version.
pub fn to_delta(resource: &Resource) -> DeltaResource {
    let version = content_version(resource);
    let kind = resource.kind();
    let kuma = KumaResource {
        meta: Some(Meta {
            name: resource.name().to_string(),
            mesh: resource.mesh().unwrap_or_default().to_string(),
            version: version.clone(),
            labels: resource.meta.labels.clone().into_iter().collect(),
            ..Default::default()
        }),
        spec: Some(Any {
            type_url: atoll_proto::spec_type_url(kind.name()),
            value: serde_json::to_vec(&atoll_model::content_document(resource)).unwrap_or_default(),
        }),
        status: None,
    };
    DeltaResource {
        name: delta_name(resource),
        version,
        resource: Some(Any {
            type_url: KUMA_RESOURCE_TYPE.into(),
            value: kuma.encode_to_vec(),
        }),
        ..Default::default()
    }
}

/// Decodes and validates a received delta resource of `kind`; the error says what is wrong.
pub fn from_delta(kind: Kind, delta: &DeltaResource) -> Result<Resource, String> {
    let any = delta
        .resource
        .as_ref()
        .ok_or("no resource in the delta entry")?;
    if any.type_url != KUMA_RESOURCE_TYPE {
        return Err(format!("unexpected resource type URL {:?}", any.type_url));
    }
    let kuma = KumaResource::decode(any.value.as_slice())
        .map_err(|e| format!("undecodable KumaResource: {e}"))?;
    let meta = kuma.meta.ok_or("KumaResource without meta")?;
    let spec = kuma.spec.ok_or("KumaResource without spec")?;
    if spec.type_url != atoll_proto::spec_type_url(kind.name()) {
        return Err(format!(
            "spec of type {:?} on a {kind} stream",
            spec.type_url
        ));
    }
    let Value::Object(doc) = serde_json::from_slice::<Value>(&spec.value)
        .map_err(|e| format!("spec is not JSON: {e}"))?
    else {
        return Err("spec is not a JSON object".into());
    };
    let mesh = (!meta.mesh.is_empty()).then_some(meta.mesh.as_str());
    let labels = meta.labels.into_iter().collect();
    let document = atoll_model::assemble_document(kind, &meta.name, mesh, &labels, &doc);
    let mut resource = decode_value(document).map_err(|e| e.to_string())?;
    resource.meta.trace = trace_of(delta).map(str::to_string);
    Ok(resource)
}

/// `system_version_info` of chunk `part` (1-based) of `parts` of a full set.
pub fn snapshot_marker(part: usize, parts: usize) -> String {
    format!("snapshot {part}/{parts}")
}

/// `(part, parts)` when `info` marks a chunk of a full set.
pub fn parse_snapshot_marker(info: &str) -> Option<(usize, usize)> {
    let (part, parts) = info.strip_prefix("snapshot ")?.split_once('/')?;
    let (part, parts) = (part.parse().ok()?, parts.parse().ok()?);
    (part >= 1 && part <= parts).then_some((part, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_model::{Meta, Spec, types::ZoneSpec};

    fn zone(name: &str) -> Resource {
        Resource::new(
            Meta {
                name: name.into(),
                ..Default::default()
            },
            Spec::Zone(ZoneSpec {
                enabled: Some(false),
            }),
        )
    }

    #[test]
    fn delta_round_trip_keeps_content_and_version() {
        let mut r = zone("zone-1");
        r.meta.labels.insert("env".into(), "prod".into());
        let delta = to_delta(&r);
        assert_eq!(delta.name, "zone-1");
        assert_eq!(from_delta(Kind::Zone, &delta), Ok(r.clone()));
        assert_eq!(delta.version, content_version(&r));
    }

    #[test]
    fn version_ignores_timestamps_but_not_content() {
        let a = zone("z");
        let mut b = a.clone();
        b.meta.modification_time = Some("2026-01-01T00:00:00Z".into());
        assert_eq!(content_version(&a), content_version(&b));
        b.meta.labels.insert("x".into(), "y".into());
        assert_ne!(content_version(&a), content_version(&b));
    }

    #[test]
    fn wrong_kind_and_invalid_content_are_refused() {
        let delta = to_delta(&zone("z"));
        assert!(
            from_delta(Kind::Mesh, &delta)
                .unwrap_err()
                .contains("on a Mesh stream")
        );
        let invalid = to_delta(&zone("Not_A_Label"));
        assert!(
            from_delta(Kind::Zone, &invalid)
                .unwrap_err()
                .contains("name")
        );
    }

    #[test]
    fn trace_context_travels_beside_the_content() {
        let r = zone("zone-1");
        let mut delta = to_delta(&r);
        let version = delta.version.clone();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        set_trace(&mut delta, parent);
        assert_eq!(trace_of(&delta), Some(parent));
        let received = from_delta(Kind::Zone, &delta).expect("decodes");
        assert_eq!(received.meta.trace.as_deref(), Some(parent));
        assert_eq!(delta.version, version, "the trace is not content");
        let decoded = DeltaResource::decode(delta.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(trace_of(&decoded), Some(parent));
    }

    #[test]
    fn snapshot_markers() {
        assert_eq!(parse_snapshot_marker(&snapshot_marker(2, 3)), Some((2, 3)));
        assert_eq!(parse_snapshot_marker("snapshot 4/3"), None);
        assert_eq!(parse_snapshot_marker("heartbeat"), None);
    }
}
