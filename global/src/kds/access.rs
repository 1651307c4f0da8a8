//! Which zones may hold KDS streams. A zone is admitted when its certificate is not revoked
//! (its serial is not in the GlobalSecret `zone-certificate-revocations`) and its Zone is
//! enabled (created on first contact). Both are checked again whenever either changes, and a
//! stream whose zone no longer qualifies is cut at once, so disabling a zone or revoking its
//! certificate takes effect in milliseconds, not at the zone's next reconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use atoll_auth::Credentials;
use atoll_model::{Kind, Meta, Resource, Spec, types::ZoneSpec};
use atoll_store::{Event, Key, Precondition, Store, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tonic::Status;

/// One live stream, as the access check sees it.
struct Live {
    zone: String,
    serial: String,
    /// Set to the reason when the stream must end.
    cut: watch::Sender<Option<String>>,
}

pub struct ZoneAccess {
    store: Arc<dyn Store>,
    credentials: Credentials,
    live: Mutex<HashMap<u64, Live>>,
    next: AtomicU64,
}

/// Held by a stream while it runs; ends its registration when dropped.
pub struct Admission {
    access: Arc<ZoneAccess>,
    id: u64,
    /// The reason the stream was cut, once it was.
    pub cut: watch::Receiver<Option<String>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.access
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Admission {
    /// Turns true when the process stops or the stream is cut, for the KDS state machines.
    pub fn stop(&self, mut global: watch::Receiver<bool>) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let mut cut = self.cut.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = async { let _ = global.wait_for(|s| *s).await; } => {}
                _ = async { let _ = cut.wait_for(Option::is_some).await; } => {}
                _ = tx.closed() => return,
            }
            let _ = tx.send(true);
        });
        rx
    }

    /// Why the stream was cut, if it was.
    pub fn reason(&self) -> Option<String> {
        self.cut.borrow().clone()
    }
}

impl ZoneAccess {
    pub fn new(store: Arc<dyn Store>, credentials: Credentials) -> Arc<Self> {
        Arc::new(ZoneAccess {
            store,
            credentials,
            live: Mutex::default(),
            next: AtomicU64::new(1),
        })
    }

    fn revoked(&self, serial: &str) -> Option<String> {
        self.credentials
            .current()
            .zone_certificate_revoked(serial)
            .then(|| format!("the zone certificate (serial {serial}) is revoked on the global"))
    }

    /// Whether `zone`'s Zone is enabled; creates it on first contact.
    async fn enabled(&self, zone: &str) -> Result<Option<String>, StoreError> {
        let key = Key::new(Kind::Zone, None, zone);
        match self.store.get(&key).await? {
            Some(stored) => Ok(match &stored.resource.spec {
                Spec::Zone(spec) if !spec.is_enabled() => {
                    Some(format!("zone {zone:?} is disabled on the global"))
                }
                _ => None,
            }),
            None => {
                let resource = Resource::new(
                    Meta {
                        name: zone.into(),
                        ..Default::default()
                    },
                    Spec::Zone(ZoneSpec::default()),
                );
                match self.store.put(resource, Precondition::Absent).await {
                    Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Admits a stream of `zone` presenting the certificate with `serial`, or refuses it.
    pub async fn admit(self: &Arc<Self>, zone: &str, serial: &str) -> Result<Admission, Status> {
        if self.credentials.current().is_loaded()
            && let Some(reason) = self.revoked(serial)
        {
            tracing::warn!(%zone, %serial, "refused a revoked zone certificate");
            return Err(Status::permission_denied(reason));
        }
        if let Some(reason) = self
            .enabled(zone)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
        {
            return Err(Status::permission_denied(reason));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (cut, cut_rx) = watch::channel(None);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                Live {
                    zone: zone.to_string(),
                    serial: serial.to_string(),
                    cut,
                },
            );
        Ok(Admission {
            access: self.clone(),
            id,
            cut: cut_rx,
        })
    }

    /// Checks every live stream again and cuts those that no longer qualify.
    async fn review(&self) {
        let live: Vec<(u64, String, String)> = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, l)| (*id, l.zone.clone(), l.serial.clone()))
            .collect();
        let mut zones: HashMap<String, Option<String>> = HashMap::new();
        for (id, zone, serial) in live {
            let mut reason = self.revoked(&serial);
            if reason.is_none() {
                if !zones.contains_key(&zone) {
                    match self.enabled(&zone).await {
                        Ok(verdict) => {
                            zones.insert(zone.clone(), verdict);
                        }
                        // The store is away: keep the stream; the next review decides.
                        Err(_) => continue,
                    }
                }
                reason = zones.get(&zone).cloned().flatten();
            }
            if let Some(reason) = reason {
                let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(entry) = live.get(&id)
                    && entry.cut.borrow().is_none()
                {
                    tracing::warn!(%zone, %serial, %reason, "cutting the zone's KDS stream");
                    metrics::counter!("atoll_kds_streams_cut_total").increment(1);
                    let _ = entry.cut.send(Some(reason));
                }
            }
        }
    }

    /// Reviews the live streams whenever a Zone or the revocations change, until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut feed = self.store.watch();
        let mut credentials = self.credentials.clone();
        loop {
            let review = tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                changed = credentials.changed() => {
                    if !changed {
                        return;
                    }
                    true
                }
                event = feed.recv() => match event {
                    Ok(Event::Put { key, .. } | Event::Deleted { key, .. }) => key.kind == Kind::Zone,
                    Ok(Event::Resync) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
            };
            if review {
                self.review().await;
            }
        }
    }
}
