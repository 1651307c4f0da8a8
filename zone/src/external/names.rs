//! Each MeshExternalService's hostnames (one per HostnameGenerator that selects it) and VIP,
//! and the `status` that shows them, as Kuma's: `vip.ip`, `addresses[]` and one condition per
//! generator saying whether it produced a hostname and why not.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use atoll_model::labels;
use serde_json::{Value, json};

use super::template::{Subject, render};
use super::vip::{Candidate, Cidr, allocate};
use crate::world::{ExternalService, Named};

/// One generator's outcome for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub generator: String,
    /// The hostname, or why there is none.
    pub outcome: Result<String, (&'static str, String)>,
}

/// A service's names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceNames {
    pub vip: Option<IpAddr>,
    pub generated: Vec<Generated>,
}

impl ServiceNames {
    /// The hostnames that were generated.
    pub fn hostnames(&self) -> impl Iterator<Item = &str> {
        self.generated
            .iter()
            .filter_map(|g| g.outcome.as_ref().ok().map(String::as_str))
    }

    /// The `status` of the MeshExternalService, in Kuma's shape.
    pub fn status(&self) -> Value {
        let addresses: Vec<Value> = self
            .generated
            .iter()
            .filter_map(|g| {
                let hostname = g.outcome.as_ref().ok()?;
                Some(json!({
                    "hostname": hostname,
                    "origin": "HostnameGenerator",
                    "hostnameGeneratorRef": {"coreName": g.generator},
                }))
            })
            .collect();
        let generators: Vec<Value> = self
            .generated
            .iter()
            .map(|g| {
                let (status, reason, message) = match &g.outcome {
                    Ok(_) => ("True", "Generated", String::new()),
                    Err((reason, message)) => ("False", *reason, message.clone()),
                };
                json!({
                    "hostnameGeneratorRef": {"coreName": g.generator},
                    "conditions": [{"type": "Generated", "status": status, "reason": reason, "message": message}],
                })
            })
            .collect();
        let mut status = serde_json::Map::new();
        if !addresses.is_empty() {
            status.insert("addresses".into(), Value::Array(addresses));
        }
        if !generators.is_empty() {
            status.insert("hostnameGenerators".into(), Value::Array(generators));
        }
        if let Some(ip) = self.vip {
            status.insert("vip".into(), json!({"ip": ip.to_string()}));
        }
        Value::Object(status)
    }
}

/// Whether every label a selector asks for is on the service.
fn selects(match_labels: &atoll_model::types::Tags, labels: &atoll_model::types::Tags) -> bool {
    match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Names for every service. Services are visited oldest first, so when two would get one
/// hostname the older keeps it, as with VIPs.
pub fn compute(
    cidr: &Cidr,
    services: &BTreeMap<Named, ExternalService>,
    generators: &BTreeMap<String, atoll_model::types::HostnameGeneratorSpec>,
) -> BTreeMap<Named, ServiceNames> {
    let candidates: Vec<Candidate<'_>> = services
        .iter()
        .map(|((mesh, name), s)| Candidate {
            mesh,
            name,
            created: &s.creation_time,
        })
        .collect();
    let vips = allocate(cidr, &candidates);
    let mut order: Vec<(&Named, &ExternalService)> = services.iter().collect();
    order.sort_by(|a, b| (&a.1.creation_time, a.0).cmp(&(&b.1.creation_time, b.0)));
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (key @ (mesh, name), service) in order {
        let zone = service
            .labels
            .get(labels::ZONE)
            .map(String::as_str)
            .unwrap_or_default();
        let subject = Subject {
            name,
            mesh,
            zone,
            labels: &service.labels,
        };
        let generated = generators
            .iter()
            .filter(|(_, g)| g.extension.is_none())
            .filter_map(|(generator, g)| {
                let selector = g.selector.as_ref()?.mesh_external_service.as_ref()?;
                selects(&selector.match_labels, &service.labels).then_some((generator, g))
            })
            .map(|(generator, g)| {
                let outcome = match render(&g.template, &subject) {
                    Err(why) => Err(("TemplateError", why)),
                    Ok(hostname) if !used.insert(hostname.clone()) => Err((
                        "Collision",
                        format!("{hostname:?} is already the hostname of an older service"),
                    )),
                    Ok(hostname) => Ok(hostname),
                };
                Generated {
                    generator: generator.clone(),
                    outcome,
                }
            })
            .collect();
        out.insert(
            key.clone(),
            ServiceNames {
                vip: vips.get(key).copied(),
                generated,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(created: &str, labels: &[(&str, &str)]) -> ExternalService {
        ExternalService {
            spec: Default::default(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            creation_time: created.into(),
        }
    }

    fn generator(
        template: &str,
        labels: &[(&str, &str)],
    ) -> atoll_model::types::HostnameGeneratorSpec {
        let match_labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        serde_json::from_value(json!({
            "selector": {"meshExternalService": {"matchLabels": match_labels}},
            "template": template,
        }))
        .expect("generator")
    }

    #[test]
    fn selected_services_get_hostnames_a_vip_and_conditions() {
        let services = BTreeMap::from([
            (
                ("default".to_string(), "httpbin".to_string()),
                service("2026-01-01T00:00:00Z", &[("kuma.io/origin", "global")]),
            ),
            (
                ("default".to_string(), "local".to_string()),
                service("2026-01-02T00:00:00Z", &[("kuma.io/origin", "zone")]),
            ),
        ]);
        let generators = BTreeMap::from([
            (
                "global".to_string(),
                generator(
                    "{{ .DisplayName }}.extsvc.mesh.local",
                    &[("kuma.io/origin", "global")],
                ),
            ),
            (
                "broken".to_string(),
                generator("{{ label \"team\" }}.x", &[]),
            ),
        ]);
        let names = compute(&Cidr::default(), &services, &generators);
        let httpbin = &names[&("default".into(), "httpbin".into())];
        assert_eq!(
            httpbin.hostnames().collect::<Vec<_>>(),
            ["httpbin.extsvc.mesh.local"]
        );
        assert!(httpbin.vip.is_some());
        let status = httpbin.status();
        assert_eq!(
            status["addresses"][0]["hostnameGeneratorRef"]["coreName"],
            "global"
        );
        assert_eq!(
            status["hostnameGenerators"][0]["conditions"][0]["reason"], "TemplateError",
            "{status}"
        );
        let local = &names[&("default".into(), "local".into())];
        assert_eq!(
            local.hostnames().count(),
            0,
            "not selected by the global generator"
        );
    }

    #[test]
    fn the_older_service_keeps_a_colliding_hostname() {
        let services = BTreeMap::from([
            (("a".to_string(), "web".to_string()), service("2", &[])),
            (("b".to_string(), "web".to_string()), service("1", &[])),
        ]);
        let generators = BTreeMap::from([("g".to_string(), generator("{{ .Name }}.ext", &[]))]);
        let names = compute(&Cidr::default(), &services, &generators);
        assert_eq!(names[&("b".into(), "web".into())].hostnames().count(), 1);
        let loser = &names[&("a".into(), "web".into())];
        assert_eq!(loser.hostnames().count(), 0);
        assert_eq!(
            loser.status()["hostnameGenerators"][0]["conditions"][0]["reason"],
            "Collision"
        );
    }
}
