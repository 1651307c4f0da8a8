//! Mesh CAs: for every Mesh with a `builtin` mTLS backend, a CA generated once on the global
//! and stored as the mesh Secret `ca-builtin-<backend>` (certificate and key, PEM), which KDS
//! syncs to every zone. Zones issue proxies' workload certificates from it, so no proxy needs
//! new certificates because a control plane restarted.

use atoll_model::types::{CaBackendType, SecretSpec};
use atoll_model::{Meta, Resource, Spec};
use atoll_store::{Precondition, Store, StoreError};
use atoll_tls::Authority;

use super::Inventory;

/// The (mesh, backend) pairs whose CA is missing.
pub(super) fn missing(inventory: &Inventory) -> Vec<(String, String)> {
    inventory
        .meshes
        .items
        .iter()
        .filter_map(|s| match &s.resource.spec {
            Spec::Mesh(m) => Some((s.resource.meta.name.clone(), m)),
            _ => None,
        })
        .flat_map(|(mesh, spec)| {
            spec.mtls
                .iter()
                .flat_map(|m| &m.backends)
                .filter(|b| b.backend_type == CaBackendType::Builtin)
                .map(move |b| (mesh.clone(), b.name.clone()))
        })
        .filter(|(mesh, backend)| {
            !inventory.has_secret(mesh, &atoll_tls::mesh_ca_secret_name(backend))
        })
        .collect()
}

/// Generates and stores the CAs; one that another writer created meanwhile is kept.
pub(super) async fn create(
    store: &dyn Store,
    missing: Vec<(String, String)>,
) -> Result<(), StoreError> {
    for (mesh, backend) in missing {
        let name = atoll_tls::mesh_ca_secret_name(&backend);
        let ca = match Authority::generate(&format!("Atoll mesh {mesh} CA ({backend})")) {
            Ok(ca) => ca,
            Err(err) => {
                tracing::error!(%mesh, %backend, %err, "cannot generate the mesh CA");
                continue;
            }
        };
        let secret = Resource::new(
            Meta {
                name: name.clone(),
                mesh: Some(mesh.clone()),
                ..Default::default()
            },
            Spec::Secret(SecretSpec::from_bytes(ca.to_bundle().as_bytes())),
        );
        match store.put(secret, Precondition::Absent).await {
            Ok(_) => tracing::info!(%mesh, %backend, secret = %name, "generated the mesh CA"),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
