//! The one follower of the store's change feed for the world: reads each changed resource,
//! applies it to the shared world and tells the readers what changed. A feed it fell behind
//! or a resource it could not read makes it read the whole world again (retrying every
//! second while the store does not answer); meanwhile the last good copy stays, so an outage
//! never turns into an empty endpoint set pushed to every proxy.

use std::sync::Arc;
use std::time::Duration;

use atoll_store::{Event, Key, Store};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;
use tracing::Instrument;

use super::{Changes, KINDS, Shared, load};

/// Starts following `store` into a new world for `zone`; runs until `stop`.
pub fn spawn(
    store: Arc<dyn Store>,
    zone: &str,
    vip_cidr: crate::external::vip::Cidr,
    stop: watch::Receiver<bool>,
) -> Shared {
    let world = Shared::new(zone, vip_cidr);
    tokio::spawn(follow(world.clone(), store, stop));
    world
}

/// Keeps `world` current from `store` until `stop`.
pub async fn follow(world: Shared, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    // Subscribed before the first read, so no change between the read and the feed is missed.
    let mut feed = store.watch();
    let mut in_sync = reload(&world, store.as_ref()).await;
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let retry = if in_sync {
            far()
        } else {
            tokio::time::Instant::now() + Duration::from_secs(1)
        };
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            event = feed.recv() => {
                let mut batch = Vec::new();
                match event {
                    Ok(e) => batch.push(e),
                    Err(RecvError::Lagged(n)) => in_sync = lagged(n),
                    Err(RecvError::Closed) => return,
                }
                // A burst (thousands of proxies registering) is applied whole and announced once.
                loop {
                    match feed.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(TryRecvError::Lagged(n)) => in_sync = lagged(n),
                        Err(_) => break,
                    }
                }
                if !apply(&world, store.as_ref(), batch).await {
                    in_sync = false;
                }
                if !in_sync {
                    in_sync = reload(&world, store.as_ref()).await;
                }
            }
            _ = tokio::time::sleep_until(retry) => {
                in_sync = reload(&world, store.as_ref()).await;
            }
        }
    }
}

/// Logs and counts a feed that dropped events; returns `false` (the world is out of sync).
fn lagged(missed: u64) -> bool {
    // Every proxy is recomputed after this: worth knowing about at scale.
    tracing::warn!(
        missed,
        "the zone's world fell behind the store's change feed; re-reading everything"
    );
    metrics::counter!("atoll_xds_feed_lagged_total").increment(1);
    false
}

/// Reads the whole world again and tells the readers; whether it could.
async fn reload(world: &Shared, store: &dyn Store) -> bool {
    match load(store)
        .instrument(tracing::debug_span!("world_reload"))
        .await
    {
        Ok(fresh) => {
            let dataplanes = fresh.dataplanes.len();
            world.replace(fresh);
            metrics::counter!("atoll_world_reloads_total").increment(1);
            tracing::debug!(dataplanes, "read the zone's world");
            world.publish(&Changes {
                reloaded: true,
                ..Default::default()
            });
            true
        }
        Err(err) => {
            tracing::warn!(%err, "cannot read the zone's world; proxies and tables keep their last state");
            false
        }
    }
}

/// Applies a batch of feed events and tells the readers; false when the world may have
/// missed changes (an event said so, or a changed resource could not be read).
async fn apply(world: &Shared, store: &dyn Store, events: Vec<Event>) -> bool {
    let mut changes = Changes::default();
    let mut complete = true;
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
        // Read outside the lock: readers never wait for the store.
        let resource = if present {
            match store.get(&key).await {
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
            changes.trace.get_or_insert(trace);
            changes.traced += 1;
        }
        let Key { kind, mesh, name } = key;
        let touched = world.write(|w| w.apply(kind, mesh.as_deref(), &name, resource.as_ref()));
        changes.kinds.insert(kind);
        changes.deps.extend(touched);
    }
    world.publish(&changes);
    complete
}
