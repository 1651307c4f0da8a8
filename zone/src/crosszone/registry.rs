//! Keeps the ingress's routing table current from the zone's world, and, once an ingress
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
use atoll_store::{Precondition, Store};
use tokio::sync::watch;

use super::table::{Table, egress_table, ingress_table};
use crate::naming::{EGRESS_NAME, INGRESS_NAME};
use crate::world::{Shared, World};

/// The kinds the tables and the ZoneIngress are computed from: most changes (insights,
/// policies, secrets) touch none of them, and a table costs a pass over every Dataplane.
const TABLE_KINDS: [Kind; 4] = [
    Kind::Dataplane,
    Kind::ZoneIngress,
    Kind::MeshGateway,
    Kind::Mesh,
];

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

/// What one pass over the world gives: the ingress's and the egress's tables and the
/// ZoneIngress to write (when an ingress is advertised).
struct Computed {
    ingress: Table,
    egress: Option<Table>,
    zone_ingress: Option<Resource>,
}

fn compute(world: &World, zone: &str, ad: Option<&Advertisement>, egress: bool) -> Computed {
    Computed {
        ingress: ingress_table(world),
        egress: egress.then(|| egress_table(world)),
        zone_ingress: ad.map(|ad| zone_ingress(zone, ad, world)),
    }
}

/// Runs until `stop`: publishes the table on `tables` and writes the ZoneIngress whenever
/// `advertisement` holds an address, recomputing them when the world's Dataplanes, ingresses,
/// gateways or meshes change.
pub async fn run(
    world: Shared,
    store: Arc<dyn Store>,
    zone: String,
    mut advertisement: watch::Receiver<Option<Advertisement>>,
    tables: watch::Sender<Arc<Table>>,
    egress: Option<Egress>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = world.subscribe();
    let mut written: Option<Resource> = None;
    let mut egress_written = false;
    // Whether the world changed since the tables were last computed.
    let mut dirty = true;
    loop {
        // Until the world is first read it is empty: an empty table would only be replaced.
        if dirty && world.loaded() {
            dirty = false;
            let ad = advertisement.borrow().clone();
            // The world is held for the computation only, never across the writes below.
            let computed = compute(&world.read(), &zone, ad.as_ref(), egress.is_some());
            let services = computed.ingress.len();
            if publish(&tables, computed.ingress) {
                metrics::gauge!("atoll_ingress_table_services").set(services as f64);
            }
            if let Some(egress) = &egress {
                if let Some(table) = computed.egress {
                    publish(&egress.tables, table);
                }
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
            if let Some(resource) = computed.zone_ingress
                && written.as_ref() != Some(&resource)
            {
                match store.put(resource.clone(), Precondition::Any).await {
                    Ok(_) => written = Some(resource),
                    Err(err) => {
                        dirty = true;
                        tracing::warn!(%err, "cannot write the ZoneIngress yet")
                    }
                }
            }
        }
        let retry = if (advertisement.borrow().is_some() && written.is_none())
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
            batch = changes.next() => dirty |= batch.touches(&TABLE_KINDS),
        }
    }
}
