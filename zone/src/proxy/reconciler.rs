//! Keeps every connected proxy's configuration current: reads the zone's world when it
//! changes and recomputes only the proxies the dependency index names. Changes are handled as
//! they arrive (a burst is taken as one batch), never on a timer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::build::build;
use super::deps::{Dep, Index, ProxyId};
use super::hub::{Command, Hub};
use super::identity::Identities;
use super::meta::ProxyMeta;
use crate::world::{Changes, Shared};

struct Reconciler {
    names: crate::external::status::Publisher,
    hub: Arc<Hub>,
    world: Shared,
    /// What each connected proxy told about itself (node metadata): not in the store, it lives
    /// as long as the proxy's stream.
    metas: BTreeMap<ProxyId, ProxyMeta>,
    index: Index,
    identities: Identities,
}

impl Reconciler {
    /// `cause`: the `traceparent` of the change being applied, handed on with the snapshot.
    fn recompute(&mut self, proxy: &ProxyId, cause: Option<&str>) {
        let started = Instant::now();
        let _span =
            tracing::debug_span!("xds_generate", mesh = %proxy.0, proxy = %proxy.1).entered();
        // The world is held for this one proxy only, so its follower never waits long.
        let built = build(
            &self.world.read(),
            self.metas.get(proxy),
            &mut self.identities,
            proxy,
            Instant::now(),
        );
        match built {
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
                // A proxy whose first certificate is still being made gets its configuration
                // once it exists (the issuer's answer recomputes it): pushing it without
                // would mean a second push a few milliseconds later.
                if built.problems.iter().any(|p| p == super::identity::PENDING) {
                    self.hub.update(proxy, |i| i.problems = built.problems);
                    return;
                }
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
        let world = self.world.read();
        let names = world.external_names();
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

    /// Recomputes the proxies that depended on what changed in the world.
    fn apply(&mut self, changes: Changes) {
        // Before the world's first load there is nothing to compute from; the load itself
        // arrives as a reload.
        if !self.world.loaded() {
            return;
        }
        if changes.reloaded {
            self.publish_names();
            self.recompute_all();
            return;
        }
        // Deregistered Dataplanes: their insights go too, so per-proxy state stays bounded by
        // the proxies that exist. (A node without a mesh is an egress, not a Dataplane.)
        let gone: Vec<ProxyId> = {
            let world = self.world.read();
            changes
                .deps
                .iter()
                .filter_map(|dep| match dep {
                    Dep::Dataplane(mesh, name) if !mesh.is_empty() => {
                        let proxy = (mesh.clone(), name.clone());
                        (!world.dataplanes.contains_key(&proxy)).then_some(proxy)
                    }
                    _ => None,
                })
                .collect()
        };
        for proxy in &gone {
            self.hub.forget(proxy);
        }
        if changes.deps.contains(&Dep::ExternalNames) {
            self.publish_names();
        }
        let affected = self.index.affected(&changes.deps);
        metrics::counter!("atoll_xds_recomputations_total").increment(affected.len() as u64);
        let span = reconcile_span(changes.trace.as_deref(), changes.traced, affected.len());
        let cause = atoll_telemetry::propagation::traceparent(&span);
        let _entered = span.enter();
        for proxy in affected {
            self.recompute(&proxy, cause.as_deref());
        }
    }
}

/// A span for a batch of changes when one of them carries a trace: the batch continues the
/// first such trace (a batch is one step, so it has one parent) and counts the others.
fn reconcile_span(first: Option<&str>, traced: usize, proxies: usize) -> tracing::Span {
    let Some(first) = first else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!("xds.reconcile", proxies, traced_changes = traced);
    atoll_telemetry::propagation::continue_from(&span, first);
    span
}

/// Runs until `stop`, reading `world` (which its follower keeps current).
pub async fn run(
    world: Shared,
    names: crate::external::status::Publisher,
    hub: Arc<Hub>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = world.subscribe_with_deps();
    // Certificates are issued off this task, so that thousands of them at once (a mesh
    // turning mTLS on) do not hold up other proxies' pushes.
    let (identities, mut issued) = Identities::background();
    let mut r = Reconciler {
        names,
        hub,
        world,
        metas: BTreeMap::new(),
        index: Index::default(),
        identities,
    };
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let renewal = r
            .identities
            .next_renewal()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(far);
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            command = commands.recv() => match command {
                Some(Command::Connected(proxy, meta)) => {
                    r.metas.insert(proxy.clone(), meta);
                    r.recompute(&proxy, None);
                }
                Some(Command::Disconnected(proxy)) => {
                    r.index.remove(&proxy);
                    r.identities.remove(&proxy);
                    r.metas.remove(&proxy);
                    // A stream whose Dataplane is gone leaves nothing behind.
                    let registered = r.world.read().dataplanes.contains_key(&proxy);
                    if !registered {
                        r.hub.forget(&proxy);
                    }
                }
                None => return,
            },
            batch = changes.next() => r.apply(batch),
            Some(done) = issued.recv() => {
                if let Some(proxy) = r.identities.accept(done)
                    && r.metas.contains_key(&proxy)
                {
                    r.recompute(&proxy, None);
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
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::world::fixtures::resource;
    use atoll_model::Kind;
    use atoll_store::{Key, MemoryStore, Precondition, Store};

    use super::*;

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
        let world = crate::world::spawn(store.clone(), "zone-1", Default::default(), stop.clone());
        tokio::spawn(run(
            world,
            crate::external::status::board().0,
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
