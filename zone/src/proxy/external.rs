//! A proxy's MeshExternalServices: the cluster and secrets for each one it reaches (from a
//! Dataplane outbound or a route backend), straight from the sidecar or, with
//! `routing.zoneEgress`, through the zone's egress; the Mesh switch that forbids them all; and
//! the sidecar's DNS answers for their hostnames.

use std::collections::BTreeSet;

use atoll_model::types::{DataSource, MeshExternalServiceSpec};

use super::build::Context;
use super::deps::Dep;
use crate::xds::external::{self, ExternalInput, TlsMaterial};
use crate::xds::sidecar::Protocol;

impl Context<'_> {
    /// Adds the cluster of MeshExternalService `name` in this proxy's mesh; its name and
    /// protocol, or `None` (with the reason among the problems) when it cannot be reached.
    pub(super) fn external_cluster(&mut self, name: &str) -> Option<(String, Protocol)> {
        let mesh = self.mesh().to_string();
        let spec = self.external_service(&mesh, name)?;
        let cluster = external::cluster_name(name);
        let through_egress = self.world.routing(&mesh).zone_egress;
        if through_egress {
            self.via_egress(&mesh, name, &spec, &cluster)?;
        } else {
            self.originate(&mesh, name, &spec, &cluster)?;
        }
        self.cluster_services
            .insert(cluster.clone(), name.to_string());
        Some((cluster, external::protocol(&spec)))
    }

    /// MeshExternalService `name` of `mesh` when it may be reached: recorded as a dependency,
    /// checked against the Mesh switch.
    pub(super) fn external_service(
        &mut self,
        mesh: &str,
        name: &str,
    ) -> Option<MeshExternalServiceSpec> {
        self.built.deps.insert(Dep::Mesh(mesh.to_string()));
        self.built
            .deps
            .insert(Dep::ExternalService(mesh.to_string(), name.to_string()));
        let forbidden = self
            .world
            .routing(mesh)
            .default_forbid_mesh_external_service_access;
        if forbidden {
            self.problem(format!(
                "MeshExternalService {name}: mesh {mesh:?} forbids traffic to external services (routing.defaultForbidMeshExternalServiceAccess)"
            ));
            return None;
        }
        match self
            .world
            .external_services
            .get(&(mesh.to_string(), name.to_string()))
        {
            Some(service) => Some(service.spec.clone()),
            None => {
                self.problem(format!(
                    "MeshExternalService {name} does not exist in mesh {mesh:?}"
                ));
                None
            }
        }
    }

    /// The cluster `cluster` reaching the service itself, TLS originated here.
    pub(super) fn originate(
        &mut self,
        mesh: &str,
        name: &str,
        spec: &MeshExternalServiceSpec,
        cluster: &str,
    ) -> Option<()> {
        let material = match self.tls_material(mesh, spec) {
            Ok(material) => material,
            Err(why) => {
                self.problem(format!("MeshExternalService {name}: {why}; left out"));
                return None;
            }
        };
        let system_ca = self.meta.and_then(|m| m.system_ca_path.clone());
        let out = external::generate(&ExternalInput {
            mesh,
            name,
            cluster,
            spec,
            material,
            system_ca: system_ca.is_some(),
        });
        for problem in out.problems {
            self.problem(problem);
        }
        let built = out.cluster?;
        if let Some(path) = system_ca.filter(|_| out.uses_system_ca) {
            self.built
                .snapshot
                .add_secret(&external::system_ca_secret(&path));
        }
        for secret in &out.secrets {
            self.built.snapshot.add_secret(secret);
        }
        self.built.snapshot.add_cluster(&built);
        Some(())
    }

    /// The cluster `cluster` reaching the service through this zone's egresses, over mesh
    /// mTLS; without one, nothing (fail closed rather than leave the mesh from the sidecar).
    fn via_egress(
        &mut self,
        mesh: &str,
        name: &str,
        spec: &MeshExternalServiceSpec,
        cluster: &str,
    ) -> Option<()> {
        self.built.deps.insert(Dep::Egresses);
        let egresses = self.world.envoy_egresses();
        if egresses.is_empty() {
            self.problem(format!(
                "MeshExternalService {name}: mesh {mesh:?} sends external traffic through the zone egress (routing.zoneEgress) and this zone has no egress run by atoll-dp; not reached"
            ));
            return None;
        }
        let http2 = external::speaks_http2(spec);
        self.built
            .snapshot
            .add_cluster(&crate::xds::egress::to_egress(
                cluster, mesh, name, http2, &egresses,
            ));
        Some(())
    }

    /// Resolves the CA and client certificate a MeshExternalService's TLS names (Secrets of
    /// `mesh`).
    fn tls_material(
        &mut self,
        mesh: &str,
        spec: &MeshExternalServiceSpec,
    ) -> Result<TlsMaterial, String> {
        let Some(verification) = spec
            .tls
            .as_ref()
            .filter(|t| t.enabled)
            .and_then(|t| t.verification.as_ref())
        else {
            return Ok(TlsMaterial::default());
        };
        let mut deps = BTreeSet::new();
        let mut pem = |field: &str, source: &Option<DataSource>| {
            source
                .as_ref()
                .map(|s| {
                    super::data_source::read_pem(self.world, mesh, s, &mut deps)
                        .map_err(|e| format!("tls.verification.{field}: {e}"))
                })
                .transpose()
        };
        let ca = pem("caCert", &verification.ca_cert);
        let cert = pem("clientCert", &verification.client_cert);
        let key = pem("clientKey", &verification.client_key);
        self.built.deps.extend(deps);
        let client = match (cert?, key?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("clientCert and clientKey go together".into()),
        };
        Ok(TlsMaterial { ca: ca?, client })
    }

    /// The `(hostname, VIP)` records of this proxy's mesh, for its DNS listener.
    pub(super) fn dns_records(&mut self) -> Vec<(String, String)> {
        self.built.deps.insert(Dep::ExternalNames);
        let mesh = self.mesh().to_string();
        self.world
            .external_names()
            .range((mesh.clone(), String::new())..)
            .take_while(|((m, _), _)| *m == mesh)
            .filter_map(|(_, names)| Some((names, names.vip?)))
            .flat_map(|(names, vip)| {
                names
                    .hostnames()
                    .map(move |h| (h.to_string(), vip.to_string()))
            })
            .collect()
    }
}
