//! Token signing keys: one per mesh for data plane tokens (created with the mesh), one for
//! zone tokens and one for user tokens, each serial 1 when none exists. Rotation is the
//! operator's: add a key with a higher serial (it signs from then on), delete the old one when
//! its tokens should stop working. Deleting every key of a purpose makes a new serial 1.

use atoll_auth::names::{Purpose, Role};
use atoll_model::types::SecretSpec;
use atoll_model::{Meta, Resource, Spec};
use atoll_store::{Precondition, Store, StoreError};

use super::Inventory;

/// The purposes that have no signing key at all.
pub(super) fn missing(inventory: &Inventory) -> Vec<Purpose> {
    let mut have = std::collections::BTreeSet::new();
    for stored in inventory
        .secrets
        .items
        .iter()
        .chain(&inventory.global_secrets.items)
    {
        let meta = &stored.resource.meta;
        if let Some(Role::SigningKey(purpose, _)) =
            atoll_auth::keyring::role_of(stored.resource.kind(), meta.mesh.as_deref(), &meta.name)
        {
            have.insert(purpose);
        }
    }
    let meshes = inventory
        .meshes
        .items
        .iter()
        .map(|m| Purpose::Dataplane(m.resource.meta.name.clone()));
    [Purpose::Zone, Purpose::User]
        .into_iter()
        .chain(meshes)
        .filter(|p| !have.contains(p))
        .collect()
}

fn secret(purpose: &Purpose, pem: &str) -> Resource {
    let name = atoll_auth::names::signing_key_name(purpose, 1);
    match purpose {
        Purpose::Dataplane(mesh) => Resource::new(
            Meta {
                name,
                mesh: Some(mesh.clone()),
                ..Default::default()
            },
            Spec::Secret(SecretSpec::from_bytes(pem.as_bytes())),
        ),
        Purpose::Zone | Purpose::User => Resource::new(
            Meta {
                name,
                ..Default::default()
            },
            Spec::GlobalSecret(SecretSpec::from_bytes(pem.as_bytes())),
        ),
    }
}

/// Generates and stores serial 1 for each purpose; one created meanwhile is kept.
pub(super) async fn create(store: &dyn Store, missing: Vec<Purpose>) -> Result<(), StoreError> {
    for purpose in missing {
        let pem = match atoll_auth::keys::generate_pem() {
            Ok(pem) => pem,
            Err(err) => {
                tracing::error!(%purpose, %err, "cannot generate a signing key");
                continue;
            }
        };
        let resource = secret(&purpose, &pem);
        let name = resource.meta.name.clone();
        match store.put(resource, Precondition::Absent).await {
            Ok(_) => tracing::info!(%purpose, secret = %name, "generated a token signing key"),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
