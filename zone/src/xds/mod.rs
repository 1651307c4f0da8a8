//! Pure generators: inputs (resources, the proxy they are for) in, Envoy resources out. No
//! I/O and no async, so they are golden-tested and checked with `envoy --mode validate`.
//!
//! This build has the built-in gateway's HTTP listeners with MeshHTTPRoute routes; clusters,
//! TLS, TCP, sidecars and the ADS server that serves these to proxies come next (issue 5).

pub mod gateway;
pub mod routes;
