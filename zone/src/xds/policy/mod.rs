//! Policies applied to generated listeners and clusters: the sidecar's listeners are built
//! first, then each policy type adjusts the filters and routes it concerns. Pure functions
//! over Envoy messages, like the rest of `xds`.

pub mod apply;
pub mod balancer;
pub mod circuit_breaker;
pub mod health_check;
pub mod limits;
pub mod rbac;
pub mod retry;
pub mod routes;
pub mod timeout;
