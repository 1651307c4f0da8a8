//! The soak (issue 17): the fault tests' deployment ([`Site`], with an ingress in each zone
//! and a built-in gateway in zone-1) run for minutes under steady change ([`churn`]: a data
//! plane joining or leaving every second, routes and a gateway rewritten) with traffic and a
//! writer throughout, and one fault from a rotation every tenth of the run, each followed by a
//! convergence check. The control planes' memory and descriptors ([`usage`]) after warm-up
//! are compared with the end's, and the invariants of [`crate::faults::invariants`] are
//! watched the whole time ([`report`] judges).
//!
//! `atoll-e2e`'s `soak` binary runs the full form; the `soak` test runs a short one.

pub mod churn;
pub mod report;
pub mod usage;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;

use self::churn::{Control, Target};
use self::report::{FaultFigures, Limits, ProcessFigures, SoakReport};
use self::usage::Usage;
use crate::backend::Backend;
use crate::dataplane::Dataplane;
use crate::faults::invariants::{Snapshot, Watch, assert_acked_present, wait_converged};
use crate::faults::nft::NftDrop;
use crate::faults::proxy::LinkProxy;
use crate::faults::signal::Stopped;
use crate::faults::site::{self, DEADLINE, MESH, Site, SiteOptions, Store};
use crate::faults::traffic::{Traffic, WriteOutcome, Writer};
use crate::free_port;
use crate::global::{Global, READY_DEADLINE};
use crate::process::http_request;
use crate::zone::Zone;

/// How long the churn may take to come to rest (a join waits up to 30 s for its Envoy).
const HOLD_DEADLINE: Duration = Duration::from_secs(45);
/// MeshGateways the writer cycles through: the store's size stays bounded however long the
/// soak runs, so memory has no legitimate reason to grow.
const WRITER_NAMES: usize = 50;

/// How long, how often, and the limits.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub form: String,
    pub duration: Duration,
    pub fault_every: Duration,
    /// How long a partition or a stop lasts.
    pub fault_length: Duration,
    /// Churning data planes present between a leave and the next join.
    pub churn_base: usize,
    pub limits: Limits,
}

impl SoakOptions {
    /// The scheduled form: a fault every tenth of `duration` (every minute of the default
    /// 10), 10 s partitions and stops, RSS within 10 %.
    pub fn full(duration: Duration) -> SoakOptions {
        SoakOptions {
            form: format!("full ({} s)", duration.as_secs()),
            duration,
            fault_every: (duration / 10).max(Duration::from_secs(15)),
            fault_length: Duration::from_secs(10),
            churn_base: 2,
            limits: Limits {
                rss_ratio: 1.10,
                fd_slack: 3,
            },
        }
    }

    /// The default test command's form: 45 s, a fault every 9 s (each of the five once),
    /// 3 s partitions and stops.
    pub fn short() -> SoakOptions {
        SoakOptions {
            form: "short (45 s)".into(),
            duration: Duration::from_secs(45),
            fault_every: Duration::from_secs(9),
            fault_length: Duration::from_secs(3),
            churn_base: 2,
            // Warm-up is 4.5 s into a 45 s run: caches, pools and the allocator's arenas are
            // still filling (the first xDS snapshots of every proxy, the gateway's, connection
            // pools after the first restarts), and a debug build's allocations are larger and
            // more numerous. The 10 % bound needs the full form's minutes to amortise that;
            // here RSS may not double, which a leak per tick would still break.
            limits: Limits {
                rss_ratio: 2.0,
                fd_slack: 3,
            },
        }
    }
}

/// The faults, in the order they come round.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Both zones' KDS links blackholed with nft (no reset).
    KdsPartition,
    /// zone-2 killed with SIGKILL and started again (its store is in memory: a full resync).
    ZoneKill,
    /// The global frozen with SIGSTOP, then continued.
    GlobalStop,
    /// The global's PostgreSQL stopped (fast shutdown) and started again.
    PostgresRestart,
    /// Every Envoy's and ingress's connection to its zone blackholed.
    EnvoyPartition,
}

