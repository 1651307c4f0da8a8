//! The zone's scale properties at a size CI runs in seconds (`atoll_e2e::scale`; the full size
//! is `cargo run --release -p atoll-e2e --bin bench-zone-scale`): 500 proxies, each with its
//! own TLS connection and ADS stream in an mTLS mesh, all configured with their certificates;
//! a new instance of one service reaches every proxy that calls it and no other proxy; a
//! Mesh-wide policy reaches every proxy; and the zone's memory per connected proxy stays under
//! a bound, so a regression in what the zone keeps per proxy fails here. The global's side
//! (`atoll_e2e::kds_scale`; full size `bench-kds`) runs with 10 zone processes: the global's
//! memory per connected zone, and a global restart that every zone survives quickly without
//! a write storm.

/// kB of zone memory per connected proxy this (unoptimised) build may use at 500 proxies.
/// Measured: about 90 here, as in a release build at 10,000 (docs/performance.md); the bound
/// leaves room for allocator noise, not for another copy of each proxy's state.
const KB_PER_PROXY_BOUND: f64 = 150.0;

/// KiB of global memory per connected zone this build may use at 10 zones. Measured: about
/// 170 in a release build at 100 zones; 10 zones leave more allocator noise per zone, and the
/// bound is far below what keeping a full-set buffer per zone cost (over 1 MiB).
const KIB_PER_ZONE_BOUND: f64 = 600.0;

#[test]
fn ten_zones_cost_the_global_little_and_come_back_quickly_after_it_restarts() {
    let (memory, mut fleet) = atoll_e2e::kds_scale::memory(true, 10, 50).unwrap();
    println!("global memory per zone: {:.0} KiB", memory.kib_per_zone());
    assert!(
        memory.kib_per_zone() < KIB_PER_ZONE_BOUND,
        "{:.0} KiB of global memory per connected zone (bound {KIB_PER_ZONE_BOUND})",
        memory.kib_per_zone()
    );
    let restart = atoll_e2e::kds_scale::restart(&mut fleet, 50, 50).unwrap();
    println!(
        "restart: {:.1} s, {} writes ({})",
        restart.resync.as_secs_f64(),
        restart.writes,
        restart.written
    );
    assert!(
        restart.resync < std::time::Duration::from_secs(30),
        "the zones took {:?} to come back after the global restarted",
        restart.resync
    );
    // The zones' insights and the one gateway written after the restart; a Dataplane or
    // anything else rewritten would be a storm at 10,000.
    assert!(
        restart
            .written_types()
            .iter()
            .all(|t| ["ZoneInsight", "MeshGateway"].contains(t)),
        "the re-sync rewrote {}",
        restart.written
    );
}

#[test]
fn five_hundred_proxies_each_get_only_what_concerns_them() {
    let report = atoll_e2e::scale::zone(500, 50, 5).unwrap();
    println!("{report}");
    assert_eq!(
        report.latencies.len(),
        5,
        "every round's callers got the change"
    );
    assert_eq!(
        report.others_pushed, 0,
        "a new instance of one service was pushed to proxies that do not call it"
    );
    assert!(
        report.kb_per_proxy() < KB_PER_PROXY_BOUND,
        "{:.1} kB of zone memory per connected proxy (bound {KB_PER_PROXY_BOUND})",
        report.kb_per_proxy()
    );
}
