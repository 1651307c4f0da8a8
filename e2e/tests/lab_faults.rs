//! The fault matrix between machines (issue 17, docs/reliability.md): every process on a host
//! of its own (`atoll_e2e::lab`: network namespaces on a bridge, control planes and data
//! planes started from the systemd units), the faults made on the links between hosts, with
//! cross-zone and in-zone traffic and writes running throughout and the invariants of
//! `atoll_e2e::faults::invariants` checked after each (`atoll_e2e::faults::matrix`).
//!
//! Hosts: `global` (the global and PostgreSQL), `zone-1` and `zone-2` (their zone control
//! planes; zone-2's runs the ingress), `zone-1-dp` (a client calling the backend across
//! zones, through zone-2's ingress), `zone-2-dp` (the backend), `zone-2-dpb` (a client
//! calling it in-zone, host to host). Short forms by default, `ATOLL_FAULTS_FULL=1` for the
//! long ones; each test prints a `FAULT-ROW` line.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::faults::fault_duration;
use atoll_e2e::faults::invariants::{Get, Snapshot, Watch};
use atoll_e2e::faults::matrix::{Deployment, run_fault};
use atoll_e2e::faults::proxy::{LinkFault, LinkProxy};
use atoll_e2e::faults::traffic::{Traffic, Writer};
use atoll_e2e::lab::dataplane::{self, mesh_yaml, sidecar_yaml};
use atoll_e2e::lab::deploy::{self, API, DIAGNOSTICS, DP_SERVER, KDS};
use atoll_e2e::lab::{Host, Lab};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::Process;
use atoll_e2e::zone::eventually;

const DEADLINE: Duration = Duration::from_secs(60);
const MESH: &str = "default";
/// Every data plane host's ports: its Envoy's admin, inbound, and outbound to `backend`.
const ADMIN: u16 = 9901;
const INBOUND: u16 = 20001;
const OUTBOUND: u16 = 20000;

/// The deployment across hosts. Fields drop in order: processes and proxies first, the lab
/// (which kills whatever is left in its namespaces and deletes them) last.
struct LabSite {
    /// zone-1's and zone-2's KDS links, when they run through a proxy on the zone's host.
    kds: Vec<LinkProxy>,
    _data_planes: Vec<Process>,
    zone_cps: Vec<Process>,
    global_cp: Process,
    _apps: Vec<Backend>,
    _pg: TempPostgres,
    global: Host,
    /// zone-1, zone-2.
    zones: Vec<Host>,
    /// zone-1-dp (cross-zone client), zone-2-dp (backend), zone-2-dpb (in-zone client).
    dps: Vec<Host>,
    /// `Authorization: Bearer <the global's admin token>`: the units' APIs need a token for
    /// writes and for secrets, on the global and on the zones.
    auth: (String, String),
    _lab: Lab,
}

fn check<T>(what: &str, result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e:#}"))
}

