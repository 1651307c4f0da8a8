//! The world itself: the zone's resources as its readers use them, with the endpoints of each
//! service indexed, and how one resource's change applies to it (and what depended on it).

use std::collections::{BTreeMap, BTreeSet};

use atoll_model::types::{
    DataplaneSpec, HostnameGeneratorSpec, InboundState, MeshExternalServiceSpec, MeshGatewaySpec,
    MeshHttpRouteSpec, MeshSpec, MeshTcpRouteSpec, SERVICE_TAG, Tags, TargetKind, TargetRef,
    ZoneEgressSpec, ZoneIngressSpec,
};
use atoll_model::{Kind, Resource, Spec};

use super::Dep;
use crate::naming::EGRESS_NAME;

/// (mesh, name)
pub type Named = (String, String);

/// One instance of a service: where to connect and the inbound's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: String,
    pub port: u32,
    pub service_port: u32,
    pub tags: Tags,
}

/// The zone holds one, shared by its readers ([`super::Shared`]); a clone is for tests.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub meshes: BTreeMap<String, MeshSpec>,
    pub gateways: BTreeMap<Named, MeshGatewaySpec>,
    pub http_routes: BTreeMap<Named, MeshHttpRouteSpec>,
    pub tcp_routes: BTreeMap<Named, MeshTcpRouteSpec>,
    pub dataplanes: BTreeMap<Named, DataplaneSpec>,
    pub secrets: BTreeMap<Named, Vec<u8>>,
    /// (mesh, service) to its ready instances, keyed by (dataplane, inbound port).
    pub endpoints: BTreeMap<Named, BTreeMap<(String, u32), Endpoint>>,
    /// ZoneIngresses by name: other zones' (synced from the global) and this zone's own.
    pub ingresses: BTreeMap<String, ZoneIngressSpec>,
    /// This zone's name, to tell its own ingress from other zones'.
    pub local_zone: String,
    /// This zone's ZoneEgresses (egresses are not synced between zones).
    pub egresses: BTreeMap<String, ZoneEgressSpec>,
    /// Each Mesh's labels (its cross-zone mode, `atoll.io/cross-zone-mode`).
    pub mesh_labels: BTreeMap<String, Tags>,
    /// MeshExternalServices with the metadata hostnames and VIPs are derived from.
    pub external_services: BTreeMap<Named, ExternalService>,
    /// HostnameGenerators by name.
    pub hostname_generators: BTreeMap<String, HostnameGeneratorSpec>,
    /// Policies by mesh, in (type, name) order.
    pub policies: BTreeMap<String, BTreeMap<(Kind, String), crate::policy::rules::Policy>>,
    /// Where MeshExternalService VIPs come from (`KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR`).
    pub vip_cidr: crate::external::vip::Cidr,
    /// Hostnames and VIPs, computed on first use after a MeshExternalService or
    /// HostnameGenerator changed.
    names: std::sync::OnceLock<BTreeMap<Named, crate::external::names::ServiceNames>>,
}

/// A MeshExternalService as the builder and the name allocator read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalService {
    pub spec: MeshExternalServiceSpec,
    pub labels: Tags,
    /// RFC 3339; older services keep their VIP when two hash to the same address.
    pub creation_time: String,
}

/// Another zone's ingress offering a service: where to connect and how many instances it has.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteIngress {
    pub zone: String,
    pub address: String,
    pub port: u32,
    pub instances: u32,
    /// The instances' own `ip:port`, for mode `none`.
    pub endpoints: Vec<String>,
}

/// The kinds the builder reads.
pub const KINDS: [Kind; 20] = atoll_model::with_policies([
    Kind::Mesh,
    Kind::MeshGateway,
    Kind::MeshHttpRoute,
    Kind::MeshTcpRoute,
    Kind::Dataplane,
    Kind::Secret,
    Kind::ZoneIngress,
    Kind::ZoneEgress,
    Kind::MeshExternalService,
    Kind::HostnameGenerator,
]);

