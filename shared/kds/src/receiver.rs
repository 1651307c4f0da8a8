//! The receiving side of a sync stream: subscribes to every type of its scope, applies full
//! sets (deleting what the peer no longer has) and changes to its own store, and answers each
//! response with an ACK, or a NACK naming the resources it could not take.
//!
//! A stream that delivers nothing — not even a heartbeat — for the liveness period is declared
//! stalled, so the caller reconnects (kumahq/kuma#16428): a connected but silent stream is never
//! mistaken for a healthy one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use atoll_model::Kind;
use atoll_proto::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaResource};
use atoll_store::{Key, ListQuery, Precondition, PutOutcome, Store, StoreError};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::wire::{self, HEARTBEAT_TYPE};
use crate::{KdsError, Scope, SyncObserver};

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// This side's name, sent as the node id.
    pub node_id: String,
    /// Resources larger than this are refused by name (and NACKed); the rest still apply.
    pub max_resource_bytes: usize,
    /// With nothing received for this long the stream is stalled.
    pub liveness: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            node_id: String::new(),
            max_resource_bytes: 1024 * 1024,
            liveness: Duration::from_secs(10),
        }
    }
}

/// ACKs kept waiting while the peer is slow to read; older plain ACKs are dropped first,
/// since a later ACK of the same type supersedes them.
const MAX_PENDING_REPLIES: usize = 1024;

pub struct Receiver {
    store: Arc<dyn Store>,
    scope: Arc<dyn Scope>,
    observer: Arc<dyn SyncObserver>,
    config: ReceiverConfig,
    /// Chunks of a full set being received, per type.
    partial: HashMap<Kind, Vec<DeltaResource>>,
    replies: VecDeque<DeltaDiscoveryRequest>,
}

impl Receiver {
    pub fn new(
        store: Arc<dyn Store>,
        scope: Arc<dyn Scope>,
        observer: Arc<dyn SyncObserver>,
        config: ReceiverConfig,
    ) -> Self {
        Receiver {
            store,
            scope,
            observer,
            config,
            partial: HashMap::new(),
            replies: VecDeque::new(),
        }
    }

