//! Envoy's Aggregated Discovery Service, state-of-the-world and delta, over the hub's
//! per-proxy configurations.
//!
//! Every stream is authenticated by the data plane token in its metadata (Envoy sends what
//! the bootstrap put there): the token must name the proxy of the stream's `node.id`, and every
//! configuration is checked against it before it is sent, so a stream never receives the
//! certificates of a Dataplane its token does not admit (even when the Dataplane changes while
//! the stream is open). Streams end when the zone shuts down.
//!
//! A response goes out only when what the proxy subscribed to has a new version: an unchanged
//! recomputation sends nothing. A NACK keeps the proxy on its last good configuration (Envoy
//! does that; we just never resend the rejected version), is logged with the proxy and reason,
//! and shows in the proxy's insight.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, Resource,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use atoll_kds::sender::Hold;

use crate::initial_sync::InitialSync;

use super::authn::{Authenticator, Denied, Grant, bearer_metadata};
use crate::proxy::deps::ProxyId;
use crate::proxy::hub::{Hub, Nack, SnapshotRx, now_rfc3339};
use crate::proxy::meta::ProxyMeta;
use crate::xds::snapshot::{CLUSTER, ENDPOINT, PUSH_ORDER, Snapshot, is_wildcard_type};

/// Envoy's `node.id` for a Dataplane: `<mesh>.<name>`.
pub fn node_id(mesh: &str, name: &str) -> String {
    format!("{mesh}.{name}")
}

/// The proxy a `node.id` names. A zone egress is in no mesh: its `node.id` is `.<name>`.
pub fn parse_node_id(id: &str) -> Result<ProxyId, Status> {
    match id.split_once('.') {
        Some((mesh, name)) if !name.is_empty() => Ok((mesh.to_string(), name.to_string())),
        _ => Err(Status::invalid_argument(format!(
            "node.id {id:?} must be <mesh>.<dataplane name> (or .<zone egress name>)"
        ))),
    }
}

pub struct Ads {
    pub hub: Arc<Hub>,
    pub auth: Authenticator,
    /// While on, a proxy that reconnects with configuration it already holds gets no update:
    /// the zone has just started on an empty store, and a configuration computed before its
    /// other proxies registered again would take their endpoints away. Envoy keeps what it
    /// has meanwhile; a new proxy, with nothing to keep, is configured at once.
    pub start_hold: Option<(Arc<InitialSync>, Hold)>,
    /// Turns true on shutdown: every stream ends.
    pub stop: watch::Receiver<bool>,
}

/// What a stream carries along: the proxy's grant and the shutdown signal.
#[derive(Clone)]
struct StreamContext {
    grant: Grant,
    stop: watch::Receiver<bool>,
}

impl Ads {
    /// The grant of a stream's token, and the proxy its first request names, which the token
    /// must cover.
    async fn admit<T: prost::Message + Default>(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        inbound: &mut Streaming<T>,
        node: impl FnOnce(&T) -> Option<&Node>,
    ) -> Result<(T, (ProxyId, ProxyMeta), StreamContext), Status> {
        let token = bearer_metadata(metadata);
        self.auth.any_proxy(token).map_err(Denied::into_status)?;
        let (first, proxy, meta) = first_request(inbound, node).await?;
        let refused = |denied: Denied| {
            tracing::warn!(mesh = %proxy.0, proxy = %proxy.1, ?denied, "ADS stream refused");
            denied.into_status()
        };
        let grant = if proxy.0.is_empty() {
            // A zone egress: its zone token (scope egress) covers every egress of the zone.
            self.auth.zone_proxy(token, "egress").map_err(refused)?;
            Grant::Any
        } else {
            let grant = self.auth.dataplane(token).map_err(Denied::into_status)?;
            grant.admits_proxy(&proxy.0, &proxy.1).map_err(refused)?;
            grant
        };
        Ok((
            first,
            (proxy, meta),
            StreamContext {
                grant,
                stop: self.stop.clone(),
            },
        ))
    }
}

