//! Keeps the ingress's routing table current from the zone store, and, once an ingress
//! serves this zone (in-process or a separate process that announced its address), the
//! zone's ZoneIngress resource: its advertised address and the services behind it (mesh,
//! `kuma.io/service`, instance count). KDS carries that resource to the global and on to every
//! other zone, whose sidecars then route to this ingress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atoll_model::types::{
    AvailableService, SERVICE_TAG, ZoneEgressNetworking, ZoneEgressSpec, ZoneIngressNetworking,
    ZoneIngressSpec,
};
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Event, Precondition, Store};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::table::{Table, egress_table, ingress_table};
use crate::proxy::world::World;

/// The name of a zone's ZoneIngress in its own store (the global stores it as `<zone>.ingress`).
pub const INGRESS_NAME: &str = "ingress";
/// The name of a zone's ZoneEgress.
pub const EGRESS_NAME: &str = "egress";

/// This zone's egress, when it runs one: its address and the table it routes by.
pub struct Egress {
    pub advertisement: Advertisement,
    pub tables: watch::Sender<Arc<Table>>,
}

fn zone_egress(zone: &str, ad: &Advertisement) -> Resource {
    Resource::new(
        Meta {
            name: EGRESS_NAME.into(),
            ..Default::default()
        },
        Spec::ZoneEgress(ZoneEgressSpec {
            zone: Some(zone.to_string()),
            networking: Some(ZoneEgressNetworking {
                address: ad.address.clone(),
                port: ad.port,
                ..Default::default()
            }),
        }),
    )
}

/// Hands out `table` when it differs from the current one; whether it did.
fn publish(tables: &watch::Sender<Arc<Table>>, table: Table) -> bool {
    tables.send_if_modified(|current| {
        if **current == table {
            return false;
        }
        *current = Arc::new(table);
        true
    })
}

/// Where other zones reach this zone's ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub address: String,
    pub port: u32,
}

/// The services this zone offers through its ingress.
pub fn available_services(world: &World) -> Vec<AvailableService> {
    let mut counts: BTreeMap<(String, String), std::collections::BTreeSet<String>> =
        BTreeMap::new();
    let mut addresses: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for ((mesh, service), instances) in &world.endpoints {
        counts
            .entry((mesh.clone(), service.clone()))
            .or_default()
            .extend(instances.keys().map(|(dp, _)| dp.clone()));
        addresses
            .entry((mesh.clone(), service.clone()))
            .or_default()
            .extend(
                instances
                    .values()
                    .filter(|e| e.address.parse::<std::net::IpAddr>().is_ok())
                    .map(|e| format!("{}:{}", e.address, e.port)),
            );
    }
    for (mesh, service, dp, _) in super::table::cross_mesh_gateways(world) {
        counts.entry((mesh, service)).or_default().insert(dp);
    }
    counts
        .into_iter()
        .map(|((mesh, service), dataplanes)| AvailableService {
            endpoints: addresses
                .remove(&(mesh.clone(), service.clone()))
                .unwrap_or_default(),
            tags: BTreeMap::from([(SERVICE_TAG.to_string(), service)]),
            instances: dataplanes.len() as u32,
            mesh,
            external_service: false,
        })
        .collect()
}

fn zone_ingress(zone: &str, ad: &Advertisement, world: &World) -> Resource {
    Resource::new(
        Meta {
            name: INGRESS_NAME.into(),
            ..Default::default()
        },
        Spec::ZoneIngress(ZoneIngressSpec {
            zone: Some(zone.to_string()),
            networking: Some(ZoneIngressNetworking {
                address: ad.address.clone(),
                advertised_address: Some(ad.address.clone()),
                port: ad.port,
                advertised_port: Some(ad.port),
                ..Default::default()
            }),
            available_services: available_services(world),
        }),
    )
}

