//! Wiring: the common control-plane servers in zone mode, the KDS client, and the DP server
//! with the reconciler that keeps proxies' configurations current.

use anyhow::Context;
use atoll_api::Mode;
use atoll_runtime::{Common, start_control_plane};

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::ZoneConfig;
use crate::crosszone::advertise::Audience;
use crate::crosszone::registry::Advertisement;
use crate::crosszone::stream::{RoleFeed, TableServer};
use crate::crosszone::table::Table;
use crate::dp_server::DpServer;
use crate::dp_server::authn::{Authenticator, DpAuthn, ZoneProxyAuthn};
use crate::proxy::hub::Hub;

pub async fn run(
    common: Common,
    zone: ZoneConfig,
    with_ingress: bool,
    with_egress: bool,
) -> anyhow::Result<()> {
    // Before anything starts: an address other zones cannot reach is a configuration error
    // the operator must see at once, not a cross-zone call failing later on another machine.
    let ingress_address = with_ingress
        .then(|| zone.ingress.advertised_address(Audience::OtherZones))
        .transpose()
        .context("the zone ingress")?;
    let egress_address = with_egress
        .then(|| zone.egress.advertised_address(Audience::ThisZone))
        .transpose()
        .context("the zone egress")?;
    let stop = atoll_runtime::shutdown_signal();
    let mode = Mode::Zone {
        name: zone.name.clone(),
    };
    let (hub, commands) = Hub::new();
    let store_slot = crate::dp_server::inspect::StoreSlot::default();
    let extra_routes = crate::dp_server::insight::router(hub.clone())
        .merge(crate::dp_server::inspect::router(store_slot.clone()));
    let (names, status) = crate::external::status::board();
    let Some(started) =
        start_control_plane(&common, mode, extra_routes, Some(status), stop.clone()).await?
    else {
        return Ok(());
    };
    let _ = store_slot.set(started.store.clone());
    // The in-process ingress and egress count in this process's metrics, at the address they
    // advertise (where Prometheus can reach this host).
    let own_address = ingress_address
        .clone()
        .or_else(|| egress_address.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    serve_mads(
        &common,
        &zone,
        &started,
        (with_ingress, with_egress),
        &own_address,
        stop.clone(),
    )
    .await?;
    // A memory store starts empty: its proxies must register again before the zone reports
    // its own resources, or the global would delete them everywhere meanwhile.
    let hold_upward = matches!(common.store, atoll_runtime::StoreConfig::Memory)
        .then(|| crate::initial_sync::InitialSync::new(started.store.clone()));
    // The same hold keeps reconnecting proxies on the configuration they have; only a zone
    // that syncs with a global ever ends it.
    let start_hold = hold_upward.clone().filter(|_| zone.kds.is_some());
    let kds = match zone.kds.clone() {
        Some(kds) => Some(tokio::spawn(crate::kds_client::run(
            zone.name.clone(),
            kds,
            started.store.clone(),
            hold_upward,
            stop.clone(),
        ))),
        None => {
            tracing::warn!(
                "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS is not set: running without a global"
            );
            None
        }
    };
    let configured = common
        .general_tls
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    let identity = atoll_tls::ensure_server_identity(
        &common.work_dir,
        "dp-server",
        &zone.dp_server_hostnames,
        configured,
    )
    .context("preparing the DP server certificate")?;
    let tls = atoll_tls::server_config(
        &identity.cert_pem,
        &identity.key_pem,
        &identity.cert_file.display().to_string(),
    )?;
    tokio::spawn(crate::proxy::insight_sync::run(
        hub.clone(),
        started.store.clone(),
        stop.clone(),
    ));
    // One copy of the zone's resources, one follower of the store's feed: the reconciler and
    // the cross-zone registry below both read it.
    let world = crate::world::spawn(
        started.store.clone(),
        &zone.name,
        zone.vip_cidr,
        stop.clone(),
    );
    tokio::spawn(crate::proxy::reconciler::run(
        world.clone(),
        names,
        hub.clone(),
        commands,
        stop.clone(),
    ));
    // The in-process ingress and egress: the process's handshake and drain limits.
    let router_config = crate::ingress::IngressConfig {
        handshake_timeout: common.handshake_timeout,
        drain_timeout: common.drain,
        ..Default::default()
    };
    // The ingress's table is always kept: a separate ingress process may follow it.
    let (tables_tx, tables) = watch::channel(Arc::new(Table::new()));
    let (advertise, advertisement) = watch::channel(None);
    let egress = if let Some(egress_address) = egress_address {
        let listener = tokio::net::TcpListener::bind(zone.egress.listen)
            .await
            .with_context(|| format!("binding the zone egress on {}", zone.egress.listen))?;
        let (egress_tx, egress_tables) = watch::channel(Arc::new(Table::new()));
        tracing::info!(listen = %zone.egress.listen, "zone egress running in-process");
        tokio::spawn(crate::ingress::serve(
            listener,
            crate::ingress::IngressConfig {
                fallback: Some(crate::naming::sni::any_port_form),
                ..router_config.clone()
            },
            egress_tables,
            stop.clone(),
            Arc::new(crate::ingress::Stats::default()),
        ));
        Some(crate::crosszone::registry::Egress {
            advertisement: Advertisement {
                address: egress_address,
                port: zone.egress.advertised_port,
            },
            tables: egress_tx,
        })
    } else {
        None
    };
    tokio::spawn(crate::crosszone::registry::run(
        world,
        started.store.clone(),
        zone.name.clone(),
        advertisement,
        tables_tx,
        egress,
        stop.clone(),
    ));
    if let Some(ingress_address) = ingress_address {
        let listener = tokio::net::TcpListener::bind(zone.ingress.listen)
            .await
            .with_context(|| format!("binding the zone ingress on {}", zone.ingress.listen))?;
        if ingress_address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
        {
            tracing::warn!(advertised = %ingress_address, "the zone ingress advertises a loopback address, as configured: only zones on this host can reach it");
        }
        tracing::info!(listen = %zone.ingress.listen, advertised = %ingress_address, "zone ingress running in-process");
        advertise.send_replace(Some(Advertisement {
            address: ingress_address,
            port: zone.ingress.advertised_port,
        }));
        tokio::spawn(crate::ingress::serve(
            listener,
            router_config,
            tables.clone(),
            stop.clone(),
            Arc::new(crate::ingress::Stats::default()),
        ));
    }
    let auth = Authenticator {
        credentials: started.credentials.clone(),
        dataplanes: zone.dp_authn,
        zone_proxies: zone.zone_proxy_authn,
        zone: zone.name.clone(),
    };
    if zone.dp_authn == DpAuthn::None {
        tracing::warn!(
            "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none: anyone who reaches the DP server can register any Dataplane and receive its workload certificate; use this for development only"
        );
    }
    if zone.zone_proxy_authn == ZoneProxyAuthn::None {
        tracing::warn!(
            "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_TYPE=none: anyone who reaches the DP server can follow the routing table and set the address other zones send traffic to; use this for development only"
        );
    }
    let tables = TableServer {
        auth: auth.clone(),
        ingress: RoleFeed { tables, advertise },
        egress: None,
        stop: stop.clone(),
    };
    let dp_server = crate::dp_server::serve(
        zone.dp_server,
        DpServer {
            tls,
            store: started.store.clone(),
            hub,
            auth,
            tables,
            start_hold,
            limits: atoll_api::Limits {
                // Every connected proxy holds a connection.
                max_connections: 20_000,
                body_limit: 1024 * 1024,
                ..common.limits("dp-server")
            },
        },
        stop,
    )
    .await?;
    tracing::info!(zone = %zone.name, http = %common.http, dp_server = %zone.dp_server, dp_ca = ?identity.ca_file, "zone control plane ready");
    for server in started.servers {
        let _ = server.await;
    }
    let _ = dp_server.await;
    if let Some(kds) = kds {
        let _ = kds.await;
    }
    Ok(())
}

/// MADS, over TLS when enabled (with a generated certificate unless files are given).
async fn serve_mads(
    common: &Common,
    zone: &ZoneConfig,
    started: &atoll_runtime::Started,
    (ingress, egress): (bool, bool),
    own_address: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let own = crate::mads::assignments::zone_proxies(
        &zone.name,
        &format!("{own_address}:{}", common.diagnostics.port()),
        ingress,
        egress,
    );
    let listener = tokio::net::TcpListener::bind(zone.mads.listen)
        .await
        .with_context(|| format!("binding MADS on {}", zone.mads.listen))?;
    let tls = match &zone.mads.tls {
        None => None,
        Some(files) => {
            let configured = files.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            let identity = atoll_tls::ensure_server_identity(
                &common.work_dir,
                "mads-server",
                &zone.dp_server_hostnames,
                configured,
            )
            .context("preparing the MADS certificate")?;
            Some(atoll_tls::server_config(
                &identity.cert_pem,
                &identity.key_pem,
                &identity.cert_file.display().to_string(),
            )?)
        }
    };
    tracing::info!(listen = %zone.mads.listen, tls = tls.is_some(), "MADS serving");
    tokio::spawn(atoll_api::serve(
        listener,
        tls,
        crate::mads::server::router(started.store.clone(), zone.name.clone(), own),
        stop,
        common.limits("mads"),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::world::fixtures::resource;
    use atoll_store::{MemoryStore, Precondition, Store};
    use tokio::sync::watch;

    use crate::crosszone::table::Table;
    use crate::naming::sni::service_sni;
    use crate::proxy::hub::Hub;

    fn dataplane(name: &str, address: &str) -> atoll_model::Resource {
        resource(&format!(
            "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: {address}\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n"
        ))
    }

    /// Waits until the ingress table gives `web` exactly `instances` addresses.
    async fn table_has(tables: &mut watch::Receiver<Arc<Table>>, instances: usize) {
        let sni = service_sni("default", "web", None);
        tokio::time::timeout(
            Duration::from_secs(5),
            tables.wait_for(|t| t.get(&sni).is_some_and(|a| a.len() == instances)),
        )
        .await
        .unwrap_or_else(|_| panic!("no table with {instances} instances of web"))
        .expect("the registry is running");
    }

    /// The reconciler and the cross-zone registry read one world that one follower keeps
    /// current: with both running and answering changes, the store's feed has one receiver.
    #[tokio::test]
    async fn one_follower_of_the_store_for_every_reader() {
        let memory = MemoryStore::new();
        let store: Arc<dyn Store> = Arc::new(memory.clone());
        let mesh = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n";
        store.put(resource(mesh), Precondition::Any).await.unwrap();
        store
            .put(dataplane("web-1", "10.0.0.1"), Precondition::Any)
            .await
            .unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let world = crate::world::spawn(store.clone(), "zone-1", Default::default(), stop.clone());
        let (hub, commands) = Hub::new();
        tokio::spawn(crate::proxy::reconciler::run(
            world.clone(),
            crate::external::status::board().0,
            hub.clone(),
            commands,
            stop.clone(),
        ));
        let (tables_tx, mut tables) = watch::channel(Arc::new(Table::new()));
        let (_advertise, advertisement) = watch::channel(None);
        tokio::spawn(crate::crosszone::registry::run(
            world.clone(),
            store.clone(),
            "zone-1".into(),
            advertisement,
            tables_tx,
            None,
            stop,
        ));
        let proxy = ("default".to_string(), "web-1".to_string());
        let mut snapshots = hub.subscribe(&proxy, Default::default());
        tokio::time::timeout(Duration::from_secs(5), snapshots.changed())
            .await
            .expect("a configuration for web-1")
            .unwrap();
        table_has(&mut tables, 1).await;
        // A change reaches both readers through the one follower.
        store
            .put(dataplane("web-2", "10.0.0.2"), Precondition::Any)
            .await
            .unwrap();
        table_has(&mut tables, 2).await;
        assert_eq!(world.readers(), 2, "the reconciler and the registry");
        assert_eq!(
            memory.watchers(),
            1,
            "one receiver of the store's feed for the whole world"
        );
    }
}