fn gateway_target(target: Option<&TargetRef>) -> Option<&str> {
    target
        .filter(|t| t.kind == TargetKind::MeshGateway)
        .map(|t| t.name.as_str())
}

/// Replaces the route `key` in `routes` with `new` (`None`: deleted); returns what the old and
/// the new route touched: the gateway each targets, or its mesh's sidecar routes.
fn replace_route<R: Clone>(
    routes: &mut BTreeMap<Named, R>,
    key: Named,
    new: Option<&R>,
    target: impl Fn(&R) -> Option<&TargetRef>,
) -> Vec<Dep> {
    let mesh = key.0.clone();
    let old = match new {
        Some(r) => routes.insert(key, r.clone()),
        None => routes.remove(&key),
    };
    old.iter()
        .chain(new)
        .map(|r| match gateway_target(target(r)) {
            Some(gw) => Dep::GatewayRoutes(mesh.clone(), gw.to_string()),
            None => Dep::SidecarRoutes(mesh.clone()),
        })
        .collect()
}

impl World {
    /// Sets `(kind, mesh, name)` to `resource` (`None`: deleted); returns what depended on the
    /// old or the new value.
    pub fn apply(
        &mut self,
        kind: Kind,
        mesh: Option<&str>,
        name: &str,
        resource: Option<&Resource>,
    ) -> BTreeSet<Dep> {
        let mesh_name = mesh.unwrap_or_default().to_string();
        let key = (mesh_name.clone(), name.to_string());
        let spec = resource.map(|r| &r.spec);
        let mut touched = BTreeSet::new();
        match kind {
            Kind::Mesh => {
                touched.insert(Dep::Mesh(name.to_string()));
                touched.insert(Dep::Meshes);
                match resource {
                    Some(r) => self
                        .mesh_labels
                        .insert(name.to_string(), r.meta.labels.clone()),
                    None => self.mesh_labels.remove(name),
                };
                match spec {
                    Some(Spec::Mesh(m)) => self.meshes.insert(name.to_string(), m.clone()),
                    _ => self.meshes.remove(name),
                };
            }
            Kind::MeshGateway => {
                touched.insert(Dep::Gateways(mesh_name));
                match spec {
                    Some(Spec::MeshGateway(g)) => self.gateways.insert(key, g.clone()),
                    _ => self.gateways.remove(&key),
                };
            }
            Kind::MeshHttpRoute => {
                let new = match spec {
                    Some(Spec::MeshHttpRoute(r)) => Some(r),
                    _ => None,
                };
                touched.extend(replace_route(&mut self.http_routes, key, new, |r| {
                    r.target_ref.as_ref()
                }));
            }
            Kind::MeshTcpRoute => {
                let new = match spec {
                    Some(Spec::MeshTcpRoute(r)) => Some(r),
                    _ => None,
                };
                touched.extend(replace_route(&mut self.tcp_routes, key, new, |r| {
                    r.target_ref.as_ref()
                }));
            }
            Kind::Dataplane => {
                touched.insert(Dep::Dataplane(mesh_name.clone(), name.to_string()));
                let old = match spec {
                    Some(Spec::Dataplane(d)) => self.dataplanes.insert(key.clone(), d.clone()),
                    _ => self.dataplanes.remove(&key),
                };
                // Endpoints: drop this Dataplane's old instances, add its new ones.
                if let Some(old) = old {
                    for service in services_of(&old) {
                        if let Some(set) = self
                            .endpoints
                            .get_mut(&(mesh_name.clone(), service.clone()))
                        {
                            set.retain(|(dp, _), _| dp != name);
                            if set.is_empty() {
                                self.endpoints.remove(&(mesh_name.clone(), service.clone()));
                            }
                        }
                        touched.insert(Dep::Service(mesh_name.clone(), service));
                    }
                }
                if let Some(Spec::Dataplane(new)) = spec {
                    for service in services_of(new) {
                        touched.insert(Dep::Service(mesh_name.clone(), service));
                    }
                    for (service, endpoint) in endpoints_of(new) {
                        touched.insert(Dep::Service(mesh_name.clone(), service.clone()));
                        self.endpoints
                            .entry((mesh_name.clone(), service))
                            .or_default()
                            .insert((name.to_string(), endpoint.port), endpoint);
                    }
                }
            }
            Kind::ZoneIngress => {
                let new = match spec {
                    Some(Spec::ZoneIngress(z)) => Some(z.clone()),
                    _ => None,
                };
                let old = match &new {
                    Some(z) => self.ingresses.insert(name.to_string(), z.clone()),
                    None => self.ingresses.remove(name),
                };
                for z in old.iter().chain(new.iter()) {
                    for s in &z.available_services {
                        if let Some(service) = s.tags.get(SERVICE_TAG) {
                            touched.insert(Dep::Service(s.mesh.clone(), service.clone()));
                        }
                    }
                }
            }
            Kind::ZoneEgress => {
                // The egress proxy itself (its node has no mesh) and whoever sends through it.
                touched.insert(Dep::Dataplane(String::new(), name.to_string()));
                touched.insert(Dep::Egresses);
                // Any proxy may route through the egress: every service is touched.
                touched.extend(
                    self.endpoints
                        .keys()
                        .map(|(m, s)| Dep::Service(m.clone(), s.clone())),
                );
                touched.extend(self.ingresses.values().flat_map(|z| {
                    z.available_services.iter().filter_map(|s| {
                        Some(Dep::Service(
                            s.mesh.clone(),
                            s.tags.get(SERVICE_TAG)?.clone(),
                        ))
                    })
                }));
                match spec {
                    Some(Spec::ZoneEgress(e)) => self.egresses.insert(name.to_string(), e.clone()),
                    _ => self.egresses.remove(name),
                };
            }
            Kind::MeshExternalService => {
                self.names = Default::default();
                touched.insert(Dep::ExternalService(mesh_name, name.to_string()));
                // Hostnames and VIPs depend on the whole set (collisions, selectors).
                touched.insert(Dep::ExternalNames);
                match (resource, spec) {
                    (Some(r), Some(Spec::MeshExternalService(e))) => self.external_services.insert(
                        key,
                        ExternalService {
                            spec: e.clone(),
                            labels: r.meta.labels.clone(),
                            creation_time: r.meta.creation_time.clone().unwrap_or_default(),
                        },
                    ),
                    _ => self.external_services.remove(&key),
                };
            }
            Kind::HostnameGenerator => {
                self.names = Default::default();
                touched.insert(Dep::ExternalNames);
                match spec {
                    Some(Spec::HostnameGenerator(g)) => {
                        self.hostname_generators.insert(name.to_string(), g.clone())
                    }
                    _ => self.hostname_generators.remove(name),
                };
            }
            kind if kind.is_policy() => {
                touched.insert(Dep::Policies(mesh_name.clone()));
                let in_mesh = self.policies.entry(mesh_name.clone()).or_default();
                match spec.and_then(|s| s.policy()) {
                    Some(view) => {
                        in_mesh.insert(
                            (kind, name.to_string()),
                            crate::policy::rules::Policy {
                                kind,
                                name: name.to_string(),
                                view,
                            },
                        );
                    }
                    None => {
                        in_mesh.remove(&(kind, name.to_string()));
                    }
                }
                if in_mesh.is_empty() {
                    self.policies.remove(&mesh_name);
                }
            }
            Kind::Secret => {
                touched.insert(Dep::Secret(mesh_name, name.to_string()));
                match spec.map(|s| match s {
                    Spec::Secret(secret) => secret.bytes().ok(),
                    _ => None,
                }) {
                    Some(Some(bytes)) => self.secrets.insert(key, bytes),
                    _ => self.secrets.remove(&key),
                };
            }
            _ => {}
        }
        touched
    }
}

