//! The deployment the fault tests and the soak run against: a global (or two) on real
//! PostgreSQL, zone-1 (the clients) and zone-2 (the backend, its ingress and an in-zone
//! client), each zone reaching the globals through a [`LinkProxy`] of its own, real Envoy
//! sidecars with cross-zone and in-zone traffic, and the probes built on it ([`Watch`],
//! [`Traffic`], [`Writer`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, ensure};

use crate::backend::Backend;
use crate::dataplane::Dataplane;
use crate::faults::invariants::{Snapshot, Watch};
use crate::faults::pg_replica::PgPair;
use crate::faults::proxy::LinkProxy;
use crate::faults::traffic::{Traffic, Writer};
use crate::free_port;
use crate::global::{Global, GlobalOptions};
use crate::ingress::Ingress;
use crate::postgres::TempPostgres;
use crate::process::http_call;
use crate::zone::{Zone, ZoneOptions, eventually};

/// How long any one step of the set-up or a convergence may take.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const MESH: &str = "default";
pub const MESH_YAML: &str = "type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
";

/// The synced collections compared between the global and the zones.
pub fn collections() -> Vec<String> {
    vec![
        "/meshes".to_string(),
        format!("/meshes/{MESH}/meshgateways"),
        format!("/meshes/{MESH}/secrets"),
    ]
}

/// Where the global's store is.
pub enum Store {
    One(TempPostgres),
    /// A primary and its replica behind an address the test moves at failover.
    Pair(PgPair, LinkProxy),
}

/// A running deployment (see the module's doc).
pub struct Site {
    pub store: Store,
    pub globals: Vec<Global>,
    /// Per zone, the proxy its KDS connection goes through.
    pub kds: Vec<LinkProxy>,
    pub zones: Vec<Zone>,
    /// zone-2's ingress.
    pub ingress: Ingress,
    /// zone-1's ingress, under [`SiteOptions::ingresses`].
    pub zone1_ingress: Option<Ingress>,
    /// backend (zone-2), cross-zone client (zone-1), in-zone client (zone-2).
    pub dataplanes: Vec<Dataplane>,
    /// The clients' outbound ports to `backend`: cross-zone (zone-1) and in-zone (zone-2).
    pub cross: u16,
    pub local: u16,
    /// The applications behind the sidecars; `apps[0]` is the backend's.
    pub apps: Vec<Backend>,
}

#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    pub globals: usize,
    pub replica: bool,
    /// Workload certificates of 6 s, reissued every ~5 s.
    pub rotating: bool,
    /// An ingress in zone-1 as well as in zone-2.
    pub ingresses: bool,
}

