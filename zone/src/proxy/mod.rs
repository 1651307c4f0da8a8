//! From the zone's world to per-proxy configurations: the builder, workload identities, the
//! dependency index and the reconciler that ties them to the world's changes, and the hub that
//! hands configurations to ADS streams.

pub(crate) mod balancing;
pub mod build;
mod cluster_policies;
pub mod data_source;
pub mod deps;
mod egress;
mod external;
pub mod hub;
pub mod identity;
pub mod insight_sync;
mod locality;
pub mod mesh_ca;
pub mod meta;
mod outbound_routes;
mod policies;
mod policy_gateway;
mod policy_limits;
pub mod policy_metrics;
pub mod reconciler;
