//! One proxy's configuration from the world: which role its Dataplane has (sidecar or
//! built-in gateway), the generators for that role, the clusters and endpoints its listeners
//! need, mesh mTLS secrets, and the list of inputs it read (for the dependency index).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use atoll_model::types::{
    BackendRef, DataSource, DataplaneGatewayType, DataplaneSpec, SERVICE_TAG, Tags, TargetKind,
};
use envoy_types::pb::envoy::config::core::v3::TransportSocket;

use super::deps::{Dep, ProxyId};
use super::identity::Identities;
use super::locality::{self, Destinations, Remote};
use super::meta::ProxyMeta;
use super::{data_source, mesh_ca, outbound_routes};
use crate::world::{World, mtls_backend};
use crate::xds::gateway::{self, GatewayInput};
use crate::xds::sidecar::{self, OutboundTarget, Protocol, SidecarInput};
use crate::xds::snapshot::Snapshot;
use crate::xds::{clusters, routes, tls};

/// A computed configuration.
#[derive(Debug, Default)]
pub struct Built {
    pub snapshot: Snapshot,
    pub deps: BTreeSet<Dep>,
    /// Why parts of the configuration are missing, for the proxy's insight and the log.
    pub problems: Vec<String>,
}

pub(super) struct Context<'a> {
    pub(super) world: &'a World,
    pub(super) proxy: &'a ProxyId,
    /// What the proxy told about itself when it connected.
    pub(super) meta: Option<&'a ProxyMeta>,
    pub(super) built: Built,
    pub(super) mtls: bool,
    permissive: bool,
    /// The destination service of each cluster built so far (mesh services, their subsets
    /// and ports, external services): what cluster-level policies are looked up by.
    pub(super) cluster_services: BTreeMap<String, String>,
    /// Where each mesh-service cluster's instances are, for locality rules.
    pub(super) cluster_endpoints: BTreeMap<String, Destinations>,
    has_balancing: Option<bool>,
}

impl<'a> Context<'a> {
    /// A context for a proxy that is in no mesh of its own (a zone egress).
    pub(super) fn new(world: &'a World, meta: Option<&'a ProxyMeta>, proxy: &'a ProxyId) -> Self {
        Context {
            world,
            proxy,
            meta,
            built: Built::default(),
            mtls: false,
            permissive: false,
            cluster_services: BTreeMap::new(),
            cluster_endpoints: BTreeMap::new(),
            has_balancing: None,
        }
    }
}

