//! The keyring kept current from the store: loaded once, rebuilt whenever a credential secret
//! (a signing key, a public key, a revocation list) changes, so a revocation or a rotation
//! takes effect within milliseconds on every replica without a restart.

use std::sync::Arc;
use std::time::Duration;

use atoll_model::{Kind, Spec};
use atoll_store::{Event, ListQuery, Store, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use crate::keyring::{Keyring, SecretEntry, role_of};

/// Hands out the current keyring.
#[derive(Clone)]
pub struct Credentials {
    rx: watch::Receiver<Arc<Keyring>>,
}

impl Credentials {
    /// A fixed keyring (tests, tools).
    pub fn fixed(keyring: Keyring) -> Self {
        let (_tx, rx) = watch::channel(Arc::new(keyring));
        Credentials { rx }
    }

    pub fn current(&self) -> Arc<Keyring> {
        self.rx.borrow().clone()
    }

    /// Waits for the next rebuild; `false` once the follower stopped.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// Starts following `store` until `stop`. The keyring is empty ("not loaded") until the
    /// first load succeeds; verifications meanwhile answer "not ready" rather than "invalid".
    pub fn follow(store: Arc<dyn Store>, stop: watch::Receiver<bool>) -> Self {
        let (tx, rx) = watch::channel(Arc::new(Keyring::default()));
        tokio::spawn(run(store, tx, stop));
        Credentials { rx }
    }
}

/// Reads every credential secret.
pub async fn load(store: &dyn Store) -> Result<Keyring, StoreError> {
    let mut secrets = Vec::new();
    for kind in [Kind::Secret, Kind::GlobalSecret] {
        let page = store
            .list(&ListQuery {
                kind: Some(kind),
                ..Default::default()
            })
            .await?;
        for stored in page.items {
            let meta = &stored.resource.meta;
            if role_of(kind, meta.mesh.as_deref(), &meta.name).is_none() {
                continue;
            }
            let data = match &stored.resource.spec {
                Spec::Secret(s) | Spec::GlobalSecret(s) => s.bytes().unwrap_or_default(),
                _ => continue,
            };
            secrets.push((kind, meta.mesh.clone(), meta.name.clone(), data));
        }
    }
    let keyring = Keyring::build(secrets.iter().map(|(kind, mesh, name, data)| SecretEntry {
        kind: *kind,
        mesh: mesh.as_deref(),
        name,
        data,
    }));
    for problem in keyring.problems() {
        tracing::warn!(%problem, "a credential secret cannot be used");
    }
    Ok(keyring)
}

fn relevant(event: &Event) -> bool {
    match event {
        Event::Put { key, .. } | Event::Deleted { key, .. } => {
            role_of(key.kind, key.mesh.as_deref(), &key.name).is_some()
        }
        Event::Resync => true,
    }
}

async fn run(
    store: Arc<dyn Store>,
    tx: watch::Sender<Arc<Keyring>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut feed = store.watch();
    let mut stale = true;
    loop {
        if stale {
            match load(store.as_ref()).await {
                Ok(keyring) => {
                    metrics::counter!("atoll_auth_keyring_loads_total").increment(1);
                    tx.send_replace(Arc::new(keyring));
                    stale = false;
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot read the signing keys yet; keeping the last ones")
                }
            }
        }
        let retry = if stale {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(retry) => {}
            event = feed.recv() => {
                match event {
                    Ok(event) => stale |= relevant(&event),
                    Err(RecvError::Lagged(_)) => stale = true,
                    Err(RecvError::Closed) => return,
                }
                // A burst of changes is one reload.
                loop {
                    match feed.try_recv() {
                        Ok(event) => stale |= relevant(&event),
                        Err(TryRecvError::Lagged(_)) => stale = true,
                        Err(_) => break,
                    }
                }
            }
        }
    }
}
