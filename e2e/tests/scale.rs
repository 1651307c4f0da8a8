//! The zone's scale properties at a size CI runs in seconds (`atoll_e2e::scale`; the full size
//! is `cargo run --release -p atoll-e2e --bin bench-zone-scale`): 500 proxies, each with its
//! own TLS connection and ADS stream in an mTLS mesh, all configured with their certificates;
//! a new instance of one service reaches every proxy that calls it and no other proxy; a
//! Mesh-wide policy reaches every proxy; and the zone's memory per connected proxy stays under
//! a bound, so a regression in what the zone keeps per proxy fails here.

/// kB of zone memory per connected proxy this (unoptimised) build may use at 500 proxies.
/// Measured: about 90 here, as in a release build at 10,000 (docs/performance.md); the bound
/// leaves room for allocator noise, not for another copy of each proxy's state.
const KB_PER_PROXY_BOUND: f64 = 150.0;

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