impl Context<'_> {
    pub(super) fn mesh(&self) -> &str {
        &self.proxy.0
    }

    /// Records why part of the configuration is missing, once.
    /// Issues a workload certificate of `mesh` naming `uris` and adds it and the mesh CA as
    /// secrets; false, with the reason among the problems, when it cannot.
    pub(super) fn add_identity(
        &mut self,
        identities: &mut Identities,
        mesh: &str,
        uris: Vec<String>,
        validity: Duration,
        now: Instant,
    ) -> bool {
        let bundle = match mesh_ca::bundle(self.world, mesh, &mut self.built.deps) {
            Ok(bundle) => bundle,
            Err(problem) => {
                self.problem(problem);
                return false;
            }
        };
        match identities.get_in(self.proxy, mesh, &bundle, uris, validity, now) {
            Ok(issued) => {
                let ca =
                    atoll_tls::split_pem_bundle(std::str::from_utf8(&bundle).unwrap_or_default()).0;
                self.built.snapshot.add_secret(&tls::identity_secret(
                    mesh,
                    &issued.cert_pem,
                    &issued.key_pem,
                ));
                self.built
                    .snapshot
                    .add_secret(&tls::mesh_ca_secret(mesh, &ca));
                true
            }
            Err(reason) => {
                self.problem(reason);
                false
            }
        }
    }

    pub(super) fn problem(&mut self, problem: String) {
        if !self.built.problems.contains(&problem) {
            self.built.problems.push(problem);
        }
    }

    /// The cluster a route's backend sends to, created here: routes name it
    /// [`routes::cluster_name`], so an arm must create it under that name. `None`, with a
    /// problem, for a backend this proxy cannot reach.
    pub(super) fn backend_cluster(&mut self, backend: &BackendRef) -> Option<String> {
        let cluster = routes::cluster_name(backend);
        match &backend.kind {
            TargetKind::MeshService | TargetKind::Unset => {
                self.service_cluster(&cluster, &backend.name, backend.port, None)
            }
            TargetKind::MeshServiceSubset => {
                self.subset_cluster(&cluster, &backend.name, backend.port, &backend.tags)
            }
            TargetKind::MeshExternalService => {
                return self.external_cluster(&backend.name).map(|(c, _)| c);
            }
            other => {
                self.problem(format!(
                    "backend {:?}: kind {} cannot be routed to",
                    backend.name,
                    other.as_str()
                ));
                return None;
            }
        }
        Some(cluster)
    }

    /// Clusters for every backend of a route. One that cannot be reached still gets a cluster,
    /// without endpoints, so the routes naming it stay valid and answer 503.
    pub(super) fn route_backends<'b>(
        &mut self,
        backends: impl IntoIterator<Item = &'b BackendRef>,
    ) {
        for backend in backends {
            if self.backend_cluster(backend).is_none() {
                let cluster = routes::cluster_name(backend);
                self.built
                    .snapshot
                    .add_cluster(&clusters::eds(&cluster, None));
                self.built
                    .snapshot
                    .add_endpoints(&clusters::load_assignment(&cluster, &[]));
            }
        }
    }

    /// Mesh mTLS to `service`, with the SNI that other zones' ingresses route by (the same
    /// name for local instances, whose sidecars ignore it).
    fn upstream_tls(&self, service: &str, port: Option<u32>) -> Option<TransportSocket> {
        self.mtls.then(|| {
            tls::outbound_mtls(
                self.mesh(),
                service,
                &crate::naming::sni::service_sni(self.mesh(), service, port),
            )
        })
    }

    /// An EDS cluster for `service` (instances filtered to `port` when given) and its
    /// endpoints.
    fn service_cluster(
        &mut self,
        cluster: &str,
        service: &str,
        port: Option<u32>,
        mode: Option<CrossZoneMode>,
    ) {
        self.eds_cluster(cluster, service, port, &Tags::new(), mode);
    }

    /// An EDS cluster for the instances of `service` whose inbound tags include `tags`.
    /// Only this zone's: other zones' ingresses route by service and port, not by tags.
    fn subset_cluster(&mut self, cluster: &str, service: &str, port: Option<u32>, tags: &Tags) {
        self.eds_cluster(cluster, service, port, tags, None);
    }

    fn eds_cluster(
        &mut self,
        cluster: &str,
        service: &str,
        port: Option<u32>,
        subset: &Tags,
        mode: Option<CrossZoneMode>,
    ) {
        let mesh = self.mesh().to_string();
        self.built
            .deps
            .insert(Dep::Service(mesh.clone(), service.to_string()));
        self.cluster_services
            .insert(cluster.to_string(), service.to_string());
        let local: Vec<(String, u32, Tags)> = self
            .world
            .endpoints
            .get(&(mesh.clone(), service.to_string()))
            .map(|set| {
                set.values()
                    .filter(|e| port.is_none_or(|p| e.port == p || e.service_port == p))
                    .filter(|e| selects(subset, &e.tags))
                    .map(|e| (e.address.clone(), e.port, e.tags.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut found = Destinations {
            local,
            ..Default::default()
        };
        // Other zones' instances, through their ingress, weighted by how many there are. Only
        // with mTLS: the ingress routes by the SNI of the mesh's TLS.
        if self.mtls && subset.is_empty() {
            let remote = self.world.remote_ingresses(&mesh, service);
            // Precedence: the outbound's tag, the Mesh's label, `routing.zoneEgress`, remote.
            let mesh_mode = self
                .world
                .mesh_labels
                .get(&mesh)
                .and_then(|labels| labels.get(MODE_TAG))
                .and_then(|m| CrossZoneMode::parse(m));
            let mesh_local = self.world.routing(&mesh).zone_egress;
            let chosen = mode.or(mesh_mode).unwrap_or(if mesh_local {
                CrossZoneMode::Local
            } else {
                CrossZoneMode::Remote
            });
            match chosen {
                _ if remote.is_empty() => {}
                CrossZoneMode::Local => {
                    // Through this zone's egress, weighted by the remote instances behind it.
                    // Without an egress, fail closed rather than go direct (kumahq/kuma#7556).
                    match self.world.local_egress() {
                        Some((address, port)) => {
                            let instances = remote.iter().map(|r| r.instances).sum();
                            found.egress = Some((address, port, instances));
                            // The zones behind it, for locality rules that name zones.
                            found.remote = remote
                                .into_iter()
                                .map(|r| Remote {
                                    zone: r.zone,
                                    ..Default::default()
                                })
                                .collect();
                        }
                        None => {
                            let problem = format!(
                                "mesh {mesh:?} sends cross-zone traffic through a zone egress (local mode) and this zone has none: {service}'s instances in other zones are not used"
                            );
                            if !self.built.problems.contains(&problem) {
                                self.built.problems.push(problem);
                            }
                        }
                    }
                }
                CrossZoneMode::Direct => {
                    // Straight to the remote instances (a flat network), mTLS end to end.
                    for r in remote {
                        for endpoint in r.endpoints {
                            if let Some((ip, port)) = endpoint.rsplit_once(':')
                                && let Ok(port) = port.parse()
                            {
                                found.remote.push(Remote {
                                    zone: r.zone.clone(),
                                    address: ip.trim_matches(['[', ']']).to_string(),
                                    port,
                                    weight: 1,
                                });
                            }
                        }
                    }
                }
                CrossZoneMode::Remote => {
                    for r in remote {
                        found.remote.push(Remote {
                            zone: r.zone,
                            address: r.address,
                            port: r.port,
                            weight: r.instances,
                        });
                    }
                }
            }
        }
        let eds = clusters::eds(cluster, self.upstream_tls(service, port));
        let eds = if sidecar::speaks_http2(self.service_protocol(service).as_ref()) {
            clusters::with_http2(eds)
        } else {
            eds
        };
        self.built.snapshot.add_cluster(&eds);
        let plan = locality::mesh_default(&found, locality_aware(self.world, &mesh));
        self.built
            .snapshot
            .add_endpoints(&clusters::load_assignment_by_locality(
                cluster,
                &plan.tiers,
                plan.overprovisioning,
            ));
        if self.balancing_policies() {
            self.cluster_endpoints.insert(cluster.to_string(), found);
        }
    }

    /// Whether the mesh has a MeshLoadBalancingStrategy, which needs where each cluster's
    /// instances are; without one that is not kept.
    fn balancing_policies(&mut self) -> bool {
        let world = self.world;
        let mesh = &self.proxy.0;
        *self.has_balancing.get_or_insert_with(|| {
            let kind = atoll_model::Kind::MeshLoadBalancingStrategy;
            world.policies.get(mesh).is_some_and(|policies| {
                policies
                    .range((kind, String::new())..)
                    .next()
                    .is_some_and(|((k, _), _)| *k == kind)
            })
        })
    }

    fn protocol_of(&self, service: &str) -> Protocol {
        let tag = self
            .world
            .endpoints
            .get(&(self.mesh().to_string(), service.to_string()))
            .and_then(|set| set.values().next())
            .and_then(|e| e.tags.get(atoll_model::types::PROTOCOL_TAG).cloned());
        Protocol::from_tag(tag.as_ref())
    }

    /// The CA certificate (PEM) of `mesh` when it has mTLS and its CA has arrived; records the
    /// dependencies either way.
    fn mesh_ca(&mut self, mesh: &str) -> Option<String> {
        let bundle = mesh_ca::bundle(self.world, mesh, &mut self.built.deps).ok()?;
        let (certs, _) = atoll_tls::split_pem_bundle(std::str::from_utf8(&bundle).ok()?);
        (!certs.is_empty()).then_some(certs)
    }

    /// Every mTLS mesh's CA in one secret: whom a crossMesh listener accepts.
    fn add_cross_mesh_ca(&mut self) {
        self.built.deps.insert(Dep::Meshes);
        let meshes: Vec<String> = self.world.meshes.keys().cloned().collect();
        let bundle: String = meshes.iter().filter_map(|m| self.mesh_ca(m)).collect();
        self.built
            .snapshot
            .add_secret(&tls::cross_mesh_ca_secret(&bundle));
    }

    /// An outbound to a crossMesh gateway in `target_mesh` whose Dataplanes carry
    /// `kuma.io/service: service`: their crossMesh listener ports, over mTLS with our identity
    /// and their mesh's CA.
    fn cross_mesh_cluster(&mut self, cluster: &str, target_mesh: &str, service: &str) {
        self.built
            .deps
            .insert(Dep::Service(target_mesh.to_string(), service.to_string()));
        self.built
            .deps
            .insert(Dep::Gateways(target_mesh.to_string()));
        let Some(ca) = self.mesh_ca(target_mesh) else {
            self.built.problems.push(format!(
                "outbound to {service} in mesh {target_mesh}: that mesh has no mTLS CA (yet); cross-mesh traffic needs mTLS on both meshes"
            ));
            return;
        };
        self.built
            .snapshot
            .add_secret(&tls::mesh_ca_secret(target_mesh, &ca));
        let mut endpoints = Vec::new();
        let gateways = self
            .world
            .dataplanes
            .range((target_mesh.to_string(), String::new())..)
            .take_while(|((m, _), _)| m == target_mesh);
        for (_, dp) in gateways {
            let Some(net) = dp.networking.as_ref() else {
                continue;
            };
            let Some(gw) = net.gateway.as_ref() else {
                continue;
            };
            if gw.tags.get(SERVICE_TAG).map(String::as_str) != Some(service) {
                continue;
            }
            let ports = self
                .world
                .gateways
                .range((target_mesh.to_string(), String::new())..)
                .take_while(|((m, _), _)| m == target_mesh)
                .filter(|(_, g)| g.selectors.iter().any(|s| selects(&s.match_tags, &gw.tags)))
                .flat_map(|(_, g)| g.conf.iter().flat_map(|c| &c.listeners))
                .filter(|l| l.cross_mesh)
                .map(|l| l.port);
            for port in ports {
                endpoints.push((net.address.clone(), port, 1));
            }
        }
        // The gateway's instances in other zones, through their ingress (kumahq/kuma#4379).
        for remote in self.world.remote_ingresses(target_mesh, service) {
            endpoints.push((remote.address, remote.port, remote.instances));
        }
        let socket = tls::outbound_mtls_to(
            self.mesh(),
            target_mesh,
            service,
            &crate::naming::sni::service_sni(target_mesh, service, None),
        );
        self.built
            .snapshot
            .add_cluster(&clusters::eds(cluster, Some(socket)));
        self.built
            .snapshot
            .add_endpoints(&clusters::load_assignment(cluster, &endpoints));
    }

    /// Resolves a gateway certificate source to (chain, key).
    fn certificate(
        &self,
        source: &DataSource,
        deps: &mut BTreeSet<Dep>,
    ) -> Result<(String, String), String> {
        let text = data_source::read_pem(self.world, self.mesh(), source, deps)?;
        let (chain, key) = atoll_tls::split_pem_bundle(&text);
        match key {
            Some(key) if !chain.is_empty() => Ok((chain, key)),
            _ => Err("needs a PEM private key and certificate".into()),
        }
    }
}

/// The tag naming the mesh of an outbound's destination (Kuma's).
const MESH_TAG: &str = "kuma.io/mesh";

/// An outbound's tag overriding its mesh's cross-zone routing mode (Atoll's).
pub const MODE_TAG: &str = "atoll.io/cross-zone-mode";

/// How a service's instances in other zones are reached (Consul's mesh-gateway modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossZoneMode {
    /// `remote`: to the remote zone's ingress.
    Remote,
    /// `local`: through this zone's egress, which forwards to the remote ingress.
    Local,
    /// `none`: straight to the remote instances, on a flat network.
    Direct,
}

impl CrossZoneMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "remote" => Some(CrossZoneMode::Remote),
            "local" => Some(CrossZoneMode::Local),
            "none" => Some(CrossZoneMode::Direct),
            _ => None,
        }
    }
}