/// Runs until `stop`: publishes the table on `tables` and writes the ZoneIngress whenever
/// `advertisement` holds an address.
pub async fn run(
    store: Arc<dyn Store>,
    zone: String,
    mut advertisement: watch::Receiver<Option<Advertisement>>,
    tables: watch::Sender<Arc<Table>>,
    egress: Option<Egress>,
    mut stop: watch::Receiver<bool>,
) {
    let mut feed = store.watch();
    let mut world: Option<World> = None;
    let mut written: Option<Resource> = None;
    let mut egress_written = false;
    // Whether the world changed since the tables were last computed: most feed events (insights,
    // policies) do not touch it, and a table costs a pass over every Dataplane.
    let mut dirty = true;
    loop {
        if world.is_none() {
            match crate::proxy::reconciler::load(store.as_ref()).await {
                Ok(mut w) => {
                    w.local_zone = zone.clone();
                    world = Some(w);
                    dirty = true;
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot read the zone's Dataplanes; the ingress keeps its last table")
                }
            }
        }
        if let Some(w) = world.as_ref().filter(|_| dirty) {
            dirty = false;
            let table = ingress_table(w);
            let services = table.len();
            if publish(&tables, table) {
                metrics::gauge!("atoll_ingress_table_services").set(services as f64);
            }
            if let Some(egress) = &egress {
                publish(&egress.tables, egress_table(w));
                if !egress_written {
                    match store
                        .put(zone_egress(&zone, &egress.advertisement), Precondition::Any)
                        .await
                    {
                        Ok(_) => egress_written = true,
                        Err(err) => {
                            dirty = true;
                            tracing::warn!(%err, "cannot write the ZoneEgress yet")
                        }
                    }
                }
            }
            let ad = advertisement.borrow().clone();
            if let Some(ad) = ad {
                let resource = zone_ingress(&zone, &ad, w);
                if written.as_ref() != Some(&resource) {
                    match store.put(resource.clone(), Precondition::Any).await {
                        Ok(_) => written = Some(resource),
                        Err(err) => {
                            dirty = true;
                            tracing::warn!(%err, "cannot write the ZoneIngress yet")
                        }
                    }
                }
            }
        }
        let retry = if world.is_none()
            || (advertisement.borrow().is_some() && written.is_none())
            || (egress.is_some() && !egress_written)
        {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(retry) => {}
            changed = advertisement.changed() => {
                if changed.is_err() {
                    return;
                }
                dirty = true;
            }
            event = feed.recv() => {
                // A burst (thousands of proxies registering) is applied whole, then the tables
                // are computed once.
                let mut next = Some(event);
                while let Some(event) = next {
                    match event {
                        Err(RecvError::Closed) => return,
                        event => dirty |= apply(store.as_ref(), &mut world, event).await,
                    }
                    next = match feed.try_recv() {
                        Ok(event) => Some(Ok(event)),
                        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                        Err(_) => None,
                    };
                }
            }
        }
    }
}

/// Applies one feed event to `world`; true when the world changed (or must be re-read).
async fn apply(
    store: &dyn Store,
    world: &mut Option<World>,
    event: Result<Event, RecvError>,
) -> bool {
    let relevant = |kind: Kind| {
        matches!(
            kind,
            Kind::Dataplane | Kind::ZoneIngress | Kind::MeshGateway | Kind::Mesh
        )
    };
    match event {
        Ok(Event::Put { key, .. }) if relevant(key.kind) => {
            if let Some(w) = world.as_mut() {
                match store.get(&key).await {
                    Ok(stored) => {
                        w.apply(
                            key.kind,
                            key.mesh.as_deref(),
                            &key.name,
                            stored.map(|s| s.resource).as_ref(),
                        );
                    }
                    // Re-read everything once the store answers; keep the table meanwhile.
                    Err(_) => *world = None,
                }
            }
            true
        }
        Ok(Event::Deleted { key, .. }) if relevant(key.kind) => {
            if let Some(w) = world.as_mut() {
                w.apply(key.kind, key.mesh.as_deref(), &key.name, None);
            }
            true
        }
        Ok(Event::Resync) | Err(RecvError::Lagged(_)) => {
            *world = None;
            true
        }
        Ok(_) | Err(RecvError::Closed) => false,
    }
}
