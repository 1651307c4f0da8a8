//! A zone control plane at scale (`atoll_e2e::scale`), full size: a global and a zone (`atoll-zone`, its
//! own process, so its memory can be read), one mTLS mesh, `ATOLL_BENCH_PROXIES` Dataplanes
//! across `ATOLL_BENCH_SERVICES` services, each calling the next service, and as many ADS
//! clients in this process, each on its own TLS connection with its own stream, receiving
//! listeners, clusters, endpoints and its workload certificate (SDS over ADS), ACKing all.
//!
//! Prints: the time until every proxy is configured; the zone's resident memory per connected
//! proxy; for `ATOLL_BENCH_ROUNDS` rounds, the time from writing a new instance of one service
//! until every proxy that calls it has the new endpoints (and how many responses went to any
//! other proxy: the target is none); and the time from one Mesh-wide policy write until every
//! proxy received new configuration. Data plane tokens are off (`KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none`):
//! their cost is measured by `cargo bench -p atoll-zone --bench xds` (tokens).
//!
//! `cargo run --release -p atoll-e2e --bin bench-zone-scale` (10,000 proxies, 1,000 services,
//! 50 rounds); `ATOLL_BENCH_PROXIES`, `ATOLL_BENCH_SERVICES`, `ATOLL_BENCH_ROUNDS` shrink it.
//! Each process needs a file descriptor per proxy (`ulimit -n`).

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxies = env_number("ATOLL_BENCH_PROXIES", 10_000);
    let services = env_number("ATOLL_BENCH_SERVICES", 1_000).clamp(2, proxies.max(2));
    let rounds = env_number("ATOLL_BENCH_ROUNDS", 50);
    let report = atoll_e2e::scale::zone(proxies, services, rounds)?;
    println!("{report}");
    Ok(())
}