/// Whether every tag a selector asks for is present with that value.
fn selects(selector: &Tags, tags: &Tags) -> bool {
    selector.iter().all(|(k, v)| tags.get(k) == Some(v))
}

/// Whether `mesh` keeps traffic in the zone while it can (`routing.localityAwareLoadBalancing`).
fn locality_aware(world: &World, mesh: &str) -> bool {
    world.routing(mesh).locality_aware_load_balancing
}

/// Computes `proxy`'s configuration (`meta`: what it told about itself when it connected);
/// `None` when its Dataplane does not exist.
pub fn build(
    world: &World,
    meta: Option<&ProxyMeta>,
    identities: &mut Identities,
    proxy: &ProxyId,
    now: Instant,
) -> Option<Built> {
    let (mesh, name) = proxy;
    if mesh.is_empty() {
        // A node without a mesh is a zone egress run by atoll-dp.
        return super::egress::build(world, meta, identities, proxy, now);
    }
    let dp = world.dataplanes.get(proxy)?;
    let mut cx = Context {
        world,
        proxy,
        meta,
        built: Built::default(),
        mtls: false,
        permissive: mesh_ca::permissive(world, mesh),
        cluster_services: BTreeMap::new(),
        cluster_endpoints: BTreeMap::new(),
        has_balancing: None,
    };
    cx.built.snapshot.dataplane = Some(std::sync::Arc::new(dp.clone()));
    cx.built
        .deps
        .insert(Dep::Dataplane(mesh.clone(), name.clone()));
    cx.built.deps.insert(Dep::Mesh(mesh.clone()));
    let Some(mesh_spec) = world.meshes.get(mesh) else {
        cx.built
            .problems
            .push(format!("mesh {mesh:?} does not exist"));
        return Some(cx.built);
    };
    if let Some((_, validity)) = mtls_backend(mesh_spec) {
        let uris = identity_services(dp)
            .iter()
            .map(|s| tls::spiffe_id(mesh, s))
            .collect();
        cx.mtls = cx.add_identity(identities, mesh, uris, validity, now);
        if !cx.mtls {
            // Never fall back to plain text in a mesh that requires mTLS: no listeners at all.
            return Some(cx.built);
        }
    }
    let is_gateway = dp
        .networking
        .as_ref()
        .and_then(|n| n.gateway.as_ref())
        .is_some_and(|g| g.gateway_type == DataplaneGatewayType::Builtin);
    if is_gateway {
        build_gateway(&mut cx, dp);
    } else {
        build_sidecar(&mut cx, dp);
    }
    Some(cx.built)
}