/// Starts the deployment; with `kds_proxy`, each zone dials the global through a link proxy
/// on its own host's loopback (the KDS bytes still cross the lab's bridge).
fn start_site(kds_proxy: bool) -> LabSite {
    let started = std::time::Instant::now();
    let mut lab = check("the lab of hosts", Lab::new());
    let mut host = |name: &str| check(name, lab.host(name));
    let global = host("global");
    let zones = vec![host("zone-1"), host("zone-2")];
    let dps = vec![host("zone-1-dp"), host("zone-2-dp"), host("zone-2-dpb")];
    let dir = lab.dir().to_path_buf();

    let pg = check(
        "PostgreSQL on the global's host",
        TempPostgres::start_in_netns(&global.netns, global.address),
    );
    let global_cp = check(
        "the global",
        deploy::start_global(
            &global,
            &[
                ("KUMA_STORE_POSTGRES_HOST", global.address.to_string()),
                ("KUMA_STORE_POSTGRES_PORT", pg.port().to_string()),
                ("KUMA_STORE_POSTGRES_USER", "postgres".into()),
                ("KUMA_STORE_POSTGRES_DB_NAME", "postgres".into()),
            ],
            DEADLINE,
        ),
    );
    let global_kds = SocketAddr::from((global.address, KDS));
    let mut kds = Vec::new();
    let mut zone_cps = Vec::new();
    for zone in &zones {
        let credentials = check(
            "zone credentials",
            deploy::zone_credentials(&global, &dir, &zone.name),
        );
        let dials = if kds_proxy {
            let proxy = check("the KDS proxy", zone.link_proxy(&[global_kds]));
            let address = proxy.address();
            kds.push(proxy);
            address
        } else {
            global_kds
        };
        // Only zone-2 serves cross-zone calls: its ingress on its lab address.
        let extra: &[&str] = if zone.name == "zone-2" {
            &["--ingress"]
        } else {
            &[]
        };
        let mut process = check(
            &zone.name,
            deploy::zone_unit(zone, &zone.name, dials, zone.address, &credentials, extra),
        );
        check(
            &zone.name,
            deploy::wait_local_ok(zone, &mut process, DIAGNOSTICS, "/ready", DEADLINE),
        );
        zone_cps.push(process);
    }
    check(
        "the mesh",
        deploy::apply(&global, &dir, "mesh", &mesh_yaml(false)),
    );
    for (zone, process) in zones.iter().zip(zone_cps.iter_mut()) {
        let path = format!("/meshes/{MESH}");
        check(
            &zone.name,
            deploy::wait_local_ok(zone, process, API, &path, DEADLINE),
        );
    }
    let auth = (
        "Authorization".to_string(),
        format!(
            "Bearer {}",
            check("admin token", deploy::admin_token(&global))
        ),
    );

    let backend_app = check("the backend", dps[1].backend("zone-2"));
    let start_dp = |zone: &Host, dp: &Host, name: &str, service: &str, yaml: String| {
        check(
            name,
            dataplane::start(
                (&global, zone, dp),
                &dir,
                (name, service, "dataplane"),
                &yaml,
                ADMIN,
                DEADLINE,
            ),
        )
    };
    let ports = |app: u16| (ADMIN, INBOUND, app);
    let mut data_planes = vec![start_dp(
        &zones[1],
        &dps[1],
        "backend-1",
        "backend",
        sidecar_yaml(
            "backend-1",
            "backend",
            dps[1].address,
            ports(backend_app.port),
            None,
        ),
    )];
    let mut apps = vec![backend_app];
    for (zone, dp, name) in [
        (&zones[0], &dps[0], "client-z1"),
        (&zones[1], &dps[2], "client-z2"),
    ] {
        let app = check(name, dp.backend(name));
        let yaml = sidecar_yaml(name, "client", dp.address, ports(app.port), Some(OUTBOUND));
        data_planes.push(start_dp(zone, dp, name, "client", yaml));
        apps.push(app);
        let outbound = SocketAddr::from((Ipv4Addr::LOCALHOST, OUTBOUND));
        let mut last = None;
        eventually(&format!("{name} reaching the backend"), DEADLINE, || {
            let answer = dp.http(outbound, "backend", "GET", "/x", None, &[]);
            let ok = matches!(&answer, Ok((200, body)) if body.starts_with("zone-2"));
            last = Some(answer);
            ok
        })
        .unwrap_or_else(|e| panic!("{e}: {last:?}\n{:?}", dp.local_get(ADMIN, "/clusters")));
    }
    println!(
        "lab site (6 hosts, 3 Envoys) ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    LabSite {
        kds,
        _data_planes: data_planes,
        zone_cps,
        global_cp,
        _apps: apps,
        _pg: pg,
        global,
        zones,
        dps,
        auth,
        _lab: lab,
    }
}

impl LabSite {
    fn api(&self, host: &Host) -> Get {
        host.get(API, &[(&self.auth.0, &self.auth.1)])
    }

    /// The client on data plane host `dp`, calling `backend` every 50 ms.
    fn client_traffic(&self, dp: usize) -> Traffic {
        let outbound = SocketAddr::from((Ipv4Addr::LOCALHOST, OUTBOUND));
        Traffic::start_via(
            self.dps[dp].dial(outbound),
            "backend",
            Duration::from_millis(50),
        )
    }

    /// The fault really cut `zone` off the global: it misses gateways the global took in
    /// meanwhile.
    fn assert_cut_off(&self, zone: usize) {
        let collections = [format!("/meshes/{MESH}/meshgateways")];
        let read = |get: Get| check("gateways", Snapshot::read_with(get.as_ref(), &collections));
        let (global, cut) = (
            read(self.api(&self.global)),
            read(self.api(&self.zones[zone])),
        );
        assert!(
            cut.len() < global.len(),
            "{} kept up with the global through the fault: {}",
            self.zones[zone].name,
            cut.diff(&global)
        );
    }
}

impl Deployment for LabSite {
    fn global_api(&self) -> Get {
        self.api(&self.global)
    }

    fn zone_apis(&self) -> Vec<(String, Get)> {
        self.zones
            .iter()
            .map(|z| (z.name.clone(), self.api(z)))
            .collect()
    }

    fn collections(&self) -> Vec<String> {
        vec![
            "/meshes".to_string(),
            format!("/meshes/{MESH}/meshgateways"),
            format!("/meshes/{MESH}/secrets"),
        ]
    }

