//! The soak's steady change: once a second a data plane joins or leaves zone-1 (alternately,
//! around a fixed population), and the global's MeshHTTPRoute to `backend`, the MeshGateway
//! `edge` and the gateway's route change. The driver can hold it at its base population with
//! no change in flight, to compare states or count descriptors at the same point each time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::dataplane::Dataplane;
use crate::faults::signal;
use crate::faults::site::MESH;
use crate::process::http_request;
use crate::zone::Zone;

const TICK: Duration = Duration::from_secs(1);
/// How long a leaving data plane may take to drain (1 s), deregister and exit.
const LEAVE_GRACE: Duration = Duration::from_secs(10);
/// The errors kept for the report; the rest are only counted.
const KEPT_ERRORS: usize = 10;

/// What the churn did.
#[derive(Debug, Clone, Default)]
pub struct ChurnStats {
    pub ticks: usize,
    pub joins: usize,
    pub join_failures: usize,
    pub leaves: usize,
    /// Leaves that had to be finished with SIGKILL.
    pub unclean_leaves: usize,
    pub config_changes: usize,
    pub config_failures: usize,
    /// Ticks that started more than a second late (a join is slow, a PUT waits on a stopped
    /// global).
    pub late_ticks: usize,
    pub errors: Vec<String>,
}

impl ChurnStats {
    fn error(&mut self, message: String) {
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(message);
        }
    }
}

/// The driver's side: stop, hold and release, and the figures so far.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    hold: AtomicBool,
    held: AtomicBool,
    stats: Mutex<ChurnStats>,
}

impl Control {
    /// Asks the churn to stop at its base population with nothing in flight, and waits until
    /// it has (at most `deadline`: a join waits for its Envoy up to 30 s).
    pub fn hold(&self, deadline: Duration) -> anyhow::Result<()> {
        self.hold.store(true, Ordering::SeqCst);
        let until = Instant::now() + deadline;
        while !self.held.load(Ordering::SeqCst) {
            if Instant::now() > until {
                bail!("the churn did not come to rest within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ChurnStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, change: impl FnOnce(&mut ChurnStats)) {
        change(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Where the churn acts.
pub struct Target<'a> {
    /// The zone the data planes join.
    pub zone: &'a Zone,
    /// The application behind every joining sidecar.
    pub app_port: u16,
    /// The global's API, for the route and gateway changes.
    pub global_port: u16,
    /// The MeshGateway `edge`'s listener port.
    pub gateway_port: u16,
    /// Data planes present between a leave and the next join.
    pub base: usize,
}

/// Runs until [`Control::stop`]; the data planes still present leave at the end.
pub fn run(target: &Target, control: &Control) {
    let mut members: VecDeque<Dataplane> = VecDeque::new();
    let mut n = 0usize;
    let mut next = Instant::now();
    while !control.stop.load(Ordering::SeqCst) {
        if control.hold.load(Ordering::SeqCst) && members.len() == target.base {
            control.held.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            next = Instant::now();
            continue;
        }
        control.held.store(false, Ordering::SeqCst);
        let now = Instant::now();
        if now < next {
            // Short steps, so a stop or a hold is seen within 50 ms.
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        if members.len() > target.base {
            if let Some(dp) = members.pop_front() {
                leave(dp, control);
            }
        } else {
            match join(target, n) {
                Ok(dp) => {
                    members.push_back(dp);
                    control.record(|s| s.joins += 1);
                }
                Err(err) => control.record(|s| {
                    s.join_failures += 1;
                    s.error(format!("join of churn-{n}: {err:#}"));
                }),
            }
        }
        change_config(target, n, control);
        control.record(|s| s.ticks += 1);
        n += 1;
        next += TICK;
        if Instant::now() > next + TICK {
            control.record(|s| s.late_ticks += 1);
            next = Instant::now();
        }
    }
    for dp in members {
        leave(dp, control);
    }
}

fn join(target: &Target, n: usize) -> anyhow::Result<Dataplane> {
    let name = format!("churn-{n}");
    let (dp, _) =
        Dataplane::start_sidecar(target.zone, MESH, &name, "churn", target.app_port, &[], &[])?;
    Ok(dp)
}

/// SIGTERM: atoll-dp drains Envoy, stops it and deregisters. One that does not finish in
/// time is killed, with its Envoy, which would otherwise outlive it.
fn leave(mut dp: Dataplane, control: &Control) {
    let envoys = dp.process.pid().map(children).unwrap_or_default();
    let clean = dp.process.terminate(LEAVE_GRACE);
    if !clean {
        for pid in envoys {
            let _ = signal::send(pid, "KILL");
        }
    }
    control.record(|s| {
        s.leaves += 1;
        if !clean {
            s.unclean_leaves += 1;
            s.error(format!("{} did not leave within {LEAVE_GRACE:?}", dp.name));
        }
    });
}

/// The children of `pid` (from `/proc/<pid>/task/*/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The `n`th change: the sidecar route, the gateway and the gateway's route, each rewritten.
fn change_config(target: &Target, n: usize, control: &Control) {
    for (path, body) in config(n, target.gateway_port) {
        let outcome = http_request(target.global_port, "PUT", &path, Some(&body.to_string()));
        match outcome {
            Ok((code, _)) if (200..300).contains(&code) => {
                control.record(|s| s.config_changes += 1)
            }
            other => control.record(|s| {
                s.config_failures += 1;
                s.error(format!("PUT {path}: {other:?}"));
            }),
        }
    }
}

/// The resources of the `n`th change, as (API path, body).
pub fn config(n: usize, gateway_port: u16) -> Vec<(String, serde_json::Value)> {
    let backend = json!([{"kind": "MeshService", "name": "backend"}]);
    let prefix = |value: String| json!([{"path": {"type": "PathPrefix", "value": value}}]);
    // The catch-all rule keeps the clients' `/traffic` calls on `backend` whatever the first
    // rule says.
    let route = json!({
        "type": "MeshHTTPRoute", "mesh": MESH, "name": "soak-backend",
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "to": [{
                "targetRef": {"kind": "MeshService", "name": "backend"},
                "rules": [
                    {"matches": prefix(format!("/soak-{n}")), "default": {"backendRefs": backend}},
                    {"matches": prefix("/".into()), "default": {"backendRefs": backend}},
                ],
            }],
        },
    });
    let hostname = if n.is_multiple_of(2) {
        "*"
    } else {
        "edge.soak.test"
    };
    let gateway = json!({
        "type": "MeshGateway", "mesh": MESH, "name": "edge",
        "selectors": [{"match": {"kuma.io/service": "edge"}}],
        "conf": {"listeners": [{"port": gateway_port, "protocol": "HTTP", "hostname": hostname}]},
    });
    let gateway_route = json!({
        "type": "MeshHTTPRoute", "mesh": MESH, "name": "soak-edge",
        "spec": {
            "targetRef": {"kind": "MeshGateway", "name": "edge"},
            "to": [{
                "targetRef": {"kind": "Mesh"},
                "rules": [{"matches": prefix(format!("/edge-{n}")), "default": {"backendRefs": backend}}],
            }],
        },
    });
    vec![
        (format!("/meshes/{MESH}/meshhttproutes/soak-backend"), route),
        (format!("/meshes/{MESH}/meshgateways/edge"), gateway),
        (
            format!("/meshes/{MESH}/meshhttproutes/soak-edge"),
            gateway_route,
        ),
    ]
}