const ROTATION: [Fault; 5] = [
    Fault::KdsPartition,
    Fault::ZoneKill,
    Fault::GlobalStop,
    Fault::PostgresRestart,
    Fault::EnvoyPartition,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KdsPartition => "KDS partition (nft)",
            Fault::ZoneKill => "zone-2 SIGKILL+restart",
            Fault::GlobalStop => "global SIGSTOP/SIGCONT",
            Fault::PostgresRestart => "PostgreSQL restart",
            Fault::EnvoyPartition => "Envoy-zone partition",
        }
    }
}

/// The synced collections compared: the fault tests' and the routes the churn rewrites.
fn collections() -> Vec<String> {
    let mut all = site::collections();
    all.push(format!("/meshes/{MESH}/meshhttproutes"));
    all
}

/// Starts the deployment, soaks it for `options.duration`, and reports. An error is a soak
/// that could not run (a process that did not start); a soak that ran and found something
/// wrong reports it in [`SoakReport::failures`].
pub fn run(options: &SoakOptions) -> anyhow::Result<SoakReport> {
    let mut site = Site::start(SiteOptions {
        ingresses: true,
        ..Default::default()
    })?;
    let churn_app = Backend::start("churn")?;
    let gateway_port = free_port()?;
    let global_port = site.globals[0].http_port;
    for (path, body) in churn::config(0, gateway_port) {
        let (code, answer) = http_request(global_port, "PUT", &path, Some(&body.to_string()))?;
        anyhow::ensure!(code < 300, "PUT {path} answered {code}: {answer}");
    }
    let _edge = Dataplane::start_gateway(&site.zones[0], MESH, "edge-z1", "edge")
        .context("starting the built-in gateway")?;
    let watch = site.watch_of(&collections());
    let (cross, local) = site.traffic();
    println!(
        "SOAK-PROGRESS | deployment up; soaking for {} s, a fault every {} s",
        options.duration.as_secs(),
        options.fault_every.as_secs()
    );
    let control = Control::default();
    let Site {
        store,
        globals,
        kds,
        zones,
        ..
    } = &mut site;
    let (zone1, zone2) = zones.split_at_mut(1);
    let target = Target {
        zone: &zone1[0],
        app_port: churn_app.port,
        global_port,
        gateway_port,
        base: options.churn_base,
    };
    let zone_ports = vec![
        ("zone-1".to_string(), zone1[0].http_port),
        ("zone-2".to_string(), zone2[0].http_port),
    ];
    let zone1_pid = zone1[0].process.pid().context("zone-1 is not running")?;
    std::thread::scope(|scope| {
        let churn = scope.spawn(|| churn::run(&target, &control));
        let mut soak = Soak {
            options,
            store,
            global: &globals[0],
            kds: kds.as_slice(),
            zone2: &mut zone2[0],
            zone1_pid,
            zone1_dp_port: zone1[0].dp_port,
            zone_ports,
            watch,
            control: &control,
            cross,
            local,
            writer: None,
            acked: BTreeSet::new(),
            writes: (0, 0, 0),
            violations: Vec::new(),
            started: Instant::now(),
        };
        let outcome = soak.drive();
        control.stop();
        if churn.join().is_err() {
            soak.violations.push("the churn thread panicked".into());
        }
        outcome.map(|(processes, faults)| soak.report(processes, faults, control.stats()))
    })
}

/// The driver's state while the churn runs beside it.
struct Soak<'a> {
    options: &'a SoakOptions,
    store: &'a mut Store,
    global: &'a Global,
    kds: &'a [LinkProxy],
    zone2: &'a mut Zone,
    zone1_pid: u32,
    zone1_dp_port: u16,
    zone_ports: Vec<(String, u16)>,
    watch: Watch,
    control: &'a Control,
    cross: Traffic,
    local: Traffic,
    writer: Option<Writer>,
    acked: BTreeSet<String>,
    /// (acknowledged, retryable, refused).
    writes: (usize, usize, usize),
    violations: Vec<String>,
    started: Instant,
}