impl Ads {
    /// The hold a stream waits for before its first response: the zone's start hold, for an
    /// Envoy that already has configuration, while it is on. Such a proxy ran before the
    /// zone's restart, so the hold also waits for its Dataplane to register again.
    fn resume_hold(&self, resumed: bool, proxy: &ProxyId) -> Option<Hold> {
        let (sync, hold) = self.start_hold.as_ref()?;
        if !resumed || !hold.holding() {
            return None;
        }
        // A zone egress (no mesh) is a ZoneEgress, not a Dataplane: nothing to wait for.
        if !proxy.0.is_empty() {
            sync.expect(&proxy.0, &proxy.1);
        }
        Some(hold.clone())
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Ends the hub subscription however the stream ends.
struct Subscription {
    hub: Arc<Hub>,
    proxy: ProxyId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.proxy);
        tracing::info!(mesh = %self.proxy.0, proxy = %self.proxy.1, "ADS stream closed");
    }
}

fn nack(hub: &Hub, proxy: &ProxyId, type_url: &str, version: &str, reason: &str) {
    tracing::warn!(mesh = %proxy.0, proxy = %proxy.1, type_url, version, reason, "Envoy rejected a configuration; it keeps the last good one");
    metrics::counter!("atoll_xds_nacks_total").increment(1);
    hub.update(proxy, |i| {
        i.nacks += 1;
        i.last_nack = Some(Nack {
            type_url: type_url.to_string(),
            version: version.to_string(),
            reason: reason.to_string(),
            at: now_rfc3339(),
        })
    });
}

fn ack(hub: &Hub, proxy: &ProxyId, type_url: &str, version: &str) {
    hub.update(proxy, |i| {
        i.acked.insert(type_url.to_string(), version.to_string());
    });
}

fn sent(hub: &Hub, proxy: &ProxyId) {
    metrics::counter!("atoll_xds_responses_total").increment(1);
    hub.update(proxy, |i| i.responses_sent += 1);
}

#[derive(Default)]
struct SotwType {
    /// `None`: everything of the type.
    names: Option<BTreeSet<String>>,
    sent_version: Option<String>,
    nonce: String,
}

/// Reads a stream's first request, the proxy its `node.id` names and its node metadata.
async fn first_request<T: prost::Message + Default>(
    inbound: &mut Streaming<T>,
    node: impl FnOnce(&T) -> Option<&Node>,
) -> Result<(T, ProxyId, ProxyMeta), Status> {
    let first = inbound
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the stream closed before its first request"))?;
    let node = node(&first);
    let proxy = parse_node_id(node.map(|n| n.id.as_str()).unwrap_or(""))?;
    let meta = ProxyMeta::from_node(node);
    Ok((first, proxy, meta))
}

