//! One proxy's complete configuration, encoded once and versioned by content.
//!
//! Every resource carries a hash of its bytes as its version, and every type a hash over its
//! resources, so a recomputation that produces the same configuration produces the same
//! versions and nothing is sent (delta compares per resource, state-of-the-world per type).

use std::collections::BTreeMap;
use std::hash::Hasher;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

/// The xDS types Atoll serves, in the order a change is pushed: what others refer to first
/// (secrets, clusters, endpoints) so a listener never points at something Envoy lacks.
pub const PUSH_ORDER: [&str; 5] = [SECRET, CLUSTER, ENDPOINT, ROUTE, LISTENER];

pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// Whether Envoy subscribes to every resource of the type (listeners, clusters) rather than
/// to names it learnt from other resources (endpoints, routes, secrets).
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

/// A resource, encoded, with the hash of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub version: String,
    pub any: Any,
}

/// All resources of one type for one proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeSet {
    pub resources: BTreeMap<String, Encoded>,
}

impl TypeSet {
    /// The state-of-the-world version of the resources named in `names` (all when `None`).
    pub fn version_of(&self, names: Option<&std::collections::BTreeSet<String>>) -> String {
        let mut h = std::hash::DefaultHasher::new();
        for (name, resource) in &self.resources {
            if names.is_none_or(|n| n.contains(name)) {
                h.write(name.as_bytes());
                h.write(resource.version.as_bytes());
            }
        }
        format!("{:016x}", h.finish())
    }
}

/// Everything one proxy is configured with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub types: BTreeMap<&'static str, TypeSet>,
    /// The Dataplane this was computed for: a stream sends it only to a token that admits it.
    pub dataplane: Option<std::sync::Arc<atoll_model::types::DataplaneSpec>>,
    /// `traceparent` of the change that caused this configuration, when traces are exported:
    /// the stream's push continues that trace. Not part of the fingerprint.
    pub trace: Option<String>,
}

fn hash(bytes: &[u8]) -> String {
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    format!("{:016x}", h.finish())
}

impl Snapshot {
    fn add<M: Message + Name>(&mut self, type_url: &'static str, name: &str, message: &M) {
        let value = message.encode_to_vec();
        let version = hash(&value);
        self.types.entry(type_url).or_default().resources.insert(
            name.to_string(),
            Encoded {
                version,
                any: Any {
                    type_url: type_url.to_string(),
                    value,
                },
            },
        );
    }

    pub fn add_listener(&mut self, listener: &Listener) {
        self.add(LISTENER, &listener.name, listener);
    }

    pub fn add_cluster(&mut self, cluster: &Cluster) {
        self.add(CLUSTER, &cluster.name, cluster);
    }

    pub fn add_endpoints(&mut self, cla: &ClusterLoadAssignment) {
        self.add(ENDPOINT, &cla.cluster_name, cla);
    }

    pub fn add_route(&mut self, route: &RouteConfiguration) {
        self.add(ROUTE, &route.name, route);
    }

    pub fn add_secret(&mut self, secret: &Secret) {
        self.add(SECRET, &secret.name, secret);
    }

    /// Decodes the resource `name` of `type_url`, lets `f` change it and stores the result;
    /// false when there is no such resource.
    pub fn update<M: Message + Name + Default>(
        &mut self,
        type_url: &'static str,
        name: &str,
        f: impl FnOnce(&mut M),
    ) -> bool {
        let Some(mut message) = self
            .of(type_url)
            .and_then(|set| set.resources.get(name))
            .and_then(|r| M::decode(r.any.value.as_slice()).ok())
        else {
            return false;
        };
        f(&mut message);
        self.add(type_url, name, &message);
        true
    }

    /// The names of the resources of a type.
    pub fn names(&self, type_url: &str) -> Vec<String> {
        self.of(type_url)
            .map(|set| set.resources.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The resources of a type (empty when the proxy has none).
    pub fn of(&self, type_url: &str) -> Option<&TypeSet> {
        self.types.get(type_url)
    }

    /// Decoded listeners, for tests and golden files.
    pub fn decoded<M: Message + Default>(&self, type_url: &str) -> Vec<M> {
        self.of(type_url)
            .map(|set| {
                set.resources
                    .values()
                    .filter_map(|r| M::decode(r.any.value.as_slice()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A hash over everything, to tell whether a recomputation changed anything at all.
    pub fn fingerprint(&self) -> String {
        let mut h = std::hash::DefaultHasher::new();
        for (type_url, set) in &self.types {
            h.write(type_url.as_bytes());
            h.write(set.version_of(None).as_bytes());
        }
        format!("{:016x}", h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_content_only() {
        let mut a = Snapshot::default();
        a.add_cluster(&Cluster {
            name: "web".into(),
            ..Default::default()
        });
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.add_cluster(&Cluster {
            name: "web".into(),
            alt_stat_name: "changed".into(),
            ..Default::default()
        });
        assert_ne!(a.fingerprint(), b.fingerprint());
        let names = std::collections::BTreeSet::from(["other".to_string()]);
        assert_eq!(
            a.of(CLUSTER).unwrap().version_of(Some(&names)),
            b.of(CLUSTER).unwrap().version_of(Some(&names)),
            "a change outside the subscribed names keeps the version"
        );
    }
}
