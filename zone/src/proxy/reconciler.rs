//! Keeps every connected proxy's configuration current: follows the store's change feed,
//! updates the world, and recomputes only the proxies the dependency index names. Changes are
//! handled as they arrive (a burst is taken as one batch), never on a timer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_store::{Event, Key, ListQuery, Store, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{mpsc, watch};

use super::build::build;
use super::deps::{Dep, Index, ProxyId};
use super::hub::{Command, Hub};
use super::identity::Identities;
use super::world::{KINDS, World};

/// Reads every resource the builder uses.
pub async fn load(store: &dyn Store) -> Result<World, StoreError> {
    let mut world = World::default();
    for kind in KINDS {
        let mut offset = 0;
        loop {
            let page = store
                .list(&ListQuery {
                    kind: Some(kind),
                    offset,
                    size: Some(1000),
                    ..Default::default()
                })
                .await?;
            for stored in &page.items {
                let meta = &stored.resource.meta;
                world.apply(
                    kind,
                    meta.mesh.as_deref(),
                    &meta.name,
                    Some(&stored.resource),
                );
            }
            match page.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
    }
    Ok(world)
}

struct Reconciler {
    zone: String,
    vip_cidr: crate::external::vip::Cidr,
    names: crate::external::status::Publisher,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    world: World,
    index: Index,
    identities: Identities,
}

impl Reconciler {
    /// `cause`: the `traceparent` of the change being applied, handed on with the snapshot.
    fn recompute(&mut self, proxy: &ProxyId, cause: Option<&str>) {
        let started = Instant::now();
        let _span =
            tracing::debug_span!("xds_generate", mesh = %proxy.0, proxy = %proxy.1).entered();
        match build(&self.world, &mut self.identities, proxy, Instant::now()) {
            None => {
                // Not registered (yet): rebuild when its Dataplane appears.
                self.index.set(
                    proxy,
                    BTreeSet::from([Dep::Dataplane(proxy.0.clone(), proxy.1.clone())]),
                );
                self.hub.update(proxy, |i| {
                    i.problems = vec!["no Dataplane with this name is registered".into()]
                });
            }
            Some(built) => {
                self.index.set(proxy, built.deps);
                let problems = built.problems;
                let mut snapshot = built.snapshot;
                snapshot.trace = cause.map(str::to_string);
                let changed = self.hub.publish(proxy, snapshot);
                if changed && !problems.is_empty() {
                    tracing::warn!(mesh = %proxy.0, proxy = %proxy.1, ?problems, "configuration is incomplete");
                }
                self.hub.update(proxy, |i| i.problems = problems);
                if changed {
                    metrics::counter!("atoll_xds_configs_changed_total").increment(1);
                }
            }
        }
        metrics::histogram!("atoll_xds_generation_seconds").record(started.elapsed().as_secs_f64());
    }

    /// Hands the API the MeshExternalService names the world now gives.
    fn publish_names(&self) {
        let names = self.world.external_names();
        self.names.send_if_modified(|current| {
            if **current == *names {
                return false;
            }
            *current = std::sync::Arc::new(names.clone());
            true
        });
    }

    fn recompute_all(&mut self) {
        for proxy in self.hub.connected() {
            self.recompute(&proxy, None);
        }
    }

    /// Applies a batch of feed events; false when the world may have missed changes.
    async fn apply(&mut self, events: Vec<Event>) -> bool {
        let mut touched = BTreeSet::new();
        let mut complete = true;
        let mut traces = Vec::new();
        for event in events {
            let (key, present) = match event {
                Event::Put { key, .. } => (key, true),
                Event::Deleted { key, .. } => (key, false),
                Event::Resync => {
                    complete = false;
                    continue;
                }
            };
            if !KINDS.contains(&key.kind) {
                continue;
            }
            let resource = if present {
                match self.store.get(&key).await {
                    Ok(stored) => stored.map(|s| s.resource),
                    Err(err) => {
                        tracing::warn!(%err, kind = %key.kind, name = %key.name, "cannot read a changed resource; keeping the last good copy and re-reading everything");
                        complete = false;
                        continue;
                    }
                }
            } else {
                None
            };
            if let Some(trace) = resource.as_ref().and_then(|r| r.meta.trace.clone()) {
                traces.push(trace);
            }
            let Key { kind, mesh, name } = key;
            if kind == atoll_model::Kind::Dataplane
                && !present
                && let Some(mesh) = &mesh
            {
                // Deregistered: its insight goes too, so per-proxy state stays bounded by the
                // proxies that exist.
                self.hub.forget(&(mesh.clone(), name.clone()));
            }
            touched.extend(
                self.world
                    .apply(kind, mesh.as_deref(), &name, resource.as_ref()),
            );
        }
        if touched.contains(&Dep::ExternalNames) {
            self.publish_names();
        }
        let affected = self.index.affected(&touched);
        metrics::counter!("atoll_xds_recomputations_total").increment(affected.len() as u64);
        let span = reconcile_span(&traces, affected.len());
        let cause = atoll_telemetry::propagation::traceparent(&span);
        let _entered = span.enter();
        for proxy in affected {
            self.recompute(&proxy, cause.as_deref());
        }
        complete
    }

    async fn resync(&mut self) -> bool {
        match load(self.store.as_ref()).await {
            Ok(mut world) => {
                world.local_zone = self.zone.clone();
                world.vip_cidr = self.vip_cidr;
                // Node metadata is not in the store: it lives as long as the streams.
                world.proxy_meta = std::mem::take(&mut self.world.proxy_meta);
                self.world = world;
                self.publish_names();
                self.recompute_all();
                true
            }
            Err(err) => {
                tracing::warn!(%err, "cannot re-read the store; proxies keep their last configuration");
                false
            }
        }
    }
}

/// A span for a batch of changes when one of them carries a trace: the batch continues the
/// first such trace (a batch is one step, so it has one parent) and counts the others.
fn reconcile_span(traces: &[String], proxies: usize) -> tracing::Span {
    let Some(first) = traces.first() else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!("xds.reconcile", proxies, traced_changes = traces.len());
    atoll_telemetry::propagation::continue_from(&span, first);
    span
}

/// Runs until `stop`.
pub async fn run(
    zone: String,
    vip_cidr: crate::external::vip::Cidr,
    names: crate::external::status::Publisher,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut feed = store.watch();
    let mut r = Reconciler {
        zone,
        vip_cidr,
        names,
        store,
        hub,
        world: World::default(),
        index: Index::default(),
        identities: Identities::default(),
    };
    let mut in_sync = r.resync().await;
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let renewal = r
            .identities
            .next_renewal()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(far);
        let retry = if in_sync {
            far()
        } else {
            tokio::time::Instant::now() + Duration::from_secs(1)
        };
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            command = commands.recv() => match command {
                Some(Command::Connected(proxy, meta)) => {
                    r.world.proxy_meta.insert(proxy.clone(), meta);
                    r.recompute(&proxy, None);
                }
                Some(Command::Disconnected(proxy)) => {
                    r.index.remove(&proxy);
                    r.identities.remove(&proxy);
                    r.world.proxy_meta.remove(&proxy);
                    // A stream whose Dataplane is gone leaves nothing behind.
                    if !r.world.dataplanes.contains_key(&proxy) {
                        r.hub.forget(&proxy);
                    }
                }
                None => return,
            },
            event = feed.recv() => {
                let mut batch = Vec::new();
                let lagged = |missed: u64| {
                    // Every proxy is recomputed after this: worth knowing about at scale.
                    tracing::warn!(missed, "the reconciler fell behind the store's change feed; re-reading everything");
                    metrics::counter!("atoll_xds_feed_lagged_total").increment(1);
                };
                match event {
                    Ok(e) => batch.push(e),
                    Err(RecvError::Lagged(n)) => {
                        lagged(n);
                        in_sync = false;
                    }
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match feed.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(TryRecvError::Lagged(n)) => {
                            lagged(n);
                            in_sync = false;
                        }
                        Err(_) => break,
                    }
                }
                if !r.apply(batch).await {
                    in_sync = false;
                }
                if !in_sync {
                    in_sync = r.resync().await;
                }
            }
            _ = tokio::time::sleep_until(renewal) => {
                for proxy in r.identities.due(Instant::now()) {
                    tracing::info!(mesh = %proxy.0, proxy = %proxy.1, "renewing the workload certificate");
                    r.recompute(&proxy, None);
                }
                // Whatever is still due no longer uses a certificate (mTLS off, proxy gone):
                // forget it rather than wake up for it again.
                for proxy in r.identities.due(Instant::now()) {
                    r.identities.remove(&proxy);
                }
            }
            _ = tokio::time::sleep_until(retry) => {
                in_sync = r.resync().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use atoll_model::Kind;
    use atoll_store::{MemoryStore, Precondition};

    use super::*;

    fn resource(yaml: &str) -> atoll_model::Resource {
        atoll_model::parse_documents(yaml)
            .remove(0)
            .outcome
            .expect("valid")
    }

    /// Per-proxy state is bounded by the proxies that exist: a deregistered Dataplane's
    /// insight goes with it.
    #[tokio::test]
    async fn a_deregistered_dataplane_loses_its_insight() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store
            .put(resource("type: Mesh\nname: default\n"), Precondition::Any)
            .await
            .unwrap();
        store
            .put(
                resource("type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n"),
                Precondition::Any,
            )
            .await
            .unwrap();
        let (hub, commands) = Hub::new();
        let (_stop_tx, stop) = watch::channel(false);
        tokio::spawn(run(
            "zone-1".into(),
            Default::default(),
            crate::external::status::board().0,
            store.clone(),
            hub.clone(),
            commands,
            stop,
        ));
        let proxy: ProxyId = ("default".into(), "web-1".into());
        let mut snapshots = hub.subscribe(&proxy, Default::default());
        // The reconciler follows the store once it has computed the proxy's configuration.
        tokio::time::timeout(Duration::from_secs(5), snapshots.changed())
            .await
            .expect("a configuration")
            .unwrap();
        assert!(hub.insight(&proxy).is_some());
        store
            .delete(&Key::new(Kind::Dataplane, Some("default"), "web-1"), None)
            .await
            .unwrap();
        // While its stream lasts, the insight says why it has no configuration...
        let deadline = Instant::now() + Duration::from_secs(5);
        while !hub
            .insight(&proxy)
            .is_some_and(|i| i.problems.iter().any(|p| p.contains("no Dataplane")))
        {
            assert!(Instant::now() < deadline, "no problem reported");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ...and when the stream ends, it goes.
        hub.unsubscribe(&proxy);
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.insight(&proxy).is_some() {
            assert!(
                Instant::now() < deadline,
                "the insight outlived its Dataplane"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
