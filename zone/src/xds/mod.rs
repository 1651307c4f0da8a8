//! Pure generators: inputs (resources, the proxy they are for) in, Envoy resources out. No
//! I/O and no async, so they are golden-tested and checked with `envoy --mode validate`.

pub mod clusters;
pub mod dns;
pub mod egress;
pub mod external;
pub mod filters;
pub mod gateway;
pub mod metrics;
pub mod policy;
pub mod routes;
pub mod sidecar;
pub mod sidecar_routes;
pub mod snapshot;
pub mod tls;