impl World {
    /// A Mesh's routing switches (all off when the Mesh or its `routing` is absent).
    pub fn routing(&self, mesh: &str) -> atoll_model::types::MeshRouting {
        self.meshes
            .get(mesh)
            .and_then(|m| m.routing.clone())
            .unwrap_or_default()
    }

    /// Every MeshExternalService's hostnames and VIP.
    pub fn external_names(&self) -> &BTreeMap<Named, crate::external::names::ServiceNames> {
        self.names.get_or_init(|| {
            crate::external::names::compute(
                &self.vip_cidr,
                &self.external_services,
                &self.hostname_generators,
            )
        })
    }

    /// This zone's native egress (the SNI router carrying cross-zone traffic): (address, port).
    pub fn local_egress(&self) -> Option<(String, u32)> {
        self.egresses
            .iter()
            .filter(|(name, _)| *name == EGRESS_NAME)
            .map(|(_, e)| e)
            .filter(|e| e.zone.as_deref().is_none_or(|z| z == self.local_zone))
            .find_map(|e| {
                let net = e.networking.as_ref()?;
                Some((net.address.clone(), net.port))
            })
    }

    /// This zone's egresses run by `atoll-dp` (Envoy; every one but the native egress):
    /// (name, address, port).
    pub fn envoy_egresses(&self) -> Vec<(String, String, u32)> {
        self.egresses
            .iter()
            .filter(|(name, _)| *name != EGRESS_NAME)
            .filter(|(_, e)| e.zone.as_deref().is_none_or(|z| z == self.local_zone))
            .filter_map(|(name, e)| {
                let net = e.networking.as_ref()?;
                Some((name.clone(), net.address.clone(), net.port))
            })
            .collect()
    }

