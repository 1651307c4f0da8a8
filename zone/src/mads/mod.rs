//! The Monitoring Assignment Discovery Service (MADS) Prometheus' `kuma_sd_configs` reads:
//! which proxies of this zone publish metrics, and where. It owns the assignments (computed
//! from the store: Dataplanes and their MeshMetric policies) and their HTTP long-poll
//! endpoint; it must not write anything.

pub mod assignments;
pub mod grpc;
pub mod server;