/// Runs `serve` for `proxy` on its own task, subscribed to the proxy's configuration for as
/// long as it runs; an error it returns ends the stream with that status.
fn open<R, F, Fut>(
    hub: Arc<Hub>,
    (proxy, meta): (ProxyId, ProxyMeta),
    hold: Option<Hold>,
    variant: &'static str,
    serve: F,
) -> Response<ResponseStream<R>>
where
    R: Send + 'static,
    F: FnOnce(Arc<Hub>, ProxyId, SnapshotRx, Tx<R>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let (tx, rx) = mpsc::channel::<Queued<R>>(16);
    tokio::spawn(async move {
        let snapshots = hub.subscribe(&proxy, meta);
        let _subscription = Subscription {
            hub: hub.clone(),
            proxy: proxy.clone(),
        };
        tracing::info!(mesh = %proxy.0, proxy = %proxy.1, variant, "ADS stream opened");
        if let Some(hold) = hold {
            tracing::info!(mesh = %proxy.0, proxy = %proxy.1, "the proxy keeps its configuration until the zone's proxies have registered again");
            metrics::counter!("atoll_xds_streams_held_at_start_total").increment(1);
            tokio::select! {
                () = hold.released() => {}
                () = tx.closed() => return,
            }
        }
        if let Err(status) = serve(hub, proxy, snapshots, tx.clone()).await {
            let _ = tx.send(Err(Box::new(status))).await;
        }
    });
    Response::new(Box::pin(
        ReceiverStream::new(rx).map(|queued| queued.map(|r| *r).map_err(|s| *s)),
    ))
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let (first, proxy, cx) = self
            .admit(&metadata, &mut inbound, |r| r.node.as_ref())
            .await?;
        let hold = self.resume_hold(!first.version_info.is_empty(), &proxy.0);
        Ok(open(
            self.hub.clone(),
            proxy,
            hold,
            "state of the world",
            |hub, proxy, snapshots, tx| async move {
                sotw(&hub, &proxy, first, inbound, snapshots, &tx, cx).await
            },
        ))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let (first, proxy, cx) = self
            .admit(&metadata, &mut inbound, |r| r.node.as_ref())
            .await?;
        let hold = self.resume_hold(!first.initial_resource_versions.is_empty(), &proxy.0);
        Ok(open(
            self.hub.clone(),
            proxy,
            hold,
            "delta",
            |hub, proxy, snapshots, tx| async move {
                delta(&hub, &proxy, first, inbound, snapshots, &tx, cx).await
            },
        ))
    }
}

/// A response waiting for the stream, boxed: the channel reserves its slots in blocks of 32
/// up front, and unboxed responses and statuses made that about 5 kB per open stream.
type Queued<T> = Result<Box<T>, Box<Status>>;
type Tx<T> = mpsc::Sender<Queued<T>>;

async fn sotw(
    hub: &Hub,
    proxy: &ProxyId,
    first: DiscoveryRequest,
    mut inbound: Streaming<DiscoveryRequest>,
    mut snapshots: SnapshotRx,
    tx: &Tx<DiscoveryResponse>,
    mut cx: StreamContext,
) -> Result<(), Status> {
    let mut types: BTreeMap<String, SotwType> = BTreeMap::new();
    let mut nonce = 0u64;
    let mut pending = Some(first);
    loop {
        let request = match next(&mut pending, &mut inbound, &mut snapshots, &mut cx.stop).await {
            Wake::Request(r) => Some(r),
            Wake::Snapshot => None,
            Wake::End => return Ok(()),
        };
        if let Some(request) = request {
            let type_url = request.type_url.clone();
            let state = types.entry(type_url.clone()).or_default();
            if !request.response_nonce.is_empty() && request.response_nonce != state.nonce {
                continue; // stale: answers a response superseded since
            }
            if let Some(error) = &request.error_detail {
                nack(
                    hub,
                    proxy,
                    &type_url,
                    state.sent_version.as_deref().unwrap_or(""),
                    &error.message,
                );
            } else if !request.response_nonce.is_empty() {
                ack(hub, proxy, &type_url, &request.version_info);
            }
            state.names = if is_wildcard_type(&type_url) && request.resource_names.is_empty() {
                None
            } else {
                Some(request.resource_names.iter().cloned().collect())
            };
        }
        push(
            hub,
            proxy,
            &mut snapshots,
            &mut types,
            &mut nonce,
            sotw_response,
            |s| s.sent_version = None,
            tx,
            &cx.grant,
        )
        .await?;
    }
}

/// What a stream's loop handles next.
enum Wake<T> {
    Request(T),
    /// A new configuration for the proxy.
    Snapshot,
    /// Envoy went away, the proxy's configuration channel closed, or the zone is stopping.
    End,
}

