//! The sending side of a sync stream: answers a peer's subscriptions with the full set of each
//! type, then with every change the store's feed reports, and tracks the peer's ACKs and NACKs.
//!
//! The loop never stops reading the peer while it waits to send: pending work is kept as a
//! set of dirty keys (bounded by the number of resources), not as a growing queue of messages,
//! so two sides sending at once cannot deadlock under gRPC flow control (kumahq/kuma#14486).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use atoll_model::Kind;
use atoll_proto::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaResource};
use atoll_retry::Backoff;
use atoll_store::{Event, Key, Store};
use prost::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::shared_reads::{SharedReads, Ticket};
use crate::wire::{self, HEARTBEAT_TYPE};
use crate::{KdsError, Scope, SyncObserver};

/// How a sender behaves.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Upper bound on an encoded response; full sets are split into chunks below it.
    pub max_message_bytes: usize,
    /// A heartbeat is sent after this long without any other message.
    pub heartbeat: Duration,
    /// While held, no full set or change is sent, only heartbeats: a side whose store is
    /// still filling (a zone on the memory store, just restarted, whose proxies have not
    /// registered again) would otherwise tell the peer to delete what it merely has not
    /// relearnt yet.
    pub hold: Option<Hold>,
}

/// When a held sender may send: not before the instant published on the channel (`None`: not
/// known yet, keep holding).
#[derive(Debug, Clone)]
pub struct Hold(pub watch::Receiver<Option<Instant>>);

impl Hold {
    /// A hold released at a fixed instant.
    pub fn until(release: Instant) -> Hold {
        Hold(watch::channel(Some(release)).1)
    }

    /// Whether the hold is still on.
    pub fn holding(&self) -> bool {
        match *self.0.borrow() {
            Some(release) => Instant::now() < release,
            // Whoever would release it is gone: released, as [`Hold::released`] sees it.
            None => self.0.has_changed().is_ok(),
        }
    }

    /// Resolves once the hold has ended (at once if whoever would release it is gone).
    pub async fn released(&self) {
        let mut release = self.0.clone();
        let at = match release.wait_for(Option::is_some).await {
            Ok(at) => *at,
            Err(_) => None,
        };
        if let Some(at) = at {
            tokio::time::sleep_until(at).await;
        }
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        // Below gRPC's common 4 MiB default, leaving room for framing.
        SenderConfig {
            max_message_bytes: 3 * 1024 * 1024,
            heartbeat: Duration::from_secs(2),
            hold: None,
        }
    }
}

#[derive(Default)]
struct KindState {
    subscribed: bool,
    needs_snapshot: bool,
    needs_resync: bool,
    /// Changed keys, each with the newest revision the feed reported for it: the read that
    /// sends it must reflect at least that revision.
    dirty: BTreeMap<Key, u64>,
    /// What the peer holds: delta name → version, and the store revision it was read at (a
    /// shared read may be older than what was already sent; it must not replace it).
    sent: HashMap<String, (String, u64)>,
    /// Taken when the peer subscribed to the kind: which shared lists its full set may join
    /// (feed events of the kind are recorded only from then on).
    ticket: Option<Ticket>,
}

/// What a chunk of a full set aims at, below the message limit: a gRPC stream keeps the
/// encode buffer its largest message needed for as long as it lives, so 3 MiB chunks would
/// leave up to 3 MiB per zone on the global after the first full set. A resource larger than
/// this still travels, alone in its message, up to the limit.
const CHUNK_BYTES: usize = 16 * 1024;

/// Outstanding nonces kept for ACK/NACK attribution; older ones are forgotten.
const MAX_OUTSTANDING_NONCES: usize = 4096;

pub struct Sender {
    store: Arc<dyn Store>,
    reads: Arc<SharedReads>,
    /// After a failed read, nothing is read again before this instant.
    retry_at: Option<Instant>,
    backoff: Backoff,
    scope: Arc<dyn Scope>,
    observer: Arc<dyn SyncObserver>,
    config: SenderConfig,
    kinds: HashMap<Kind, KindState>,
    queue: VecDeque<DeltaDiscoveryResponse>,
    nonces: HashMap<String, Kind>,
    nonce_order: VecDeque<String>,
    next_nonce: u64,
}

impl Sender {
    pub fn new(
        store: Arc<dyn Store>,
        scope: Arc<dyn Scope>,
        observer: Arc<dyn SyncObserver>,
        config: SenderConfig,
    ) -> Self {
        let kinds = scope
            .kinds()
            .iter()
            .map(|k| (*k, KindState::default()))
            .collect();
        Sender {
            reads: SharedReads::private(store.clone()),
            store,
            retry_at: None,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
                .jittered(0.5, 1.5),
            scope,
            observer,
            config,
            kinds,
            queue: VecDeque::new(),
            nonces: HashMap::new(),
            nonce_order: VecDeque::new(),
            next_nonce: 0,
        }
    }

