//! The zone control plane as a library: what `atoll-zone` and `atoll-dp` are built from, and
//! what benchmarks and tests drive directly.
//!
//! Owns the zone side of Atoll: the KDS client that mirrors the global's resources into the
//! zone store, the zone's world (its resources in memory, one copy every reader shares), the
//! reconciler that turns them into per-proxy Envoy configuration (`proxy`, `xds`), the DP server that serves it over ADS, and the data-plane launcher. It must not
//! write global-owned resources (only the KDS client mirrors them) and must not hold state that
//! a restart cannot rebuild from the store.
#![forbid(unsafe_code)]

pub mod config;
pub mod crosszone;
pub mod dp;
pub mod dp_server;
pub mod external;
pub mod ingress;
pub mod initial_sync;
pub mod kds_client;
pub mod log_relay;
pub mod mads;
pub mod naming;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod world;
pub mod xds;
