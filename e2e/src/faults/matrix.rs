//! One row of the fault matrix, whatever the deployment runs on (processes on the test's
//! loopback, or hosts of the lab): traffic and writes around the fault, the invariants after
//! it, and the `FAULT-ROW` line with the figures docs/reliability.md reports.

use std::time::{Duration, Instant};

use super::invariants::{Get, Snapshot, Watch, assert_acked_present, wait_converged_with};
use super::traffic::{Traffic, WriteOutcome, Writer};
use crate::zone::eventually;

/// How long writes may take to resume and zones to converge after a fault.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running deployment the matrix can fault: a global, zones, a client writing to the
/// global, and Envoys with cross-zone and in-zone traffic.
pub trait Deployment {
    /// The global's API (its first replica's).
    fn global_api(&self) -> Get;
    /// Each zone's API, by zone name.
    fn zone_apis(&self) -> Vec<(String, Get)>;
    /// The synced collections compared between the global and the zones.
    fn collections(&self) -> Vec<String>;
    /// Watches every zone and every client's Envoy.
    fn watch(&self) -> Watch;
    /// The traffic that runs through every fault: (cross-zone, in-zone).
    fn traffic(&self) -> (Traffic, Traffic);
    /// A client writing MeshGateways named after `prefix` to the global.
    fn writer(&self, prefix: &str) -> Writer;
    /// The control planes' recent logs, for failure messages.
    fn logs(&self) -> String;
}

/// What one row measured.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// From the end of the fault until every zone held the global's state.
    pub converged: Duration,
    pub acked: usize,
    /// Writes (retryable failures, attempts) started during the fault.
    pub writes: (usize, usize),
    /// Requests (failed, sent) started during the fault.
    pub cross: (usize, usize),
    pub local: (usize, usize),
}

/// The invariants after a fault: writes acknowledged before `writer` stopped are on the
/// global, zones converge to its state, the watch saw no violation; returns when the zones
/// had converged, the acknowledged count and every write's outcome.
pub fn check(
    site: &impl Deployment,
    writer: Writer,
    watch: Watch,
) -> (Instant, usize, Vec<(Instant, WriteOutcome)>) {
    let (acked, outcomes) = writer.finish();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, WriteOutcome::Refused(_)))
        .collect();
    assert!(refused.is_empty(), "writes refused: {refused:?}");
    let (global, collections) = (site.global_api(), site.collections());
    let apis = site.zone_apis();
    let zones: Vec<(&str, Get)> = apis.iter().map(|(n, g)| (n.as_str(), g.clone())).collect();
    let took = wait_converged_with(&global, &zones, &collections, DEADLINE)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", site.logs()));
    let converged = Instant::now();
    let state = Snapshot::read_with(global.as_ref(), &collections).unwrap_or_else(|e| {
        panic!("{e:#}");
    });
    assert_acked_present(&state, &acked).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!acked.is_empty(), "no write was acknowledged at all");
    watch.finish().unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "zones converged {:.1} s after the writes stopped",
        took.as_secs_f64()
    );
    (converged, acked.len(), outcomes)
}

/// Writes in `[from, to)`: (failed with a retryable answer, attempted).
pub fn write_window(
    outcomes: &[(Instant, WriteOutcome)],
    from: Instant,
    to: Instant,
) -> (usize, usize) {
    let inside: Vec<_> = outcomes
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .collect();
    let retryable = inside
        .iter()
        .filter(|(_, o)| *o == WriteOutcome::Retryable)
        .count();
    (retryable, inside.len())
}

/// Prints the `FAULT-ROW` line of `fault`.
pub fn print_row(fault: &str, row: &Row) {
    println!(
        "FAULT-ROW | {fault} | converged {:.1} s | writes: {} acknowledged, retryable failures during the fault {}/{} | cross-zone failed {}/{} | in-zone failed {}/{} | invariants held | form {}",
        row.converged.as_secs_f64(),
        row.acked,
        row.writes.0,
        row.writes.1,
        row.cross.0,
        row.cross.1,
        row.local.0,
        row.local.1,
        if super::full() { "full" } else { "short" }
    );
}

/// Runs `fault` with traffic and writes around it, checks the invariants, prints the row.
/// The data plane must not notice a control-plane fault: in-zone calls never fail, nor do
/// cross-zone ones unless the fault is on their path (`cross_may_fail`).
pub fn run_fault<D: Deployment>(
    site: &mut D,
    name: &str,
    cross_may_fail: bool,
    fault: impl FnOnce(&mut D),
) -> Row {
    let watch = site.watch();
    let (cross, local) = site.traffic();
    let prefix: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let writer = site.writer(&prefix);
    // Writes are flowing before the fault, and again after it: both are asserted.
    eventually("writes before the fault", DEADLINE, || writer.acked() >= 5)
        .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    let from = Instant::now();
    fault(site);
    let to = Instant::now();
    let before = writer.acked();
    eventually("writes resuming after the fault", DEADLINE, || {
        writer.acked() >= before + 5
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    let (converged, acked, outcomes) = check(site, writer, watch);
    let row = Row {
        // From the end of the fault: reconnecting, catching up and the writes made meanwhile.
        converged: converged - to,
        acked,
        writes: write_window(&outcomes, from, to),
        cross: cross.window(from, to),
        local: local.window(from, to),
    };
    println!(
        "{name}: the fault lasted {:.1} s",
        (to - from).as_secs_f64()
    );
    print_row(name, &row);
    assert!(
        row.cross.1 > 0 && row.local.1 > 0,
        "no traffic ran during the fault"
    );
    assert_eq!(
        row.local.0, 0,
        "in-zone calls failed during {name}: {:?}",
        row.local
    );
    if !cross_may_fail {
        assert_eq!(
            row.cross.0, 0,
            "cross-zone calls failed during {name}: {:?}",
            row.cross
        );
    }
    row
}