    /// Other zones' ingresses that offer `service` in `mesh`.
    pub fn remote_ingresses(&self, mesh: &str, service: &str) -> Vec<RemoteIngress> {
        self.ingresses
            .values()
            .filter_map(|z| {
                let zone = z.zone.clone().filter(|zone| *zone != self.local_zone)?;
                let net = z.networking.as_ref()?;
                let offered: Vec<_> = z
                    .available_services
                    .iter()
                    .filter(|s| {
                        s.mesh == mesh && s.tags.get(SERVICE_TAG).is_some_and(|s| s == service)
                    })
                    .collect();
                let instances: u32 = offered.iter().map(|s| s.instances).sum();
                let endpoints = offered.iter().flat_map(|s| s.endpoints.clone()).collect();
                (instances > 0).then(|| RemoteIngress {
                    zone,
                    address: net
                        .advertised_address
                        .clone()
                        .unwrap_or_else(|| net.address.clone()),
                    port: net.advertised_port.unwrap_or(net.port),
                    instances,
                    endpoints,
                })
            })
            .collect()
    }
}

/// Every service a Dataplane offers: its inbounds', or a gateway's own (what cross-mesh
/// clients of the gateway depend on).
pub fn services_of(dp: &DataplaneSpec) -> BTreeSet<String> {
    crate::policy::rules::proxy_tags(dp)
        .into_iter()
        .filter_map(|tags| tags.get(SERVICE_TAG).cloned())
        .collect()
}

/// The ready instances a Dataplane offers: (service, endpoint).
fn endpoints_of(dp: &DataplaneSpec) -> Vec<(String, Endpoint)> {
    let Some(net) = dp.networking.as_ref() else {
        return Vec::new();
    };
    net.inbound
        .iter()
        .filter(|i| !matches!(i.state, InboundState::NotReady | InboundState::Ignored))
        .filter(|i| i.health.as_ref().is_none_or(|h| h.ready))
        .filter_map(|i| {
            let service = i.tags.get(SERVICE_TAG)?.clone();
            let address = i
                .address
                .clone()
                .or_else(|| net.advertised_address.clone())
                .unwrap_or_else(|| net.address.clone());
            Some((
                service,
                Endpoint {
                    address,
                    port: i.port,
                    service_port: i.service_port.unwrap_or(i.port),
                    tags: i.tags.clone(),
                },
            ))
        })
        .collect()
}