/// The first request (kept from the handshake) first, then whichever comes next: a request
/// from Envoy or a new snapshot.
async fn next<T: prost::Message + Default>(
    pending: &mut Option<T>,
    inbound: &mut Streaming<T>,
    snapshots: &mut SnapshotRx,
    stop: &mut watch::Receiver<bool>,
) -> Wake<T> {
    if let Some(first) = pending.take() {
        return Wake::Request(first);
    }
    tokio::select! {
        _ = async { let _ = stop.wait_for(|s| *s).await; } => Wake::End,
        message = inbound.message() => match message {
            Ok(Some(r)) => Wake::Request(r),
            Ok(None) => Wake::End,
            Err(status) => {
                tracing::debug!(%status, "ADS stream ended");
                Wake::End
            }
        },
        changed = snapshots.changed() => match changed {
            Ok(()) => Wake::Snapshot,
            Err(_) => Wake::End,
        },
    }
}

/// Sends, in push order, every subscribed type whose resources changed in the newest
/// snapshot, once the stream's grant admits the Dataplane the snapshot was computed for.
///
/// Clusters before endpoints, and after any cluster response every endpoint again (`resend`
/// forgets what was sent): an updated EDS cluster is a new cluster to Envoy, warming until an
/// endpoint response arrives for it, and Envoy does not ask again for endpoints it already
/// holds. Without this, a cluster whose settings change (a policy, a timeout) would never
/// leave warming while its endpoints stay the same.
#[allow(clippy::too_many_arguments)]
async fn push<S, R>(
    hub: &Hub,
    proxy: &ProxyId,
    snapshots: &mut SnapshotRx,
    types: &mut BTreeMap<String, S>,
    nonce: &mut u64,
    respond: fn(&Snapshot, &str, &mut S, &mut u64) -> Option<R>,
    resend: fn(&mut S),
    tx: &Tx<R>,
    grant: &Grant,
) -> Result<(), Status> {
    let snapshot = snapshots.borrow_and_update().clone();
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    if let Some(dataplane) = &snapshot.dataplane
        && let Err(denied) = grant.admits(&proxy.0, &proxy.1, dataplane)
    {
        tracing::warn!(mesh = %proxy.0, proxy = %proxy.1, ?denied, "the stream's token does not admit the proxy's Dataplane; ending the stream");
        return Err(denied.into_status());
    }
    // Opened at the first response, so a request answered with nothing leaves no span.
    let mut traced: Option<tracing::Span> = None;
    let mut pushed = Vec::new();
    for type_url in PUSH_ORDER {
        let Some(state) = types.get_mut(type_url) else {
            continue;
        };
        if let Some(response) = respond(&snapshot, type_url, state, nonce) {
            if traced.is_none()
                && let Some(parent) = &snapshot.trace
            {
                let span = tracing::info_span!("xds.push", mesh = %proxy.0, proxy = %proxy.1, types = tracing::field::Empty);
                atoll_telemetry::propagation::continue_from(&span, parent);
                traced = Some(span);
            }
            pushed.push(type_url);
            tx.send(Ok(Box::new(response)))
                .await
                .map_err(|_| Status::cancelled("the stream closed"))?;
            sent(hub, proxy);
            if type_url == CLUSTER
                && let Some(endpoints) = types.get_mut(ENDPOINT)
            {
                resend(endpoints);
            }
        }
    }
    if let Some(span) = traced {
        span.record("types", pushed.join(","));
    }
    Ok(())
}

fn sotw_response(
    snapshot: &Snapshot,
    type_url: &str,
    state: &mut SotwType,
    nonce: &mut u64,
) -> Option<DiscoveryResponse> {
    let empty = Default::default();
    let set = snapshot.of(type_url).unwrap_or(&empty);
    let version = set.version_of(state.names.as_ref());
    if state.sent_version.as_deref() == Some(version.as_str()) {
        return None;
    }
    *nonce += 1;
    state.sent_version = Some(version.clone());
    state.nonce = nonce.to_string();
    Some(DiscoveryResponse {
        version_info: version,
        type_url: type_url.to_string(),
        nonce: state.nonce.clone(),
        resources: set
            .resources
            .iter()
            .filter(|(name, _)| state.names.as_ref().is_none_or(|n| n.contains(*name)))
            .map(|(_, r)| r.any.clone())
            .collect(),
        ..Default::default()
    })
}

