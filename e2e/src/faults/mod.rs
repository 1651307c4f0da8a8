//! Faults as operators meet them, built from real Linux parts: packets dropped without a reset
//! ([`nft`]), slow and lossy links ([`proxy`], this kernel has no `tc netem`), stopped and
//! killed processes ([`signal`]), a PostgreSQL primary failing over to its streaming replica
//! ([`pg_replica`]); and what must hold after each ([`invariants`]) while traffic keeps
//! flowing ([`traffic`]); [`matrix`] runs one fault between them and reports its row.
//! Faults between hosts of the lab: a host's link going down ([`crate::lab::Host::link_down`]),
//! packets dropped inside a host toward one peer ([`crate::lab::Host::nft_drop_to`]), a link
//! proxy on a host's loopback ([`crate::lab::Host::link_proxy`]).
//!
//! Every fault is undone when its handle drops, after a panic too: nft tables deleted,
//! stopped processes continued, proxies closed.

pub mod invariants;
pub mod matrix;
pub mod nft;
pub mod pg_replica;
pub mod proxy;
pub mod signal;
pub mod site;
pub mod soak;
pub mod traffic;

use std::time::Duration;

/// `ATOLL_FAULTS_FULL=1` runs the fault matrix in its long form (minute-long partitions,
/// thousands of resources); by default each fault runs in a short form on the same code path.
pub fn full() -> bool {
    std::env::var("ATOLL_FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// `short` by default, `long` under [`full`].
pub fn sized<T>(short: T, long: T) -> T {
    if full() { long } else { short }
}

/// How long a fault lasts: `short` by default, `long` under [`full`].
pub fn fault_duration(short_secs: u64, long_secs: u64) -> Duration {
    Duration::from_secs(sized(short_secs, long_secs))
}
