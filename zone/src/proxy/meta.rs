//! What a data plane tells the control plane about its host, through Envoy's node metadata
//! (set by `atoll-dp` in the bootstrap, sent on every ADS stream): the port its DNS listener
//! may bind, where the host keeps its system CA bundle and the pipe `atoll-dp` relays access
//! logs from. They are facts of the host, not of the Dataplane resource, so they travel with
//! the stream rather than through the store.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value};

/// Node metadata key of the DNS listener's port.
pub const DNS_PORT: &str = "dataplane.dns.port";
/// Node metadata key of the system CA bundle's path.
pub const SYSTEM_CA_PATH: &str = "dataplane.systemCaPath";
/// Node metadata key of the named pipe `atoll-dp` reads access-log records from.
pub const ACCESS_LOG_PIPE: &str = "dataplane.accessLogs.pipe";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyMeta {
    /// Loopback UDP port for the DNS filter; `None` turns the DNS listener off.
    pub dns_port: Option<u16>,
    /// The system CA bundle on the data plane's host (TLS to external services without a
    /// `caCert`).
    pub system_ca_path: Option<String>,
    /// A named pipe whose records `atoll-dp` sends on to MeshAccessLog TCP backends; `None`
    /// when the proxy is not run by `atoll-dp` (TCP backends are then left out).
    pub access_log_pipe: Option<String>,
}

fn text(value: &Value) -> Option<String> {
    match &value.kind {
        Some(value::Kind::StringValue(s)) => Some(s.clone()),
        Some(value::Kind::NumberValue(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl ProxyMeta {
    /// Reads what a node carries; anything malformed is treated as absent, never an error:
    /// the stream is already authenticated and a bad hint only disables a feature.
    pub fn from_node(node: Option<&Node>) -> ProxyMeta {
        let fields = node.and_then(|n| n.metadata.as_ref()).map(|m| &m.fields);
        let get = |key: &str| fields.and_then(|f| f.get(key)).and_then(text);
        ProxyMeta {
            dns_port: get(DNS_PORT)
                .and_then(|p| p.parse::<f64>().ok())
                .filter(|p| (1.0..=65535.0).contains(p) && p.fract() == 0.0)
                .map(|p| p as u16),
            system_ca_path: get(SYSTEM_CA_PATH).filter(|p| !p.is_empty()),
            access_log_pipe: get(ACCESS_LOG_PIPE).filter(|p| p.starts_with('/')),
        }
    }

    /// The node metadata a bootstrap carries.
    pub fn to_struct(&self) -> Option<Struct> {
        let mut fields = std::collections::HashMap::new();
        if let Some(port) = self.dns_port {
            fields.insert(
                DNS_PORT.to_string(),
                Value {
                    kind: Some(value::Kind::StringValue(port.to_string())),
                },
            );
        }
        for (key, path) in [
            (SYSTEM_CA_PATH, &self.system_ca_path),
            (ACCESS_LOG_PIPE, &self.access_log_pipe),
        ] {
            if let Some(path) = path {
                fields.insert(
                    key.to_string(),
                    Value {
                        kind: Some(value::Kind::StringValue(path.clone())),
                    },
                );
            }
        }
        (!fields.is_empty()).then(|| Struct {
            fields: fields.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_trip_through_a_node_and_ignores_nonsense() {
        let meta = ProxyMeta {
            dns_port: Some(15054),
            system_ca_path: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            access_log_pipe: Some("/run/atoll/access-logs.pipe".into()),
        };
        let node = Node {
            metadata: meta.to_struct(),
            ..Default::default()
        };
        assert_eq!(ProxyMeta::from_node(Some(&node)), meta);
        let mut bad = node.clone();
        bad.metadata.as_mut().unwrap().fields.insert(
            DNS_PORT.into(),
            Value {
                kind: Some(value::Kind::StringValue("70000".into())),
            },
        );
        assert_eq!(ProxyMeta::from_node(Some(&bad)).dns_port, None);
        assert_eq!(ProxyMeta::from_node(None), ProxyMeta::default());
    }
}
