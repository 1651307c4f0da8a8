//! KDS benchmark: global-write-to-zone-store latency with N zones connected, and the global's
//! memory per connected zone. Run with `cargo run --release -p atoll-e2e --bin bench-kds`
//! (a release build of the harness starts release builds of the control planes).
//!
//! 1. Latency: a global and N zones, Mesh `default`, then M distinct MeshGateways created by W
//!    concurrent writers, each one PUT at a time. Latency of a change in a zone = the zone
//!    store's `modificationTime` of its copy minus the global store's `modificationTime` in the
//!    PUT response: both are stamped at commit, on one machine clock, so no polling resolution
//!    enters the figure.
//! 2. Memory: a fresh global with the same M gateways, its RSS with no zone connected and again
//!    once N zones are connected and synced, and the zones' own RSS.
//! 3. Restart: each of those zones then reports D Dataplanes (synced up to the global), the
//!    global is killed (SIGKILL) and started again on the same database, and the bench waits
//!    until every zone is back online and a gateway written after the restart has reached all
//!    of them. It counts the store writes the re-sync made (the revisions the database handed
//!    out), by type: the target is no write for a resource that did not change.
//!
//! Environment: `ATOLL_BENCH_ZONES` (10), `ATOLL_BENCH_CHANGES` (1000),
//! `ATOLL_BENCH_WRITERS` (4), `ATOLL_BENCH_DATAPLANES_PER_ZONE` (100; the restart phase runs on PostgreSQL only),
//! `ATOLL_BENCH_STORE` (`postgres`, the default: the global on a throwaway PostgreSQL, as
//! in production; `memory` for the memory store).

use atoll_e2e::kds_scale::{env_number, latency, memory, mib, percentile, restart};

fn main() -> anyhow::Result<()> {
    let zones_n = env_number("ATOLL_BENCH_ZONES", 10).max(1);
    let changes = env_number("ATOLL_BENCH_CHANGES", 1000).max(1);
    let postgres = std::env::var("ATOLL_BENCH_STORE").as_deref() != Ok("memory");
    let store = if postgres { "postgres" } else { "memory" };
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "latency: a global ({store} store) and {zones_n} zones, {changes} created gateways by {} concurrent writers",
        env_number("ATOLL_BENCH_WRITERS", 4)
    );
    let writers = env_number("ATOLL_BENCH_WRITERS", 4);
    let lat = latency(postgres, zones_n, changes, writers)?;
    eprintln!("memory: a fresh global, {changes} gateways, then {zones_n} zones");
    let (mem, mut world) = memory(postgres, zones_n, changes)?;
    let per_zone = env_number("ATOLL_BENCH_DATAPLANES_PER_ZONE", 100);
    let restarted = if postgres {
        eprintln!(
            "restart: {per_zone} Dataplanes per zone, then the global killed and started again"
        );
        Some(restart(&mut world, per_zone, changes)?)
    } else {
        None
    };

    let s = &lat.samples;
    println!(
        "KDS benchmark: {zones_n} zones, {changes} changes, global store {store}, {profile} binaries"
    );
    println!(
        "  writes on the global: {:.0}/s (concurrent writers, one PUT at a time each); every zone complete {} ms after the last write",
        lat.writes_per_sec,
        lat.sync_after_last_write.as_millis()
    );
    println!(
        "  global write -> zone store: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (min {:.2} ms, {} samples)",
        percentile(s, 0.50),
        percentile(s, 0.99),
        s[s.len() - 1],
        s[0],
        s.len()
    );
    let per_zone = mem.kib_per_zone();
    println!(
        "  global RSS with {changes} gateways: {} with 0 zones, {} with {zones_n} zones synced -> {:.0} KiB per zone",
        mib(mem.global_without_zones),
        mib(mem.global_with_zones),
        per_zone
    );
    println!(
        "  zone RSS: median {} (min {}, max {})",
        mib(mem.zones[mem.zones.len() / 2]),
        mib(mem.zones[0]),
        mib(mem.zones[mem.zones.len() - 1])
    );
    if let Some(r) = restarted {
        println!(
            "  global restart with {} zone Dataplanes: every zone back and a new write everywhere in {:.1} s; {} store writes during the re-sync ({})",
            r.dataplanes,
            r.resync.as_secs_f64(),
            r.writes,
            if r.written.is_empty() {
                "none"
            } else {
                &r.written
            }
        );
    }
    Ok(())
}