impl Site {
    /// Starts everything and waits until both clients reach the backend.
    pub fn start(options: SiteOptions) -> anyhow::Result<Site> {
        let store = if options.replica {
            let pair = PgPair::start()?;
            let address = SocketAddr::from(([127, 0, 0, 1], pair.primary.port()));
            let proxy = LinkProxy::start(&[address])?;
            Store::Pair(pair, proxy)
        } else {
            Store::One(TempPostgres::start()?)
        };
        let url = match &store {
            Store::One(pg) => pg.url(),
            Store::Pair(_, proxy) => {
                format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port)
            }
        };
        let first = Global::start(GlobalOptions {
            postgres_url: Some(url.clone()),
            ..Default::default()
        })?;
        let mut globals = vec![first];
        for _ in 1..options.globals.max(1) {
            let g = Global::start(GlobalOptions {
                postgres_url: Some(url.clone()),
                work_dir: Some(globals[0].work_dir()),
                ..Default::default()
            })?;
            globals.push(g);
        }
        let targets: Vec<SocketAddr> = globals
            .iter()
            .map(|g| SocketAddr::from(([127, 0, 0, 1], g.kds_port)))
            .collect();
        let mesh = if options.rotating {
            format!("{MESH_YAML}    dpCert:\n      rotation:\n        expiration: 6s\n")
        } else {
            MESH_YAML.to_string()
        };
        globals[0].apply(&mesh)?;
        let mut kds = Vec::new();
        let mut zones = Vec::new();
        for name in ["zone-1", "zone-2"] {
            let proxy = LinkProxy::start(&targets)?;
            let zone = Zone::start(
                name,
                &globals[0],
                ZoneOptions {
                    kds_port: Some(proxy.port),
                    ..Default::default()
                },
            )?;
            kds.push(proxy);
            zones.push(zone);
        }
        for zone in &zones {
            zone.wait_for(&format!("/meshes/{MESH}/secrets/ca-builtin-ca-1"), DEADLINE)?;
        }
        let ingress = Ingress::start(&globals[0], &zones[1])?;
        let zone1_ingress = if options.ingresses {
            Some(Ingress::start(&globals[0], &zones[0])?)
        } else {
            None
        };
        let backend_app = Backend::start("zone-2")?;
        let tags: &[(&str, &str)] = &[("kuma.io/service", "backend")];
        let (backend, _) = Dataplane::start_sidecar(
            &zones[1],
            MESH,
            "backend-z2",
            "backend",
            backend_app.port,
            &[],
            &[],
        )?;
        let mut dataplanes = vec![backend];
        let mut apps = vec![backend_app];
        let mut outbounds = Vec::new();
        for (zone, name) in [(&zones[0], "client-z1"), (&zones[1], "client-z2")] {
            let app = Backend::start(name)?;
            let outbound = free_port()?;
            let (mut dp, _) = Dataplane::start_sidecar(
                zone,
                MESH,
                name,
                "client",
                app.port,
                &[(outbound, tags)],
                &[],
            )?;
            dp.wait_listener(outbound)?;
            eventually(&format!("{name} reaching the backend"), DEADLINE, || {
                http_call(outbound, "backend", "GET", "/x", None).is_ok_and(|(c, _)| c == 200)
            })
            .with_context(|| zone.log())?;
            outbounds.push(outbound);
            dataplanes.push(dp);
            apps.push(app);
        }
        Ok(Site {
            store,
            globals,
            kds,
            zones,
            ingress,
            zone1_ingress,
            dataplanes,
            cross: outbounds[0],
            local: outbounds[1],
            apps,
        })
    }

    pub fn global_ports(&self) -> Vec<u16> {
        self.globals.iter().map(|g| g.http_port).collect()
    }

    pub fn zone_ports(&self) -> Vec<(&str, u16)> {
        self.zones
            .iter()
            .map(|z| (z.name.as_str(), z.http_port))
            .collect()
    }

    /// Watches both zones' [`collections`] and both clients' Envoys.
    pub fn watch(&self) -> Watch {
        self.watch_of(&collections())
    }

    /// Watches both zones' `collections` and both clients' Envoys.
    pub fn watch_of(&self, collections: &[String]) -> Watch {
        let mut watch = Watch::new();
        for zone in &self.zones {
            watch.zone(&zone.name, zone.http_port, collections.to_vec());
        }
        for dp in &self.dataplanes[1..] {
            watch.envoy(&dp.name, dp.admin_port, "backend");
        }
        watch
    }

    /// The traffic that runs through every fault: (cross-zone, in-zone).
    pub fn traffic(&self) -> (Traffic, Traffic) {
        let every = Duration::from_millis(50);
        (
            Traffic::start(self.cross, "backend", every),
            Traffic::start(self.local, "backend", every),
        )
    }

    /// A writer of new MeshGateways `<prefix>-<n>` every 20 ms.
    pub fn writer(&self, prefix: &str) -> Writer {
        Writer::start(self.global_ports(), MESH, prefix, Duration::from_millis(20))
    }
}

/// The mesh CA and the global secrets (KDS CA, signing keys) of `global` as content hashes,
/// failing unless there is exactly one mesh CA (one leader generated it, no replica made a
/// second) and some global secrets.
pub fn ca_state(global: &Global) -> anyhow::Result<(Snapshot, Snapshot)> {
    let mesh = Snapshot::read(global.http_port, &[format!("/meshes/{MESH}/secrets")])?;
    let global_secrets = Snapshot::read(global.http_port, &["/globalsecrets".to_string()])?;
    let cas = mesh
        .0
        .keys()
        .filter(|k| k.contains("ca-builtin-ca-1"))
        .count();
    ensure!(cas == 1, "{cas} mesh CA secrets: {:?}", mesh.0.keys());
    ensure!(
        !global_secrets.is_empty(),
        "no global secrets (KDS CA, signing keys)"
    );
    Ok((mesh, global_secrets))
}

impl crate::faults::matrix::Deployment for Site {
    fn global_api(&self) -> crate::faults::invariants::Get {
        crate::faults::invariants::loopback_get(self.globals[0].http_port)
    }

    fn zone_apis(&self) -> Vec<(String, crate::faults::invariants::Get)> {
        self.zones
            .iter()
            .map(|z| {
                (
                    z.name.clone(),
                    crate::faults::invariants::loopback_get(z.http_port),
                )
            })
            .collect()
    }

    fn collections(&self) -> Vec<String> {
        collections()
    }

    fn watch(&self) -> Watch {
        Site::watch(self)
    }

    fn traffic(&self) -> (Traffic, Traffic) {
        Site::traffic(self)
    }

    fn writer(&self, prefix: &str) -> Writer {
        Site::writer(self, prefix)
    }

    fn logs(&self) -> String {
        let mut logs = self.globals[0].process.log_tail(40);
        for zone in &self.zones {
            logs.push('\n');
            logs.push_str(&zone.log());
        }
        logs
    }
}
