//! Monitoring assignments from the store: one per (mesh, service), listing each Dataplane
//! whose MeshMetric asks for a Prometheus endpoint, with the address Prometheus scrapes and
//! the Dataplane's tags as labels. Pure over what it reads, in a stable order, so an unchanged
//! zone gives byte-identical answers (the long poll relies on it).

use std::collections::BTreeMap;

use atoll_model::types::{DataplaneSpec, SERVICE_TAG};
use atoll_model::{Kind, POLICIES, Spec};
use atoll_store::{ListQuery, Store, StoreError};
use serde_json::{Value, json};

use crate::policy::rules::{self, Policy};
use crate::proxy::balancing::own_tags;
use crate::proxy::policy_metrics::metric_conf;

/// MADS' resource type.
pub const TYPE_URL: &str = "type.googleapis.com/kuma.observability.v1.MonitoringAssignment";

/// One scrape target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub path: String,
    pub labels: BTreeMap<String, String>,
    /// The Prometheus (`client_id`) it is for; every one when `None`.
    pub client: Option<String>,
}

/// Targets by (mesh, service).
pub type Assignments = BTreeMap<(String, String), Vec<Target>>;

async fn all(store: &dyn Store, kind: Kind) -> Result<Vec<atoll_model::Resource>, StoreError> {
    let page = store
        .list(&ListQuery {
            kind: Some(kind),
            ..Default::default()
        })
        .await?;
    Ok(page.items.into_iter().map(|s| s.resource).collect())
}

/// The assignments of every Dataplane in the store of zone `zone`.
pub async fn compute(store: &dyn Store, zone: &str) -> Result<Assignments, StoreError> {
    let mut policies: BTreeMap<String, Vec<Policy>> = BTreeMap::new();
    // Only MeshMetric says where metrics go; the other types are not read.
    for kind in POLICIES.iter().copied().filter(|k| *k == Kind::MeshMetric) {
        for resource in all(store, kind).await? {
            if let Some(view) = resource.spec.policy() {
                policies
                    .entry(resource.mesh().unwrap_or_default().to_string())
                    .or_default()
                    .push(Policy {
                        kind,
                        name: resource.name().to_string(),
                        view,
                    });
            }
        }
    }
    let mut out = Assignments::new();
    for resource in all(store, Kind::Dataplane).await? {
        let Spec::Dataplane(dp) = &resource.spec else {
            continue;
        };
        let mesh = resource.mesh().unwrap_or_default().to_string();
        let Some(in_mesh) = policies.get(&mesh) else {
            continue;
        };
        let rules = rules::compute(dp, &[], in_mesh);
        let Some(conf) = metric_conf(&rules) else {
            continue;
        };
        let Some(address) = dp.networking.as_ref().map(|n| n.address.clone()) else {
            continue;
        };
        let labels = labels(dp, zone);
        let service = labels.get(SERVICE_TAG).cloned().unwrap_or_default();
        for (port, path, client) in conf.prometheus_endpoints() {
            out.entry((mesh.clone(), service.clone()))
                .or_default()
                .push(Target {
                    name: resource.name().to_string(),
                    address: format!("{address}:{port}"),
                    path: path.to_string(),
                    labels: labels.clone(),
                    client: client.map(String::from),
                });
        }
    }
    for egress in all(store, Kind::ZoneEgress).await? {
        if let Some(target) = egress_target(&egress, zone) {
            out.entry((String::new(), EGRESS_SERVICE.to_string()))
                .or_default()
                .push(target);
        }
    }
    for targets in out.values_mut() {
        targets.sort();
    }
    Ok(out)
}

/// The service every zone egress is listed under.
const EGRESS_SERVICE: &str = "zone-egress";

/// An egress run by `atoll-dp` whose ZoneEgress names a Prometheus endpoint.
fn egress_target(resource: &atoll_model::Resource, zone: &str) -> Option<Target> {
    let Spec::ZoneEgress(spec) = &resource.spec else {
        return None;
    };
    let net = spec.networking.as_ref()?;
    let prometheus = net.prometheus.as_ref()?;
    Some(Target {
        name: resource.name().to_string(),
        address: format!("{}:{}", net.address, prometheus.port),
        path: prometheus.path().to_string(),
        labels: BTreeMap::from([
            ("kuma.io/zone".to_string(), zone.to_string()),
            ("kuma.io/service".to_string(), EGRESS_SERVICE.to_string()),
        ]),
        client: None,
    })
}

/// The in-process zone proxies' metrics: they are the zone control plane's own, on its
/// diagnostics `/metrics` at `address` (`host:port`), listed under mesh `""` and service
/// `zone-ingress` or `zone-egress`.
pub fn zone_proxies(zone: &str, address: &str, ingress: bool, egress: bool) -> Assignments {
    let mut out = Assignments::new();
    for (on, service) in [(ingress, "zone-ingress"), (egress, EGRESS_SERVICE)] {
        if !on {
            continue;
        }
        out.insert(
            (String::new(), service.to_string()),
            vec![Target {
                name: format!("{zone}.{service}"),
                address: address.to_string(),
                path: "/metrics".into(),
                labels: BTreeMap::from([
                    ("kuma.io/zone".to_string(), zone.to_string()),
                    ("kuma.io/service".to_string(), service.to_string()),
                ]),
                client: None,
            }],
        );
    }
    out
}