fn identity_services(dp: &DataplaneSpec) -> Vec<String> {
    let Some(net) = dp.networking.as_ref() else {
        return Vec::new();
    };
    let mut services: Vec<String> = match &net.gateway {
        Some(g) => g.tags.get(SERVICE_TAG).cloned().into_iter().collect(),
        None => net
            .inbound
            .iter()
            .filter_map(|i| i.tags.get(SERVICE_TAG).cloned())
            .collect(),
    };
    services.sort();
    services.dedup();
    services
}

fn build_sidecar(cx: &mut Context<'_>, dp: &DataplaneSpec) {
    let Some(net) = dp.networking.as_ref() else {
        return;
    };
    let mut outbounds = Vec::new();
    let mut local_services = BTreeSet::new();
    let mut modes: std::collections::BTreeMap<String, Option<CrossZoneMode>> = Default::default();
    for outbound in &net.outbound {
        if let Some(backend) = outbound
            .backend_ref
            .as_ref()
            .filter(|b| b.kind == atoll_model::types::TargetKind::MeshExternalService)
        {
            // Left out when unreachable (forbidden, missing): the application's connection is
            // refused rather than sent somewhere unverified.
            if let Some((cluster, protocol)) = cx.external_cluster(&backend.name) {
                outbounds.push(OutboundTarget {
                    address: outbound
                        .address
                        .clone()
                        .unwrap_or_else(|| "127.0.0.1".into()),
                    port: outbound.port,
                    service: backend.name.clone(),
                    cluster,
                    protocol,
                });
            }
            continue;
        }
        let Some(service) = crate::dp_server::inspect::outbound_service(outbound) else {
            cx.built
                .problems
                .push(format!("outbound port {}: names no service", outbound.port));
            continue;
        };
        let address = outbound
            .address
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        // `kuma.io/mesh` naming another mesh: a crossMesh gateway there (HTTP only).
        if let Some(target) = outbound
            .tags
            .get(MESH_TAG)
            .filter(|m| m.as_str() != cx.mesh())
        {
            let cluster = format!("{service}.{target}");
            if cx.mtls {
                cx.cross_mesh_cluster(&cluster, target, &service);
            } else {
                cx.built.problems.push(format!(
                    "outbound port {}: cross-mesh traffic needs mTLS on mesh {}",
                    outbound.port,
                    cx.mesh()
                ));
            }
            outbounds.push(OutboundTarget {
                address,
                port: outbound.port,
                cluster,
                protocol: Protocol::Http,
                service,
            });
            continue;
        }
        // `backendRef.port`: only the instances serving that port, in a cluster of their own.
        let port = outbound
            .backend_ref
            .as_ref()
            .map(|b| b.port)
            .filter(|p| *p != 0);
        let cluster = match port {
            Some(p) => format!("{service}_{p}"),
            None => sidecar::service_cluster(&service),
        };
        local_services.insert((cluster.clone(), service.clone(), port));
        if let Some(text) = outbound.tags.get(MODE_TAG) {
            match CrossZoneMode::parse(text) {
                Some(mode) => {
                    modes.insert(service.clone(), Some(mode));
                }
                None => cx.built.problems.push(format!(
                    "outbound port {}: {MODE_TAG}: {text:?} is not a mode (remote, local or none); the mesh's applies",
                    outbound.port
                )),
            }
        }
        outbounds.push(OutboundTarget {
            address,
            port: outbound.port,
            cluster,
            protocol: cx.protocol_of(&service),
            service,
        });
    }
    let routes = outbound_routes::for_outbounds(cx, dp, &outbounds);
    let out = sidecar::generate(&SidecarInput {
        mesh: cx.mesh(),
        address: &net.address,
        inbounds: &net.inbound,
        outbounds: &outbounds,
        mtls: cx.mtls,
        permissive: cx.permissive,
        routes: &routes,
    });
    for cluster in &out.clusters {
        cx.built.snapshot.add_cluster(cluster);
    }
    for (cluster, service, port) in local_services {
        let mode = modes.get(&service).copied().flatten();
        cx.service_cluster(&cluster, &service, port, mode);
    }
    for listener in &out.listeners {
        cx.built.snapshot.add_listener(listener);
    }
    cx.apply_sidecar_policies(dp, &outbounds);
    if let Some(port) = cx.meta.and_then(|m| m.dns_port) {
        let records = cx.dns_records();
        cx.built
            .snapshot
            .add_listener(&crate::xds::dns::listener(port, &records));
    }
}