    /// Lists full sets through `reads`, shared with the other senders of the same store,
    /// instead of on its own.
    pub fn sharing(mut self, reads: Arc<SharedReads>) -> Self {
        assert!(
            Arc::ptr_eq(reads.store(), &self.store),
            "a sender shares reads only of its own store"
        );
        self.reads = reads;
        self
    }

    /// Runs until the peer closes its side, `stop` turns true, or the output is gone. A store
    /// that cannot be read does not end the stream: the read is tried again with backoff,
    /// heartbeats keep the peer from giving up meanwhile.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<Box<DeltaDiscoveryRequest>>,
        responses: mpsc::Sender<Box<DeltaDiscoveryResponse>>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), KdsError> {
        let mut feed = self.store.watch();
        let mut last_sent = Instant::now();
        let mut ticker = tokio::time::interval(self.config.heartbeat / 2);
        loop {
            // While held, the heartbeat ticker wakes the loop to look again.
            let holding = self.config.hold.as_ref().is_some_and(Hold::holding);
            let waiting = self.retry_at.is_some_and(|at| Instant::now() < at);
            if self.queue.is_empty() && !holding && !waiting {
                self.retry_at = match self.fill().await {
                    Ok(()) => {
                        self.backoff.reset();
                        None
                    }
                    Err(err) => {
                        let delay = self.backoff.next_delay();
                        metrics::counter!("atoll_kds_store_read_failures_total").increment(1);
                        tracing::warn!(%err, retry_in = ?delay, "cannot read what to send; trying again");
                        Some(Instant::now() + delay)
                    }
                };
            }
            let retry_at = self.retry_at;
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => self.on_request(*request),
                    None => return Err(KdsError::Closed),
                },
                event = feed.recv() => self.on_event(event),
                permit = responses.reserve(), if !self.queue.is_empty() => {
                    let permit = permit.map_err(|_| KdsError::Closed)?;
                    if let Some(response) = self.queue.pop_front() {
                        metrics::counter!("atoll_kds_responses_sent_total", "type" => response.type_url.clone()).increment(1);
                        permit.send(Box::new(response));
                        last_sent = Instant::now();
                    }
                }
                _ = ticker.tick() => {
                    if self.queue.is_empty() && last_sent.elapsed() >= self.config.heartbeat {
                        let nonce = self.nonce();
                        self.queue.push_back(DeltaDiscoveryResponse {
                            type_url: HEARTBEAT_TYPE.into(),
                            system_version_info: "heartbeat".into(),
                            nonce,
                            ..Default::default()
                        });
                    }
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {}
                _ = crate::stopped(&mut stop) => return Ok(()),
            }
        }
    }

    fn on_request(&mut self, request: DeltaDiscoveryRequest) {
        let Some(kind) = request
            .type_url
            .parse::<Kind>()
            .ok()
            .filter(|k| self.kinds.contains_key(k))
        else {
            tracing::warn!(type_url = %request.type_url, "request for a type this stream does not carry");
            return;
        };
        if request.response_nonce.is_empty() {
            tracing::debug!(%kind, "peer subscribed");
            let ticket = self.reads.ticket();
            let state = self.kinds.entry(kind).or_default();
            state.subscribed = true;
            state.needs_snapshot = true;
            state.ticket = Some(ticket);
            return;
        }
        let acked_kind = self.nonces.remove(&request.response_nonce).unwrap_or(kind);
        match request.error_detail {
            None => self.observer.acked(acked_kind, &request.response_nonce),
            Some(status) => {
                metrics::counter!("atoll_kds_nacks_total", "type" => kind.name()).increment(1);
                tracing::warn!(%kind, nonce = %request.response_nonce, reason = %status.message, "peer rejected resources");
                self.observer
                    .nacked(acked_kind, &request.response_nonce, &status.message);
            }
        }
    }

    fn on_event(&mut self, event: Result<Event, RecvError>) {
        match event {
            Ok(Event::Put { key, version }) | Ok(Event::Deleted { key, version }) => {
                if let Some(state) = self.kinds.get_mut(&key.kind).filter(|s| s.subscribed) {
                    mark(&mut state.dirty, key, version);
                }
            }
            // Missed changes: compare everything the peer holds with the store again.
            Ok(Event::Resync) | Err(RecvError::Lagged(_)) => {
                for state in self.kinds.values_mut().filter(|s| s.subscribed) {
                    state.needs_resync = true;
                }
            }
            Err(RecvError::Closed) => {}
        }
    }

    /// Turns the most urgent pending work of one type into responses. On an error nothing is
    /// lost: the work is pending again.
    ///
    /// A full set or re-list leaves the keys the feed reported dirty: the list may come from a
    /// shared read that started before those writes, and a dirty key whose version the peer
    /// already has costs one read and sends nothing.
    async fn fill(&mut self) -> Result<(), KdsError> {
        let order: Vec<Kind> = self.scope.kinds().to_vec();
        for kind in order {
            let Some(state) = self.kinds.get_mut(&kind).filter(|s| s.subscribed) else {
                continue;
            };
            if state.needs_snapshot {
                state.needs_snapshot = false;
                state.needs_resync = false;
                let result = self.snapshot(kind).await;
                if result.is_err() {
                    self.kinds.entry(kind).or_default().needs_snapshot = true;
                }
                return result;
            }
            if state.needs_resync {
                state.needs_resync = false;
                let result = self.resync(kind).await;
                if result.is_err() {
                    self.kinds.entry(kind).or_default().needs_resync = true;
                }
                return result;
            }
            if !state.dirty.is_empty() {
                let keys = std::mem::take(&mut state.dirty);
                return self.changes(kind, keys).await;
            }
        }
        Ok(())
    }

    /// Every resource of `kind` as the peer should get it, with the revision it was read at:
    /// from a shared list for a full set, from a list of its own for a re-list after missed
    /// changes (which must be newer than anything already sent).
    async fn current(
        &self,
        kind: Kind,
        shared: bool,
    ) -> Result<Vec<(DeltaResource, u64)>, KdsError> {
        let ticket = self
            .kinds
            .get(&kind)
            .and_then(|s| s.ticket)
            .filter(|_| shared)
            .unwrap_or_else(|| self.reads.ticket());
        let items = self.reads.list(kind, ticket).await?;
        Ok(items
            .iter()
            .filter_map(|s| Some((wire::to_delta(&self.scope.export(&s.resource)?), s.version)))
            .collect())
    }

    async fn snapshot(&mut self, kind: Kind) -> Result<(), KdsError> {
        let listed = self.current(kind, true).await?;
        let state = self.kinds.entry(kind).or_default();
        state.sent = listed
            .iter()
            .map(|(r, revision)| (r.name.clone(), (r.version.clone(), *revision)))
            .collect();
        let resources: Vec<DeltaResource> = listed.into_iter().map(|(r, _)| r).collect();
        let chunks = self.pack(kind, resources, Vec::new());
        let parts = chunks.len();
        for (i, (resources, _)) in chunks.into_iter().enumerate() {
            self.push(
                kind,
                resources,
                Vec::new(),
                wire::snapshot_marker(i + 1, parts),
            );
        }
        tracing::debug!(%kind, parts, "sent the full set");
        Ok(())
    }

    async fn resync(&mut self, kind: Kind) -> Result<(), KdsError> {
        let listed = self.current(kind, false).await?;
        let state = self.kinds.entry(kind).or_default();
        let names: BTreeSet<&String> = listed.iter().map(|(r, _)| &r.name).collect();
        let removed: Vec<String> = state
            .sent
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        let changed: Vec<(DeltaResource, u64)> = listed
            .into_iter()
            .filter(|(r, _)| state.sent.get(&r.name).map(|(v, _)| v) != Some(&r.version))
            .collect();
        for name in &removed {
            state.sent.remove(name);
        }
        for (r, revision) in &changed {
            state
                .sent
                .insert(r.name.clone(), (r.version.clone(), *revision));
        }
        let changed = changed.into_iter().map(|(r, _)| r).collect();
        self.send_changes(kind, changed, removed);
        Ok(())
    }

    /// Reads every key before it records anything as sent, so that a failed read leaves the
    /// keys dirty and the peer's record untouched.
    async fn changes(&mut self, kind: Kind, keys: BTreeMap<Key, u64>) -> Result<(), KdsError> {
        let mut read = Vec::with_capacity(keys.len());
        let mut failed = None;
        for (key, revision) in &keys {
            match self.reads.get(key, *revision).await {
                Ok(stored) => read.push(stored.and_then(|s| {
                    let version = s.version;
                    Some((self.scope.export(&s.resource)?, version))
                })),
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        if let Some(err) = failed {
            let dirty = &mut self.kinds.entry(kind).or_default().dirty;
            for (key, revision) in keys {
                mark(dirty, key, revision);
            }
            return Err(err);
        }
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for ((key, wanted), exported) in keys.into_iter().zip(read) {
            let state = self.kinds.entry(kind).or_default();
            match exported {
                Some((resource, revision)) => {
                    let mut delta = wire::to_delta(&resource);
                    let held = state.sent.get(&delta.name);
                    // A shared read older than what the peer already has (from a newer
                    // list) is not sent: the newer write's own event follows.
                    if held.is_some_and(|(_, at)| revision < *at) {
                        continue;
                    }
                    if held.map(|(v, _)| v) != Some(&delta.version) {
                        state
                            .sent
                            .insert(delta.name.clone(), (delta.version.clone(), revision));
                        if let Some(parent) = &resource.meta.trace {
                            traced(&mut delta, kind, parent);
                        }
                        changed.push(delta);
                    }
                }
                None => {
                    let name = self.scope.exported_name(&key);
                    // Sent at a revision newer than the change being handled: the resource
                    // came back after it, and a later delete has an event of its own.
                    if state.sent.get(&name).is_some_and(|(_, at)| *at > wanted) {
                        continue;
                    }
                    if state.sent.remove(&name).is_some() {
                        removed.push(name);
                    }
                }
            }
        }
        self.send_changes(kind, changed, removed);
        Ok(())
    }

    fn send_changes(&mut self, kind: Kind, changed: Vec<DeltaResource>, removed: Vec<String>) {
        if changed.is_empty() && removed.is_empty() {
            return;
        }
        for (resources, removed) in self.pack(kind, changed, removed) {
            self.push(kind, resources, removed, String::new());
        }
    }

    /// Splits into chunks of about [`CHUNK_BYTES`] (always at least one), none over the
    /// budget. A single resource over the budget cannot travel at all: it is kept back and
    /// logged.
    fn pack(
        &self,
        kind: Kind,
        resources: Vec<DeltaResource>,
        removed: Vec<String>,
    ) -> Vec<(Vec<DeltaResource>, Vec<String>)> {
        let budget = self.config.max_message_bytes;
        let target = budget.min(CHUNK_BYTES);
        let mut chunks = vec![(Vec::new(), removed)];
        let mut size = chunks[0].1.iter().map(|n| n.len() + 4).sum::<usize>();
        for resource in resources {
            let len = resource.encoded_len() + 8;
            if len > budget {
                tracing::error!(%kind, name = %resource.name, bytes = len, budget, "resource too large for a KDS message: not sent");
                self.observer.nacked(
                    kind,
                    "",
                    &format!(
                        "{}: {len} bytes exceeds the message limit of {budget}",
                        resource.name
                    ),
                );
                continue;
            }
            if size + len > target
                && !chunks
                    .last()
                    .is_some_and(|c| c.0.is_empty() && c.1.is_empty())
            {
                chunks.push((Vec::new(), Vec::new()));
                size = 0;
            }
            size += len;
            if let Some(last) = chunks.last_mut() {
                last.0.push(resource);
            }
        }
        chunks
    }

    fn push(
        &mut self,
        kind: Kind,
        resources: Vec<DeltaResource>,
        removed: Vec<String>,
        info: String,
    ) {
        let nonce = self.nonce();
        self.nonces.insert(nonce.clone(), kind);
        self.nonce_order.push_back(nonce.clone());
        while self.nonce_order.len() > MAX_OUTSTANDING_NONCES {
            if let Some(old) = self.nonce_order.pop_front() {
                self.nonces.remove(&old);
            }
        }
        self.queue.push_back(DeltaDiscoveryResponse {
            system_version_info: info,
            resources,
            type_url: kind.name().into(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        });
    }

    fn nonce(&mut self) -> String {
        self.next_nonce += 1;
        self.next_nonce.to_string()
    }
}

/// Records that `key` changed at `revision`, keeping the newest revision seen.
fn mark(dirty: &mut BTreeMap<Key, u64>, key: Key, revision: u64) {
    let newest = dirty.entry(key).or_insert(revision);
    *newest = (*newest).max(revision);
}

/// Continues the trace of the write that changed a resource: a `kds.send` span whose context
/// the peer receives with the resource. Only live changes carry one; a full set does not
/// belong to any single write.
fn traced(delta: &mut DeltaResource, kind: Kind, parent: &str) {
    let span = tracing::info_span!("kds.send", %kind, resource = %delta.name);
    atoll_telemetry::propagation::continue_from(&span, parent);
    // A sender that exports no spans still passes the trace on.
    let own = atoll_telemetry::propagation::traceparent(&span);
    wire::set_trace(delta, own.as_deref().unwrap_or(parent));
}