/// (name, pid) of the control planes measured.
type Measured = Vec<(&'static str, u32, Usage)>;

impl Soak<'_> {
    /// The timeline: warm-up figures at a tenth of the run, a fault every `fault_every`
    /// (the first half a period in; as many as fit in the duration), end figures after the
    /// last checkpoint.
    fn drive(&mut self) -> anyhow::Result<(Vec<ProcessFigures>, Vec<FaultFigures>)> {
        let options = self.options;
        let end = self.started + options.duration;
        let warm_at = self.started + options.duration / 10;
        let mut next_fault = self.started + options.fault_every / 2;
        let mut warm: Option<Measured> = None;
        let mut faults = Vec::new();
        // Every planned fault comes round even if the ones before ran late.
        let planned = (options.duration.as_secs_f64() / options.fault_every.as_secs_f64()) as usize;
        self.writer = Some(self.new_writer());
        while faults.len() < planned || Instant::now() < end {
            let now = Instant::now();
            if warm.is_none() && now >= warm_at {
                let (took, measured) = self.checkpoint()?;
                self.progress("warm-up figures taken", took, &measured);
                warm = Some(measured);
            } else if faults.len() < planned && now >= next_fault {
                let fault = ROTATION[faults.len() % ROTATION.len()];
                faults.push(self.fault(fault)?);
                next_fault += options.fault_every;
            } else {
                // Pacing the timeline, not waiting for an event: the next step is due at a time.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let (took, end_usage) = self.checkpoint()?;
        self.progress("end figures taken", took, &end_usage);
        let warm = warm.context("the soak ended before its warm-up figures were taken")?;
        let processes = warm
            .iter()
            .zip(&end_usage)
            .map(|((name, pid, w), (_, end_pid, e))| ProcessFigures {
                name: name.to_string(),
                warm: *w,
                end: *e,
                restarted: pid != end_pid,
            })
            .collect();
        Ok((processes, faults))
    }

    fn fault(&mut self, fault: Fault) -> anyhow::Result<FaultFigures> {
        let from = Instant::now();
        let at = from - self.started;
        println!(
            "SOAK-PROGRESS | t={:.0}s | injecting {}",
            at.as_secs_f64(),
            fault.name()
        );
        if let Err(err) = self.inject(fault) {
            self.violations.push(format!(
                "{} could not be injected or undone: {err:#}",
                fault.name()
            ));
        }
        let to = Instant::now();
        let (converged, measured) = self.checkpoint()?;
        let figures = FaultFigures {
            name: fault.name(),
            at,
            lasted: to - from,
            // From the end of the fault: reconnecting, catching up, the churn coming to rest.
            converged: converged.map(|_| Instant::now() - to),
            // Until the zones converged: what a restarted zone or a healed link does to the
            // data plane shows after the fault itself.
            cross: self.cross.window(from, Instant::now()),
            local: self.local.window(from, Instant::now()),
        };
        self.progress(
            &format!(
                "{} done in {:.1} s",
                fault.name(),
                figures.lasted.as_secs_f64()
            ),
            figures.converged,
            &measured,
        );
        Ok(figures)
    }

    /// Injects `fault` for `fault_length` and undoes it.
    fn inject(&mut self, fault: Fault) -> anyhow::Result<()> {
        let length = self.options.fault_length;
        match fault {
            Fault::KdsPartition => {
                NftDrop::blackhole(self.kds.iter().map(|p| p.port), length)?;
            }
            Fault::ZoneKill => {
                // zone-2's memory store starts empty: what it held is not expected back at
                // once, and that is not a delete.
                self.zone2.process.kill();
                self.watch.forget("zone-2");
                self.zone2.process.start_again()?;
                self.zone2.process.wait_http_ok(
                    self.zone2.diagnostics_port,
                    "/ready",
                    READY_DEADLINE,
                )?;
                self.watch.forget("zone-2");
            }
            Fault::GlobalStop => {
                let pid = self
                    .global
                    .process
                    .pid()
                    .context("the global is not running")?;
                let stopped = Stopped::new(pid)?;
                std::thread::sleep(length);
                drop(stopped);
            }
            Fault::PostgresRestart => {
                let Store::One(pg) = &mut *self.store else {
                    anyhow::bail!("the soak runs on one PostgreSQL");
                };
                pg.stop()?;
                std::thread::sleep(length);
                pg.start_again()?;
            }
            Fault::EnvoyPartition => {
                // No data plane can join or leave a zone it cannot reach: the churn rests.
                self.control.hold(HOLD_DEADLINE)?;
                NftDrop::blackhole([self.zone1_dp_port, self.zone2.dp_port], length)?;
            }
        }
        Ok(())
    }

    /// The churn at rest and the writer paused, the zones must come to hold exactly the
    /// global's state and every acknowledged write must be on the global; then the control
    /// planes are measured, and writing and churning resume. Returns how long convergence
    /// took (`None` if it never came) and the figures.
    fn checkpoint(&mut self) -> anyhow::Result<(Option<Duration>, Measured)> {
        if let Err(err) = self.control.hold(HOLD_DEADLINE) {
            self.violations.push(format!("{err:#}"));
        }
        if let Some(writer) = self.writer.take() {
            let (acked, outcomes) = writer.finish();
            self.acked.extend(acked);
            for (_, outcome) in outcomes {
                match outcome {
                    WriteOutcome::Acknowledged => self.writes.0 += 1,
                    WriteOutcome::Retryable => self.writes.1 += 1,
                    WriteOutcome::Refused(code) => {
                        self.writes.2 += 1;
                        self.violations
                            .push(format!("a write was refused with {code}"));
                    }
                }
            }
        }
        let zones: Vec<(&str, u16)> = self
            .zone_ports
            .iter()
            .map(|(n, p)| (n.as_str(), *p))
            .collect();
        let port = self.global.http_port;
        let converged = match wait_converged(port, &zones, &collections(), DEADLINE) {
            Ok(took) => Some(took),
            Err(err) => {
                self.violations.push(format!("{err:#}"));
                None
            }
        };
        let acked: Vec<String> = self.acked.iter().cloned().collect();
        match Snapshot::read(port, &collections()) {
            Ok(global) => {
                if let Err(err) = assert_acked_present(&global, &acked) {
                    self.violations.push(format!("{err:#}"));
                }
            }
            Err(err) => self.violations.push(format!("reading the global: {err:#}")),
        }
        let measured = self.measure()?;
        self.writer = Some(self.new_writer());
        self.control.release();
        Ok((converged, measured))
    }

    fn measure(&self) -> anyhow::Result<Measured> {
        let global = self
            .global
            .process
            .pid()
            .context("the global is not running")?;
        let zone2 = self.zone2.process.pid().context("zone-2 is not running")?;
        let pool_port = match &*self.store {
            Store::One(pg) => Some(pg.port()),
            Store::Pair(..) => None,
        };
        [
            ("global", global),
            ("zone-1", self.zone1_pid),
            ("zone-2", zone2),
        ]
        .into_iter()
        .map(|(name, pid)| {
            let usage = usage::settled(pid, pool_port, 3, Duration::from_millis(150))?;
            Ok((name, pid, usage))
        })
        .collect()
    }

    fn new_writer(&self) -> Writer {
        Writer::start_cycling(
            vec![self.global.http_port],
            MESH,
            "soak",
            Duration::from_millis(100),
            WRITER_NAMES,
        )
    }

    fn progress(&self, what: &str, converged: Option<Duration>, measured: &Measured) {
        let figures: Vec<String> = measured
            .iter()
            .map(|(name, _, u)| format!("{name} {} KiB {} fds", u.rss_kib, u.fds))
            .collect();
        let churn = self.control.stats();
        println!(
            "SOAK-PROGRESS | t={:.0}s | {what} | converged {} | {} | churn {} ticks, {} joins | violations so far {}",
            self.started.elapsed().as_secs_f64(),
            converged.map_or("never".into(), |c| format!("{:.1} s", c.as_secs_f64())),
            figures.join(", "),
            churn.ticks,
            churn.joins,
            self.violations.len() + self.watch.violations().len()
        );
    }

    /// The end: traffic totals, the watch's findings, exactly one mesh CA.
    fn report(
        self,
        processes: Vec<ProcessFigures>,
        faults: Vec<FaultFigures>,
        churn: churn::ChurnStats,
    ) -> SoakReport {
        let now = Instant::now();
        let (cross, local) = (
            self.cross.window(self.started, now),
            self.local.window(self.started, now),
        );
        let mut violations = self.violations;
        if let Err(err) = self.watch.finish() {
            violations.push(format!("{err:#}"));
        }
        if let Err(err) = site::ca_state(self.global) {
            violations.push(format!("{err:#}"));
        }
        SoakReport {
            form: self.options.form.clone(),
            ran: self.started.elapsed(),
            processes,
            faults,
            cross,
            local,
            writes: self.writes,
            churn,
            violations,
            limits: self.options.limits,
        }
    }
}