    /// Both zones, and both clients' Envoys (their `backend` endpoints and certificates).
    fn watch(&self) -> Watch {
        let mut watch = Watch::new();
        for (name, get) in self.zone_apis() {
            watch.zone_with(&name, move |path| get(path), self.collections());
        }
        for (dp, name) in [(0, "client-z1"), (2, "client-z2")] {
            watch.envoy_with(name, self.dps[dp].get(ADMIN, &[]), "backend");
        }
        watch
    }

    fn traffic(&self) -> (Traffic, Traffic) {
        (self.client_traffic(0), self.client_traffic(2))
    }

    fn writer(&self, prefix: &str) -> Writer {
        let api = self
            .global
            .dial(SocketAddr::from((Ipv4Addr::LOCALHOST, API)));
        Writer::start_via(
            vec![api],
            vec![self.auth.clone()],
            MESH,
            prefix,
            Duration::from_millis(20),
        )
    }

    fn logs(&self) -> String {
        let mut logs = self.global_cp.log_tail(30);
        for zone in &self.zone_cps {
            logs.push('\n');
            logs.push_str(&zone.log_tail(30));
        }
        logs
    }
}

/// zone-1's host off the network: its zone CP loses the global, its client's Envoy loses
/// its zone CP, yet the client's calls to zone-2 (host to host, through zone-2's ingress)
/// must not fail: Envoy keeps its last configuration.
#[test]
fn a_zone_host_cut_off_by_its_link_keeps_traffic_flowing_and_converges_after() {
    let mut site = start_site(false);
    let duration = fault_duration(5, 60);
    run_fault(&mut site, "zone host link down (lab)", false, |site| {
        check("link down", site.zones[0].link_down());
        std::thread::sleep(duration);
        site.assert_cut_off(0);
        check("link up", site.zones[0].link_up());
    });
}

/// Both zone hosts drop KDS packets to and from the global, without a reset: the zones'
/// connections go half-open and only their liveness checks notice.
#[test]
fn kds_packets_dropped_between_hosts_leave_half_open_links_and_zones_converge_after() {
    let mut site = start_site(false);
    let duration = fault_duration(5, 60);
    let global_kds = SocketAddr::from((site.global.address, KDS));
    run_fault(&mut site, "global-zone KDS drop (lab)", false, |site| {
        let drops: Vec<_> = site
            .zones
            .iter()
            .map(|zone| check("nft drop", zone.nft_drop_to(global_kds)))
            .collect();
        std::thread::sleep(duration);
        site.assert_cut_off(1);
        drop(drops);
    });
}

/// Every data plane host drops packets to and from its zone CP's DP server port: no Envoy
/// hears from its control plane, and every call keeps working, in-zone host to host and
/// across zones through zone-2's ingress (which lives in zone-2's CP and is not cut off).
#[test]
fn envoys_cut_off_from_their_zone_cp_keep_serving_between_hosts() {
    let mut site = start_site(false);
    let duration = fault_duration(5, 60);
    run_fault(&mut site, "Envoy-zone partition (lab)", false, |site| {
        let started = std::time::Instant::now();
        let servers = [(0, 0), (1, 1), (2, 1)]
            .map(|(dp, zone)| (dp, SocketAddr::from((site.zones[zone].address, DP_SERVER))));
        let drops: Vec<_> = servers
            .iter()
            .map(|(dp, server)| check("nft drop", site.dps[*dp].nft_drop_to(*server)))
            .collect();
        // The cut is real: a new connection to the DP server gets no answer at all.
        let (dp, server) = servers[2];
        let probe = site.dps[dp].connect(server);
        assert!(
            probe.is_err(),
            "{} still reaches its zone's DP server {server}",
            site.dps[dp].name
        );
        std::thread::sleep(duration.saturating_sub(started.elapsed()));
        drop(drops);
    });
}

/// 30% of the KDS link's chunks stalled and 200 ms added each way, between the zones' hosts
/// and the global's; convergence is measured with the link still lossy.
#[test]
fn a_slow_lossy_kds_link_between_hosts_still_converges() {
    let mut site = start_site(true);
    let duration = fault_duration(5, 60);
    run_fault(
        &mut site,
        "30% loss + 200 ms delay on KDS (lab)",
        false,
        |site| {
            let fault = LinkFault::lossy(0.3, Duration::from_millis(200));
            for proxy in &site.kds {
                proxy.set_faults(fault, fault);
            }
            std::thread::sleep(duration);
        },
    );
    for proxy in &site.kds {
        let (chunks, stalls, _) = proxy.counters();
        assert!(
            stalls > 0,
            "the lossy link never stalled anything ({chunks} chunks)"
        );
        proxy.set_faults(LinkFault::default(), LinkFault::default());
    }
}