fn build_gateway(cx: &mut Context<'_>, dp: &DataplaneSpec) {
    let mesh = cx.mesh().to_string();
    cx.built.deps.insert(Dep::Gateways(mesh.clone()));
    let Some(net) = dp.networking.as_ref() else {
        return;
    };
    let tags = net
        .gateway
        .as_ref()
        .map(|g| g.tags.clone())
        .unwrap_or_default();
    let in_mesh_gateways = cx
        .world
        .gateways
        .range((mesh.clone(), String::new())..)
        .take_while(|((m, _), _)| *m == mesh)
        .map(|((_, n), g)| (n, g));
    let (gateway, spec) = match gateway::binding(in_mesh_gateways, &tags) {
        Ok(bound) => bound,
        Err(problem) => {
            cx.built.problems.push(problem);
            return;
        }
    };
    cx.built
        .deps
        .insert(Dep::GatewayRoutes(mesh.clone(), gateway.clone()));
    let targets = |t: Option<&atoll_model::types::TargetRef>| gateway::targets_gateway(t, gateway);
    let in_mesh = |(m, _): &(String, String)| *m == mesh;
    let http: Vec<(&str, &atoll_model::types::MeshHttpRouteSpec)> = cx
        .world
        .http_routes
        .iter()
        .filter(|(k, r)| in_mesh(k) && targets(r.target_ref.as_ref()))
        .map(|((_, n), r)| (n.as_str(), r))
        .collect();
    let tcp: Vec<_> = cx
        .world
        .tcp_routes
        .iter()
        .filter(|(k, r)| in_mesh(k) && targets(r.target_ref.as_ref()))
        .map(|(_, r)| r)
        .collect();
    let has_cross_mesh = spec
        .conf
        .iter()
        .flat_map(|c| &c.listeners)
        .any(|l| l.cross_mesh);
    let cross_mesh_tls = (has_cross_mesh && cx.mtls).then(|| {
        cx.add_cross_mesh_ca();
        tls::cross_mesh_inbound(&mesh)
    });
    let mut secret_deps = BTreeSet::new();
    let out = {
        let deps = std::cell::RefCell::new(&mut secret_deps);
        let resolve = |source: &DataSource| cx.certificate(source, &mut deps.borrow_mut());
        gateway::generate(&GatewayInput {
            mesh: &mesh,
            gateway,
            address: &net.address,
            dataplane_tags: &tags,
            spec,
            http_routes: &http,
            tcp_routes: &tcp,
            certificate: &resolve,
            cross_mesh_tls: cross_mesh_tls.clone(),
        })
    };
    cx.built.deps.extend(secret_deps);
    cx.built.problems.extend(out.problems);
    cx.route_backends(out.backends.values());
    for listener in &out.listeners {
        cx.built.snapshot.add_listener(listener);
    }
    let scope = crate::policy::rules::GatewayScope {
        gateway: gateway.clone(),
        hosts: out.hosts,
    };
    cx.apply_gateway_policies(dp, &scope);
}
