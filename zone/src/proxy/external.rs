//! A proxy's MeshExternalServices: the cluster and secrets for each one it reaches (from a
//! Dataplane outbound or a route backend), the Mesh switch that forbids them all, and the
//! sidecar's DNS answers for their hostnames.

use std::collections::BTreeSet;

use atoll_model::types::DataSource;

use super::build::Context;
use super::deps::Dep;
use crate::xds::external::{self, ExternalInput, TlsMaterial};
use crate::xds::sidecar::Protocol;

impl Context<'_> {
    /// Adds the cluster of MeshExternalService `name` in this proxy's mesh; its name and
    /// protocol, or `None` (with the reason among the problems) when it cannot be reached.
    pub(super) fn external_cluster(&mut self, name: &str) -> Option<(String, Protocol)> {
        let mesh = self.mesh().to_string();
        self.built.deps.insert(Dep::Mesh(mesh.clone()));
        self.built
            .deps
            .insert(Dep::ExternalService(mesh.clone(), name.to_string()));
        let forbidden = self
            .world
            .meshes
            .get(&mesh)
            .and_then(|m| m.routing.as_ref())
            .is_some_and(|r| r.default_forbid_mesh_external_service_access);
        if forbidden {
            self.problem(format!(
                "MeshExternalService {name}: mesh {mesh:?} forbids traffic to external services (routing.defaultForbidMeshExternalServiceAccess)"
            ));
            return None;
        }
        let Some(service) = self
            .world
            .external_services
            .get(&(mesh.clone(), name.to_string()))
        else {
            self.problem(format!(
                "MeshExternalService {name} does not exist in mesh {mesh:?}"
            ));
            return None;
        };
        let spec = &service.spec;
        let material = match self.tls_material(spec) {
            Ok(material) => material,
            Err(why) => {
                self.problem(format!("MeshExternalService {name}: {why}; left out"));
                return None;
            }
        };
        let system_ca = self
            .world
            .proxy_meta
            .get(self.proxy)
            .and_then(|m| m.system_ca_path.clone());
        let out = external::generate(&ExternalInput {
            mesh: &mesh,
            name,
            spec,
            material,
            system_ca: system_ca.is_some(),
        });
        for problem in out.problems {
            self.problem(problem);
        }
        let cluster = out.cluster?;
        if let Some(path) = system_ca.filter(|_| out.uses_system_ca) {
            self.built
                .snapshot
                .add_secret(&external::system_ca_secret(&path));
        }
        for secret in &out.secrets {
            self.built.snapshot.add_secret(secret);
        }
        self.built.snapshot.add_cluster(&cluster);
        Some((cluster.name, external::protocol(spec)))
    }

    /// Resolves the CA and client certificate a MeshExternalService's TLS names.
    fn tls_material(
        &mut self,
        spec: &atoll_model::types::MeshExternalServiceSpec,
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
                    super::data_source::read_pem(self.world, self.mesh(), s, &mut deps)
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
