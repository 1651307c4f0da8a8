//! Mesh CAs: for every Mesh with a `builtin` mTLS backend, a CA generated once on the global
//! and stored as the mesh Secret `ca-builtin-<backend>` (certificate and key, PEM), which KDS
//! syncs to every zone. Zones issue proxies' workload certificates from it.
//!
//! Kept in the store, not in memory, so a restart of any control plane keeps the CA and no
//! proxy needs new certificates because of it. Generated under leadership so two replicas
//! never race to create different CAs.

use std::sync::Arc;
use std::time::Duration;

use atoll_model::types::{CaBackendType, SecretSpec};
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Event, Key, ListQuery, Precondition, Store, StoreError};
use atoll_tls::Authority;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

const LEADERSHIP: &str = "mesh-ca";

/// The (mesh, backend) pairs that need a builtin CA.
async fn wanted(store: &dyn Store) -> Result<Vec<(String, String)>, StoreError> {
    let meshes = store
        .list(&ListQuery {
            kind: Some(Kind::Mesh),
            ..Default::default()
        })
        .await?;
    Ok(meshes
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
        .collect())
}

/// Creates the missing CAs; `Ok(false)` when another replica leads and this one must wait.
pub async fn ensure(store: &dyn Store) -> Result<bool, StoreError> {
    let mut missing = Vec::new();
    for (mesh, backend) in wanted(store).await? {
        let key = Key::new(
            Kind::Secret,
            Some(&mesh),
            &atoll_tls::mesh_ca_secret_name(&backend),
        );
        if store.get(&key).await?.is_none() {
            missing.push((mesh, backend, key));
        }
    }
    if missing.is_empty() {
        return Ok(true);
    }
    let Some(guard) = store.try_lead(LEADERSHIP).await? else {
        return Ok(false);
    };
    let mut result = Ok(true);
    for (mesh, backend, key) in missing {
        let ca = match Authority::generate(&format!("Atoll mesh {mesh} CA ({backend})")) {
            Ok(ca) => ca,
            Err(err) => {
                tracing::error!(%mesh, %backend, %err, "cannot generate the mesh CA");
                continue;
            }
        };
        let secret = Resource::new(
            Meta {
                name: key.name.clone(),
                mesh: Some(mesh.clone()),
                ..Default::default()
            },
            Spec::Secret(SecretSpec::from_bytes(ca.to_bundle().as_bytes())),
        );
        match store.put(secret, Precondition::Absent).await {
            Ok(_) => tracing::info!(%mesh, %backend, secret = %key.name, "generated the mesh CA"),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    guard.release().await;
    result
}

/// Keeps CAs present as meshes come and go, until `stop`.
pub async fn run(store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    let mut feed = store.watch();
    loop {
        let done = match ensure(store.as_ref()).await {
            Ok(done) => done,
            Err(err) => {
                tracing::warn!(%err, "cannot check the mesh CAs yet; retrying");
                false
            }
        };
        // Wake on a Mesh or Secret change; poll while waiting on another replica or the store.
        let poll = if done {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(2)
        };
        let deadline = tokio::time::Instant::now() + poll;
        loop {
            let event = tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                _ = tokio::time::sleep_until(deadline) => break,
                event = feed.recv() => event,
            };
            match event {
                Ok(Event::Put { key, .. } | Event::Deleted { key, .. })
                    if matches!(key.kind, Kind::Mesh | Kind::Secret) =>
                {
                    break;
                }
                Ok(Event::Resync) | Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_store::MemoryStore;

    #[tokio::test]
    async fn a_builtin_backend_gets_one_ca_that_survives_re_checks() {
        let store = MemoryStore::new();
        let mesh = atoll_model::parse_documents(
            "type: Mesh\nname: secure\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
        )
        .remove(0)
        .outcome
        .unwrap();
        store.put(mesh, Precondition::Any).await.unwrap();
        assert!(ensure(&store).await.unwrap());
        let key = Key::new(Kind::Secret, Some("secure"), "ca-builtin-ca-1");
        let first = store.get(&key).await.unwrap().expect("the CA secret");
        assert!(ensure(&store).await.unwrap());
        let again = store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            first.version, again.version,
            "an existing CA is never replaced"
        );
        let Spec::Secret(secret) = &again.resource.spec else {
            panic!("not a secret")
        };
        let pem = String::from_utf8(secret.bytes().unwrap()).unwrap();
        assert!(Authority::from_bundle(&pem).is_ok());
    }
}
