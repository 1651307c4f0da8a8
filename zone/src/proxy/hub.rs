//! Where computed configurations meet ADS streams: one watch channel per connected proxy, and
//! what each proxy's insight shows (connection, ACKed versions, the last NACK, problems).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::deps::ProxyId;
use crate::xds::snapshot::Snapshot;

pub type SnapshotRx = watch::Receiver<Option<Arc<Snapshot>>>;

/// Tells the reconciler about proxies coming and going.
#[derive(Debug)]
pub enum Command {
    /// The first stream of a proxy opened, with what its node told about its host.
    Connected(ProxyId, super::meta::ProxyMeta),
    Disconnected(ProxyId),
}

struct Entry {
    tx: watch::Sender<Option<Arc<Snapshot>>>,
    streams: usize,
}

/// A rejected configuration, as Envoy reported it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nack {
    pub type_url: String,
    pub version: String,
    pub reason: String,
    pub at: String,
}

/// What an operator sees about one proxy.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyInsight {
    pub connected: bool,
    pub streams: usize,
    pub last_connected: Option<String>,
    pub last_disconnected: Option<String>,
    /// Fingerprint of the newest configuration computed for the proxy.
    pub config_version: Option<String>,
    /// Type URL to the version Envoy last ACKed.
    pub acked: BTreeMap<String, String>,
    pub last_nack: Option<Nack>,
    pub responses_sent: u64,
    pub nacks: u64,
    /// Why parts of the configuration are missing.
    pub problems: Vec<String>,
}

pub struct Hub {
    entries: Mutex<HashMap<ProxyId, Entry>>,
    insights: Mutex<BTreeMap<ProxyId, ProxyInsight>>,
    commands: mpsc::UnboundedSender<Command>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge every stream: the data stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Hub {
    pub fn new() -> (Arc<Hub>, mpsc::UnboundedReceiver<Command>) {
        let (commands, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Hub {
                entries: Mutex::default(),
                insights: Mutex::default(),
                commands,
            }),
            rx,
        )
    }

    /// A stream for `proxy` opened: its configuration channel (computed on first use).
    pub fn subscribe(&self, proxy: &ProxyId, meta: super::meta::ProxyMeta) -> SnapshotRx {
        let mut entries = lock(&self.entries);
        let entry = entries.entry(proxy.clone()).or_insert_with(|| {
            let _ = self.commands.send(Command::Connected(proxy.clone(), meta));
            Entry {
                tx: watch::Sender::new(None),
                streams: 0,
            }
        });
        entry.streams += 1;
        let rx = entry.tx.subscribe();
        let streams = entry.streams;
        drop(entries);
        self.update(proxy, |i| {
            i.connected = true;
            i.streams = streams;
            i.last_connected = Some(now_rfc3339());
        });
        metrics::gauge!("atoll_xds_streams").increment(1.0);
        rx
    }

    /// A stream for `proxy` closed.
    pub fn unsubscribe(&self, proxy: &ProxyId) {
        let mut entries = lock(&self.entries);
        let mut left = 0;
        if let Some(entry) = entries.get_mut(proxy) {
            entry.streams = entry.streams.saturating_sub(1);
            left = entry.streams;
            if left == 0 {
                entries.remove(proxy);
            }
        }
        drop(entries);
        self.update(proxy, |i| {
            i.streams = left;
            if left == 0 {
                i.connected = false;
                i.last_disconnected = Some(now_rfc3339());
            }
        });
        // Told after the insight is written, so a reconciler that forgets the insight of a
        // proxy without a Dataplane does so after this last write, not before it.
        if left == 0 {
            let _ = self.commands.send(Command::Disconnected(proxy.clone()));
        }
        metrics::gauge!("atoll_xds_streams").decrement(1.0);
    }

    /// Hands a proxy its new configuration; false when nothing changed (or it is gone).
    pub fn publish(&self, proxy: &ProxyId, snapshot: Snapshot) -> bool {
        let fingerprint = snapshot.fingerprint();
        let entries = lock(&self.entries);
        let Some(entry) = entries.get(proxy) else {
            return false;
        };
        let snapshot = Arc::new(snapshot);
        let changed = entry.tx.send_if_modified(|current| {
            if current
                .as_ref()
                .is_some_and(|c| c.fingerprint() == fingerprint)
            {
                return false;
            }
            *current = Some(snapshot);
            true
        });
        drop(entries);
        if changed {
            self.update(proxy, |i| i.config_version = Some(fingerprint));
        }
        changed
    }

    /// The proxies with at least one open stream.
    pub fn connected(&self) -> Vec<ProxyId> {
        lock(&self.entries).keys().cloned().collect()
    }

    pub fn update(&self, proxy: &ProxyId, f: impl FnOnce(&mut ProxyInsight)) {
        f(lock(&self.insights).entry(proxy.clone()).or_default());
    }

    pub fn insight(&self, proxy: &ProxyId) -> Option<ProxyInsight> {
        lock(&self.insights).get(proxy).cloned()
    }

    /// Every proxy's insight, for publishing them.
    pub fn insights(&self) -> BTreeMap<ProxyId, ProxyInsight> {
        lock(&self.insights).clone()
    }

    /// Forgets the insight of a Dataplane that was deregistered.
    pub fn forget(&self, proxy: &ProxyId) {
        lock(&self.insights).remove(proxy);
    }
}
