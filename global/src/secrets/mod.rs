//! Secrets the global generates and keeps present, each created once under leadership so two
//! replicas never race to create different ones, and kept in the store so a restart of any
//! control plane keeps them:
//!
//! - a mesh CA for every `builtin` mTLS backend ([`mesh_ca`]);
//! - a data plane token signing key per mesh, and the zone and user token signing keys
//!   ([`signing_keys`]);
//! - the admin user token, also written to `<work dir>/admin-token` ([`admin_token`]).
//!
//! KDS carries what zones need of them (mesh Secrets whole; only the public halves of the zone
//! and user keys).

mod admin_token;
mod mesh_ca;
mod signing_keys;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atoll_model::Kind;
use atoll_store::{Event, ListQuery, Page, Store, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

const LEADERSHIP: &str = "managed-secrets";

/// What the store holds that decides which secrets are missing.
pub(crate) struct Inventory {
    pub meshes: Page,
    pub secrets: Page,
    pub global_secrets: Page,
}

impl Inventory {
    async fn read(store: &dyn Store) -> Result<Self, StoreError> {
        let list = |kind| ListQuery {
            kind: Some(kind),
            ..Default::default()
        };
        Ok(Inventory {
            meshes: store.list(&list(Kind::Mesh)).await?,
            secrets: store.list(&list(Kind::Secret)).await?,
            global_secrets: store.list(&list(Kind::GlobalSecret)).await?,
        })
    }

    fn has_secret(&self, mesh: &str, name: &str) -> bool {
        self.secrets
            .items
            .iter()
            .any(|s| s.resource.mesh() == Some(mesh) && s.resource.name() == name)
    }
}

/// Creates whatever is missing; `Ok(false)` when another replica leads and this one must wait.
pub async fn ensure(store: &dyn Store, work_dir: &std::path::Path) -> Result<bool, StoreError> {
    let inventory = Inventory::read(store).await?;
    let cas = mesh_ca::missing(&inventory);
    let keys = signing_keys::missing(&inventory);
    let admin = admin_token::needed(store, &inventory).await?;
    if cas.is_empty() && keys.is_empty() && !admin {
        admin_token::write_file(store, work_dir).await?;
        return Ok(true);
    }
    let Some(guard) = store.try_lead(LEADERSHIP).await? else {
        return Ok(false);
    };
    let result = async {
        mesh_ca::create(store, cas).await?;
        signing_keys::create(store, keys).await?;
        // Checked again under leadership and after the keys exist: it is signed with them.
        if admin_token::needed(store, &Inventory::read(store).await?).await? {
            admin_token::issue(store).await?;
        }
        admin_token::write_file(store, work_dir).await
    }
    .await;
    guard.release().await;
    result.map(|()| true)
}

/// Waits until everything is present (created here or by the leading replica), so the global
/// announces itself ready with its admin token in place. `false` when `stop` fired first.
pub async fn ensure_at_start(
    store: &dyn Store,
    work_dir: &std::path::Path,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(100);
    loop {
        match ensure(store, work_dir).await {
            Ok(true) => return true,
            Ok(false) => tracing::info!(
                "waiting for the replica that leads {LEADERSHIP} to create the signing keys"
            ),
            Err(err) => tracing::warn!(%err, "cannot check the signing keys yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return false,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn relevant(event: &Event) -> bool {
    match event {
        Event::Put { key, .. } | Event::Deleted { key, .. } => {
            matches!(key.kind, Kind::Mesh | Kind::Secret | Kind::GlobalSecret)
        }
        Event::Resync => true,
    }
}

/// Keeps everything present as meshes come and go and secrets are deleted, until `stop`.
pub async fn run(store: Arc<dyn Store>, work_dir: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut feed = store.watch();
    loop {
        let done = match ensure(store.as_ref(), &work_dir).await {
            Ok(done) => done,
            Err(err) => {
                tracing::warn!(%err, "cannot check the managed secrets yet; retrying");
                false
            }
        };
        // Wake on a change that may need a secret; poll while waiting on another replica or
        // the store.
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
                Ok(event) if relevant(&event) => break,
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use atoll_auth::names::ADMIN_USER_TOKEN;
    use atoll_model::{Kind, Spec};
    use atoll_store::{Key, MemoryStore, Precondition, Store};

    use super::*;

    async fn versions(store: &dyn Store) -> Vec<(String, u64)> {
        let mut all = Vec::new();
        for kind in [Kind::Secret, Kind::GlobalSecret] {
            let page = store
                .list(&ListQuery {
                    kind: Some(kind),
                    ..Default::default()
                })
                .await
                .unwrap();
            all.extend(
                page.items
                    .into_iter()
                    .map(|s| (s.resource.name().to_string(), s.version)),
            );
        }
        all
    }

    #[tokio::test]
    async fn everything_is_created_once_and_the_admin_token_verifies() {
        let store = MemoryStore::new();
        let dir = tempfile::tempdir().unwrap();
        let mesh = atoll_model::parse_documents(
            "type: Mesh\nname: secure\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
        )
        .remove(0)
        .outcome
        .unwrap();
        store.put(mesh, Precondition::Any).await.unwrap();
        assert!(ensure(&store, dir.path()).await.unwrap());
        let names: Vec<String> = versions(&store).await.into_iter().map(|(n, _)| n).collect();
        for wanted in [
            "ca-builtin-ca-1",
            "dataplane-token-signing-key-secure-1",
            "zone-token-signing-key-1",
            "user-token-signing-key-1",
            ADMIN_USER_TOKEN,
        ] {
            assert!(
                names.iter().any(|n| n == wanted),
                "{wanted} missing: {names:?}"
            );
        }
        let before = versions(&store).await;
        assert!(ensure(&store, dir.path()).await.unwrap());
        assert_eq!(
            versions(&store).await,
            before,
            "nothing is replaced on a re-check"
        );

        // The file holds the stored token, privately, and the token is an admin's.
        let path = dir.path().join(admin_token::TOKEN_FILE);
        let token = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let keyring = atoll_auth::load(&store).await.unwrap();
        let claims = keyring.verify_user(&token, atoll_auth::unix_now()).unwrap();
        assert_eq!(claims.groups, ["mesh-system:admin"]);
        let Spec::Secret(ca) = &store
            .get(&Key::new(Kind::Secret, Some("secure"), "ca-builtin-ca-1"))
            .await
            .unwrap()
            .unwrap()
            .resource
            .spec
        else {
            panic!("not a secret")
        };
        let pem = String::from_utf8(ca.bytes().unwrap()).unwrap();
        assert!(atoll_tls::Authority::from_bundle(&pem).is_ok());
    }

    #[tokio::test]
    async fn deleting_the_user_key_reissues_the_admin_token_with_a_new_key() {
        let store = MemoryStore::new();
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure(&store, dir.path()).await.unwrap());
        let old = std::fs::read_to_string(dir.path().join(admin_token::TOKEN_FILE)).unwrap();
        store
            .delete(
                &Key::new(Kind::GlobalSecret, None, "user-token-signing-key-1"),
                None,
            )
            .await
            .unwrap();
        assert!(ensure(&store, dir.path()).await.unwrap());
        let new = std::fs::read_to_string(dir.path().join(admin_token::TOKEN_FILE)).unwrap();
        assert_ne!(old, new);
        let keyring = atoll_auth::load(&store).await.unwrap();
        assert!(keyring.verify_user(&old, atoll_auth::unix_now()).is_err());
        assert!(keyring.verify_user(&new, atoll_auth::unix_now()).is_ok());
    }

    #[tokio::test]
    async fn a_replica_that_does_not_lead_creates_nothing() {
        let store = MemoryStore::new();
        let dir = tempfile::tempdir().unwrap();
        let _leader = store.try_lead(LEADERSHIP).expect("free to lead");
        assert!(!ensure(&store, dir.path()).await.unwrap());
        assert!(versions(&store).await.is_empty());
    }
}