#[derive(Default)]
struct DeltaType {
    wildcard: bool,
    names: BTreeSet<String>,
    /// What the proxy holds: name to version.
    known: BTreeMap<String, String>,
    nonce: String,
    system_version: String,
    responded: bool,
}

async fn delta(
    hub: &Hub,
    proxy: &ProxyId,
    first: DeltaDiscoveryRequest,
    mut inbound: Streaming<DeltaDiscoveryRequest>,
    mut snapshots: SnapshotRx,
    tx: &Tx<DeltaDiscoveryResponse>,
    mut cx: StreamContext,
) -> Result<(), Status> {
    let mut types: BTreeMap<String, DeltaType> = BTreeMap::new();
    let mut nonce = 0u64;
    let mut pending = Some(first);
    loop {
        let request = match next(&mut pending, &mut inbound, &mut snapshots, &mut cx.stop).await {
            Wake::Request(r) => Some(r),
            Wake::Snapshot => None,
            Wake::End => return Ok(()),
        };
        if let Some(request) = request {
            let type_url = request.type_url.clone();
            let fresh = !types.contains_key(&type_url);
            let state = types.entry(type_url.clone()).or_default();
            if fresh {
                state.known = request
                    .initial_resource_versions
                    .clone()
                    .into_iter()
                    .collect();
                state.wildcard =
                    is_wildcard_type(&type_url) && request.resource_names_subscribe.is_empty();
            }
            for name in &request.resource_names_subscribe {
                if name == "*" {
                    state.wildcard = true;
                } else {
                    state.names.insert(name.clone());
                }
            }
            for name in &request.resource_names_unsubscribe {
                if name == "*" {
                    state.wildcard = false;
                }
                state.names.remove(name);
                state.known.remove(name);
            }
            if !request.response_nonce.is_empty() {
                if request.response_nonce != state.nonce {
                    continue;
                }
                match &request.error_detail {
                    Some(error) => {
                        nack(hub, proxy, &type_url, &state.system_version, &error.message)
                    }
                    None => ack(hub, proxy, &type_url, &state.system_version),
                }
            }
        }
        push(
            hub,
            proxy,
            &mut snapshots,
            &mut types,
            &mut nonce,
            delta_response,
            |s| s.known.clear(),
            tx,
            &cx.grant,
        )
        .await?;
    }
}

fn delta_response(
    snapshot: &Snapshot,
    type_url: &str,
    state: &mut DeltaType,
    nonce: &mut u64,
) -> Option<DeltaDiscoveryResponse> {
    let empty = Default::default();
    let set = snapshot.of(type_url).unwrap_or(&empty);
    let wanted = |name: &str| state.wildcard || state.names.contains(name);
    let resources: Vec<Resource> = set
        .resources
        .iter()
        .filter(|(name, r)| wanted(name) && state.known.get(*name) != Some(&r.version))
        .map(|(name, r)| Resource {
            name: name.clone(),
            version: r.version.clone(),
            resource: Some(r.any.clone()),
            ..Default::default()
        })
        .collect();
    let removed: Vec<String> = state
        .known
        .keys()
        .filter(|name| !set.resources.contains_key(*name) || !wanted(name))
        .cloned()
        .collect();
    if resources.is_empty() && removed.is_empty() && state.responded {
        return None;
    }
    for r in &resources {
        state.known.insert(r.name.clone(), r.version.clone());
    }
    for name in &removed {
        state.known.remove(name);
    }
    *nonce += 1;
    state.nonce = nonce.to_string();
    state.responded = true;
    state.system_version = set.version_of(None);
    Some(DeltaDiscoveryResponse {
        system_version_info: state.system_version.clone(),
        type_url: type_url.to_string(),
        nonce: state.nonce.clone(),
        resources,
        removed_resources: removed,
        ..Default::default()
    })
}