/// A Dataplane's own tags and the zone.
fn labels(dp: &DataplaneSpec, zone: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = own_tags(dp).into_iter().collect();
    labels.insert("kuma.io/zone".into(), zone.to_string());
    labels
}

/// What the Prometheus whose `client_id` is `client` gets: per (mesh, service) the targets
/// meant for it or for every client; services left without targets are left out.
pub fn for_client<'a>(
    assignments: &'a Assignments,
    client: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str, Vec<&'a Target>)> + 'a {
    assignments
        .iter()
        .filter_map(move |((mesh, service), targets)| {
            let targets: Vec<&Target> = targets
                .iter()
                .filter(|t| t.client.as_deref().is_none_or(|c| c == client))
                .collect();
            (!targets.is_empty()).then_some((mesh.as_str(), service.as_str(), targets))
        })
}

/// The DiscoveryResponse resources for the Prometheus whose `client_id` is `client`, in the
/// protojson form Prometheus reads.
pub fn resources(assignments: &Assignments, client: &str) -> Vec<Value> {
    for_client(assignments, client)
        .map(|(mesh, service, targets)| {
            let targets: Vec<Value> = targets
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "scheme": "http",
                        "address": t.address,
                        "metrics_path": t.path,
                        "labels": t.labels,
                    })
                })
                .collect();
            json!({
                "@type": TYPE_URL,
                "mesh": mesh,
                "service": service,
                "targets": targets,
            })
        })
        .collect()
}

/// Prometheus' own sanitising of a label name: anything outside `[a-zA-Z0-9_]` becomes `_`.
fn label_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The same targets as Prometheus' HTTP service discovery reads them (one group per target),
/// with the labels `kuma_sd_configs` would give: for Prometheus builds without it (Debian's
/// disables xDS discovery).
pub fn http_sd(assignments: &Assignments, client: &str) -> Vec<Value> {
    for_client(assignments, client)
        .flat_map(|(mesh, service, targets)| {
            targets.into_iter().map(move |t| {
                let mut labels: serde_json::Map<String, Value> = t
                    .labels
                    .iter()
                    .map(|(k, v)| (format!("__meta_kuma_label_{}", label_name(k)), json!(v)))
                    .collect();
                for (k, v) in [
                    ("__meta_kuma_mesh", mesh),
                    ("__meta_kuma_service", service),
                    ("__meta_kuma_dataplane", t.name.as_str()),
                    ("__metrics_path__", t.path.as_str()),
                    ("__scheme__", "http"),
                    ("instance", t.name.as_str()),
                ] {
                    labels.insert(k.into(), json!(v));
                }
                json!({"targets": [t.address], "labels": labels})
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignments() -> Assignments {
        let target = |name: &str, client: Option<&str>| Target {
            name: name.into(),
            address: format!("10.0.0.1:{}", 5670 + name.len()),
            path: "/metrics".into(),
            labels: BTreeMap::from([
                ("kuma.io/service".to_string(), "web".to_string()),
                ("kuma.io/zone".to_string(), "zone-1".to_string()),
            ]),
            client: client.map(String::from),
        };
        BTreeMap::from([(
            ("default".to_string(), "web".to_string()),
            vec![target("web-1", None), target("web-22", Some("team-b"))],
        )])
    }

    #[test]
    fn resources_are_typed_and_filtered_by_client() {
        let all = resources(&assignments(), "team-b");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["@type"], TYPE_URL);
        assert_eq!(all[0]["targets"].as_array().map(Vec::len), Some(2));
        assert_eq!(all[0]["targets"][0]["metrics_path"], "/metrics");
        let others = resources(&assignments(), "team-a");
        assert_eq!(others[0]["targets"].as_array().map(Vec::len), Some(1));
        assert_eq!(others[0]["targets"][0]["name"], "web-1");
    }

    #[test]
    fn http_sd_gives_the_labels_kuma_sd_would() {
        let groups = http_sd(&assignments(), "");
        assert_eq!(groups.len(), 1, "the other target is for team-b only");
        let labels = &groups[0]["labels"];
        assert_eq!(groups[0]["targets"], json!(["10.0.0.1:5675"]));
        assert_eq!(labels["__meta_kuma_mesh"], "default");
        assert_eq!(labels["__meta_kuma_service"], "web");
        assert_eq!(labels["__meta_kuma_dataplane"], "web-1");
        assert_eq!(labels["__meta_kuma_label_kuma_io_zone"], "zone-1");
        assert_eq!(labels["__metrics_path__"], "/metrics");
        assert_eq!(labels["instance"], "web-1");
    }

    #[test]
    fn an_envoy_egress_is_listed_only_with_a_prometheus_endpoint() {
        let egress = |extra: &str| {
            atoll_model::parse_documents(&format!(
                "type: ZoneEgress\nname: egress-1\nnetworking:\n  address: 10.0.0.9\n  port: 10002\n{extra}"
            ))
            .remove(0)
            .outcome
            .expect("valid")
        };
        assert_eq!(egress_target(&egress(""), "zone-1"), None);
        let target = egress_target(
            &egress("  prometheus:\n    port: 9102\n    path: /stats\n"),
            "zone-1",
        )
        .expect("listed");
        assert_eq!(target.name, "egress-1");
        assert_eq!(target.address, "10.0.0.9:9102");
        assert_eq!(target.path, "/stats");
        assert_eq!(target.labels["kuma.io/service"], "zone-egress");
        assert_eq!(target.labels["kuma.io/zone"], "zone-1");
    }
}
