//! Publishes proxies' insights to the store as `DataplaneInsight` resources, which sync up to
//! the global: that is how the global knows which data planes are online. Written only when
//! an insight changed, at most every [`PERIOD`]; an insight left from an earlier run of this
//! zone (its proxy not reconnected) is marked disconnected, and one whose Dataplane is gone is
//! deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atoll_model::types::DataplaneInsightSpec;
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Key, ListQuery, Precondition, Store};
use tokio::sync::watch;

use super::deps::ProxyId;
use super::hub::{Hub, ProxyInsight};

/// How often insights are compared with what was written.
pub const PERIOD: Duration = Duration::from_secs(2);

fn spec_of(insight: &ProxyInsight) -> DataplaneInsightSpec {
    DataplaneInsightSpec {
        connected: insight.connected,
        connect_time: insight.last_connected.clone(),
        disconnect_time: insight.last_disconnected.clone(),
        config_version: insight.config_version.clone(),
        acked_types: insight.acked.keys().cloned().collect(),
        last_nack: insight
            .last_nack
            .as_ref()
            .map(|n| format!("{}: {}", n.type_url, n.reason)),
        responses_sent: insight.responses_sent,
        responses_rejected: insight.nacks,
        problems: insight.problems.clone(),
    }
}

fn key((mesh, name): &ProxyId) -> Key {
    Key::new(Kind::DataplaneInsight, Some(mesh), name)
}

async fn write(store: &dyn Store, (mesh, name): &ProxyId, spec: DataplaneInsightSpec) -> bool {
    let resource = Resource {
        meta: Meta {
            name: name.clone(),
            mesh: Some(mesh.clone()),
            ..Default::default()
        },
        spec: Spec::DataplaneInsight(spec),
        status: None,
    };
    match store.put(resource, Precondition::Any).await {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(%mesh, %name, %err, "cannot write the data plane's insight");
            false
        }
    }
}

pub async fn run(hub: Arc<Hub>, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    let mut written: BTreeMap<ProxyId, DataplaneInsightSpec> = BTreeMap::new();
    // What an earlier run left: shown disconnected until the proxy is back.
    if let Ok(page) = store
        .list(&ListQuery {
            kind: Some(Kind::DataplaneInsight),
            ..Default::default()
        })
        .await
    {
        for stored in page.items {
            if let Spec::DataplaneInsight(spec) = stored.resource.spec {
                let id = (
                    stored.resource.meta.mesh.unwrap_or_default(),
                    stored.resource.meta.name,
                );
                written.insert(id, spec);
            }
        }
    }
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let live = hub.insights();
        for (n, (id, insight)) in live.iter().filter(|(id, _)| !id.0.is_empty()).enumerate() {
            let spec = spec_of(insight);
            if written.get(id) != Some(&spec) && write(store.as_ref(), id, spec.clone()).await {
                written.insert(id.clone(), spec);
            }
            // After a mesh-wide change every insight changed at once; a memory store's write
            // never waits, so without a pause this loop would hold a runtime thread for the
            // whole pass while the same change is still being pushed to proxies.
            if n % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
        let gone: Vec<ProxyId> = written
            .keys()
            .filter(|id| !live.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            let dataplane = Key::new(Kind::Dataplane, Some(&id.0), &id.1);
            let exists = matches!(store.get(&dataplane).await, Ok(Some(_)));
            if !exists {
                if store.delete(&key(&id), None).await.is_ok()
                    || matches!(store.get(&key(&id)).await, Ok(None))
                {
                    written.remove(&id);
                }
                continue;
            }
            let Some(spec) = written.get(&id).filter(|s| s.connected).cloned() else {
                continue;
            };
            let spec = DataplaneInsightSpec {
                connected: false,
                disconnect_time: Some(chrono::Utc::now().to_rfc3339()),
                ..spec
            };
            if write(store.as_ref(), &id, spec.clone()).await {
                written.insert(id, spec);
            }
        }
    }
}