    pub async fn run(
        mut self,
        mut responses: mpsc::Receiver<Box<DeltaDiscoveryResponse>>,
        requests: mpsc::Sender<Box<DeltaDiscoveryRequest>>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), KdsError> {
        for kind in self.scope.kinds() {
            self.replies.push_back(DeltaDiscoveryRequest {
                node: Some(Node {
                    id: self.config.node_id.clone(),
                    ..Default::default()
                }),
                type_url: kind.name().into(),
                resource_names_subscribe: vec!["*".into()],
                ..Default::default()
            });
        }
        let mut deadline = Instant::now() + self.config.liveness;
        loop {
            tokio::select! {
                response = responses.recv() => {
                    let Some(response) = response else { return Err(KdsError::Closed) };
                    deadline = Instant::now() + self.config.liveness;
                    self.on_response(*response).await?;
                }
                permit = requests.reserve(), if !self.replies.is_empty() => {
                    let permit = permit.map_err(|_| KdsError::Closed)?;
                    if let Some(reply) = self.replies.pop_front() {
                        permit.send(Box::new(reply));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    metrics::counter!("atoll_kds_stalled_streams_total").increment(1);
                    return Err(KdsError::Stalled(self.config.liveness));
                }
                _ = crate::stopped(&mut stop) => return Ok(()),
            }
        }
    }

    async fn on_response(&mut self, response: DeltaDiscoveryResponse) -> Result<(), KdsError> {
        if response.type_url == HEARTBEAT_TYPE {
            return Ok(());
        }
        let Some(kind) = response
            .type_url
            .parse::<Kind>()
            .ok()
            .filter(|k| self.scope.kinds().contains(k))
        else {
            self.reply(
                &response,
                Some(format!(
                    "type {:?} is not carried on this stream",
                    response.type_url
                )),
            );
            return Ok(());
        };
        metrics::counter!("atoll_kds_responses_received_total", "type" => kind.name()).increment(1);
        let errors = match wire::parse_snapshot_marker(&response.system_version_info) {
            Some((part, parts)) => {
                let buffer = self.partial.entry(kind).or_default();
                if part == 1 {
                    buffer.clear();
                }
                buffer.extend(response.resources.iter().cloned());
                if part < parts {
                    Vec::new()
                } else {
                    let all = self.partial.remove(&kind).unwrap_or_default();
                    self.apply_full_set(kind, &all).await?
                }
            }
            None => {
                self.apply_changes(kind, &response.resources, &response.removed_resources)
                    .await?
            }
        };
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if let Some(reason) = &error {
            tracing::warn!(%kind, %reason, "refused resources from the peer");
            self.observer.rejected(kind, reason);
        }
        self.reply(&response, error);
        Ok(())
    }

    fn reply(&mut self, response: &DeltaDiscoveryResponse, error: Option<String>) {
        let nack = error.is_some();
        self.replies.push_back(DeltaDiscoveryRequest {
            node: Some(Node {
                id: self.config.node_id.clone(),
                ..Default::default()
            }),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: error.map(|message| Status {
                code: 3,
                message,
                details: Vec::new(),
            }),
            ..Default::default()
        });
        if self.replies.len() > MAX_PENDING_REPLIES {
            // Drop the oldest plain ACK; NACKs carry reasons the peer must see.
            if let Some(pos) = self
                .replies
                .iter()
                .position(|r| r.error_detail.is_none() && !r.response_nonce.is_empty())
            {
                self.replies.remove(pos);
            }
        }
        if nack {
            metrics::counter!("atoll_kds_nacks_sent_total", "type" => response.type_url.clone())
                .increment(1);
        }
    }

    /// Decodes, size-checks and imports; the error names the resource.
    fn accept(&self, kind: Kind, delta: &DeltaResource) -> Result<atoll_model::Resource, String> {
        let size = delta.encoded_len();
        if size > self.config.max_resource_bytes {
            return Err(format!(
                "{}: {size} bytes exceeds the limit of {}",
                delta.name, self.config.max_resource_bytes
            ));
        }
        let resource = wire::from_delta(kind, delta).map_err(|e| format!("{}: {e}", delta.name))?;
        self.scope
            .import(resource)
            .map_err(|e| format!("{}: {e}", delta.name))
    }

    /// Local resources of `kind` this stream manages, by the peer's name for them.
    async fn owned(&self, kind: Kind) -> Result<BTreeMap<String, Key>, StoreError> {
        let page = self
            .store
            .list(&ListQuery {
                kind: Some(kind),
                labels: self.scope.owned_labels(),
                ..Default::default()
            })
            .await?;
        Ok(page
            .items
            .iter()
            .filter(|s| self.scope.owns(&s.resource))
            .map(|s| (self.scope.peer_name(&s.resource), Key::of(&s.resource)))
            .collect())
    }

    async fn apply_full_set(
        &mut self,
        kind: Kind,
        resources: &[DeltaResource],
    ) -> Result<Vec<String>, KdsError> {
        let mut owned = self.owned(kind).await?;
        let mut errors = Vec::new();
        let mut changes = 0;
        for delta in resources {
            // Whatever the peer still names stays, even if this copy of it was refused.
            let held = owned.remove(&delta.name);
            match self.accept(kind, delta) {
                Ok(resource) => {
                    let ours = held.is_some_and(|key| key == Key::of(&resource));
                    changes += self.upsert(resource, ours, &mut errors).await?
                }
                Err(e) => errors.push(e),
            }
        }
        for (_, key) in owned {
            self.remove(&key).await?;
            changes += 1;
        }
        tracing::info!(%kind, resources = resources.len(), changes, "applied the full set");
        self.observer.synced(kind, changes);
        Ok(errors)
    }

    async fn apply_changes(
        &mut self,
        kind: Kind,
        resources: &[DeltaResource],
        removed: &[String],
    ) -> Result<Vec<String>, KdsError> {
        let mut errors = Vec::new();
        for delta in resources {
            match self.accept(kind, delta) {
                Ok(resource) => {
                    self.upsert(resource, false, &mut errors).await?;
                }
                Err(e) => errors.push(e),
            }
        }
        if !removed.is_empty() {
            let owned = self.owned(kind).await?;
            for name in removed {
                match owned.get(name) {
                    Some(key) => self.remove(key).await?,
                    None => errors.push(format!(
                        "{name}: cannot delete: not among the resources this stream manages"
                    )),
                }
            }
        }
        Ok(errors)
    }

    /// Writes unless identical; counts 1 for a real write. `ours`: the key is known to be
    /// this stream's (from the list of owned resources), so it need not be read first.
    async fn upsert(
        &self,
        mut resource: atoll_model::Resource,
        ours: bool,
        errors: &mut Vec<String>,
    ) -> Result<usize, KdsError> {
        let key = Key::of(&resource);
        // A change that carries its trace is applied in a span of that trace, and stored with
        // this span's context, so what the store's readers do next continues the same trace.
        let span = match resource.meta.trace.take() {
            Some(parent) => {
                let span = tracing::info_span!("kds.apply", kind = %key.kind, name = %key.name, mesh = ?key.mesh);
                atoll_telemetry::propagation::continue_from(&span, &parent);
                // A zone that exports no spans still passes the trace on.
                resource.meta.trace =
                    atoll_telemetry::propagation::traceparent(&span).or(Some(parent));
                span
            }
            None => tracing::Span::none(),
        };
        self.write(key, resource, ours, errors)
            .instrument(span)
            .await
    }

    async fn write(
        &self,
        key: Key,
        resource: atoll_model::Resource,
        ours: bool,
        errors: &mut Vec<String>,
    ) -> Result<usize, KdsError> {
        if !ours
            && let Some(existing) = self.store.get(&key).await?
            && !self.scope.owns(&existing.resource)
        {
            errors.push(format!(
                "{}: a local resource of that name exists and is not synced",
                key.name
            ));
            return Ok(0);
        }
        match self.store.put(resource, Precondition::Any).await? {
            PutOutcome::Unchanged(_) => Ok(0),
            PutOutcome::Created(_) | PutOutcome::Updated(_) => {
                metrics::counter!("atoll_kds_resources_applied_total", "type" => key.kind.name())
                    .increment(1);
                Ok(1)
            }
        }
    }

    async fn remove(&self, key: &Key) -> Result<(), KdsError> {
        match self.store.delete(key, None).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
