//! Zone insights: connection state and ACK/NACK history per zone, kept in the store as
//! `ZoneInsight` resources so every global replica can answer `/zones/_overview`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use atoll_kds::SyncObserver;
use atoll_model::types::{AckedResponse, Nack, ZoneInsightSpec};
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Precondition, Store};
use tokio::sync::Notify;

/// How often a connected zone's insight is refreshed (`lastSeen`), even when nothing changed.
pub const REFRESH: Duration = Duration::from_secs(5);

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every zone connected to this replica.
pub struct Insights {
    store: Arc<dyn Store>,
    instance: String,
    zones: Mutex<HashMap<String, Arc<ZoneLink>>>,
}

/// One zone's insight while at least one of its streams is connected here.
pub struct ZoneLink {
    zone: String,
    state: Mutex<ZoneInsightSpec>,
    streams: Mutex<usize>,
    changed: Notify,
}

impl Insights {
    pub fn new(store: Arc<dyn Store>, instance: String) -> Arc<Self> {
        Arc::new(Insights {
            store,
            instance,
            zones: Mutex::new(HashMap::new()),
        })
    }

    /// Registers a stream of `zone`; the link is written until its last stream ends.
    pub fn connect(self: &Arc<Self>, zone: &str) -> Arc<ZoneLink> {
        let mut zones = self.zones.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(link) = zones.get(zone) {
            *link.streams.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            return link.clone();
        }
        let link = Arc::new(ZoneLink {
            zone: zone.to_string(),
            state: Mutex::new(ZoneInsightSpec {
                connected: true,
                connect_time: Some(now()),
                global_instance: Some(self.instance.clone()),
                ..Default::default()
            }),
            streams: Mutex::new(1),
            changed: Notify::new(),
        });
        zones.insert(zone.to_string(), link.clone());
        tokio::spawn(self.clone().flush_loop(link.clone()));
        link
    }

    /// A stream of the link's zone ended.
    pub fn disconnect(&self, link: &Arc<ZoneLink>) {
        let mut streams = link.streams.lock().unwrap_or_else(PoisonError::into_inner);
        *streams = streams.saturating_sub(1);
        if *streams == 0 {
            self.zones
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&link.zone);
            let mut state = link.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.connected = false;
            state.disconnect_time = Some(now());
        }
        link.changed.notify_one();
    }

    /// Writes the link's insight when it changes, and every `REFRESH` while connected; a
    /// final write records the disconnect.
    async fn flush_loop(self: Arc<Self>, link: Arc<ZoneLink>) {
        loop {
            let _ = tokio::time::timeout(REFRESH, link.changed.notified()).await;
            // Coalesce bursts of ACKs into one write.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let spec = {
                let mut state = link.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.connected {
                    state.last_seen = Some(now());
                }
                state.clone()
            };
            let connected = spec.connected;
            // A newer connection of the same zone owns the record now; don't mark it offline.
            if !connected
                && self
                    .zones
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(&link.zone)
            {
                return;
            }
            let resource = Resource::new(
                Meta {
                    name: link.zone.clone(),
                    ..Default::default()
                },
                Spec::ZoneInsight(spec),
            );
            if let Err(err) = self.store.put(resource, Precondition::Any).await {
                tracing::warn!(zone = %link.zone, %err, "cannot record the zone insight");
            }
            if !connected {
                return;
            }
        }
    }
}

impl ZoneLink {
    fn update(&self, change: impl FnOnce(&mut ZoneInsightSpec)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
    }
}

impl SyncObserver for ZoneLink {
    fn acked(&self, kind: Kind, nonce: &str) {
        self.update(|s| {
            s.acked.insert(
                kind.name().into(),
                AckedResponse {
                    nonce: nonce.into(),
                    time: now(),
                },
            );
        });
    }

    fn nacked(&self, kind: Kind, _nonce: &str, reason: &str) {
        tracing::warn!(zone = %self.zone, %kind, %reason, "zone rejected resources");
        self.update(|s| {
            s.last_nack = Some(Nack {
                resource_type: kind.name().into(),
                reason: reason.into(),
                time: now(),
            });
        });
    }

    fn rejected(&self, kind: Kind, reason: &str) {
        self.update(|s| {
            s.last_rejection = Some(Nack {
                resource_type: kind.name().into(),
                reason: reason.into(),
                time: now(),
            });
        });
    }
}
