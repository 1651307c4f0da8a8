//! The CA that issues a mesh's workload certificates, as one PEM bundle (certificates, then
//! the key). A `builtin` backend's CA is generated on the global and synced to zones as the
//! mesh Secret `ca-builtin-<backend>`; a `provided` backend's is the operator's, read from its
//! `conf.cert` and `conf.key` data sources. The key stays in the control plane either way:
//! proxies receive only the certificates ([`atoll_tls::split_pem_bundle`]).

use std::collections::BTreeSet;

use atoll_model::types::{CaBackendType, MtlsMode};

use super::data_source;
use super::deps::Dep;
use crate::world::World;

/// `mesh`'s CA bundle; records what it was read from in `deps`. An error says why the mesh
/// has no usable CA (mTLS off, or the CA not there yet).
pub fn bundle(world: &World, mesh: &str, deps: &mut BTreeSet<Dep>) -> Result<Vec<u8>, String> {
    deps.insert(Dep::Mesh(mesh.to_string()));
    let backend = world
        .meshes
        .get(mesh)
        .and_then(|m| m.enabled_ca())
        .ok_or_else(|| format!("mesh {mesh:?} has no mTLS"))?;
    if backend.backend_type != CaBackendType::Provided {
        let secret = atoll_tls::mesh_ca_secret_name(&backend.name);
        deps.insert(Dep::Secret(mesh.to_string(), secret.clone()));
        return world
            .secrets
            .get(&(mesh.to_string(), secret.clone()))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "mesh {mesh:?} has mTLS on but its CA secret {secret:?} has not arrived yet"
                )
            });
    }
    let conf = backend.conf.as_ref();
    let mut part = |field: &str, source: Option<&atoll_model::types::DataSource>| match source {
        Some(source) => data_source::read_pem(world, mesh, source, deps).map_err(|e| {
            format!(
                "mesh {mesh:?} CA backend {:?} conf.{field}: {e}",
                backend.name
            )
        }),
        None => Err(format!(
            "mesh {mesh:?} CA backend {:?} (provided) has no conf.{field}",
            backend.name
        )),
    };
    let cert = part("cert", conf.and_then(|c| c.cert.as_ref()))?;
    let key = part("key", conf.and_then(|c| c.key.as_ref()))?;
    let (certs, _) = atoll_tls::split_pem_bundle(&cert);
    let (_, key) = atoll_tls::split_pem_bundle(&key);
    match key {
        Some(key) if !certs.is_empty() => Ok(format!("{certs}{key}").into_bytes()),
        _ => Err(format!(
            "mesh {mesh:?} CA backend {:?}: conf.cert needs a PEM certificate and conf.key a PEM private key",
            backend.name
        )),
    }
}

/// Whether `mesh`'s inbounds also take plain text: its enabled CA backend is in mode
/// PERMISSIVE (STRICT, the default, refuses it).
pub fn permissive(world: &World, mesh: &str) -> bool {
    world
        .meshes
        .get(mesh)
        .and_then(|m| m.enabled_ca())
        .is_some_and(|b| b.mode == MtlsMode::Permissive)
}
