//! The zone-ingress SNI router: forwards cross-zone mesh-mTLS connections to local endpoints by
//! the SNI of their ClientHello, without decrypting them.
//!
//! Owns the data path of the ingress: ClientHello reading ([`clienthello`]), endpoint choice
//! ([`table`]), the accept loop, splicing, limits and drain ([`router`]), and its counters
//! ([`stats`]). It must not hold mesh key material nor terminate TLS (the handshake is between
//! the two sidecars: the client verifies the destination sidecar's certificate, not ours), and
//! must not know about resources: the routing table is computed by `crate::crosszone` and
//! handed over through a `watch` channel, so a separate ingress process keeps serving its last
//! table when the control plane goes away.

pub mod clienthello;
pub mod router;
pub mod stats;
pub mod table;

#[cfg(test)]
mod clienthello_tests;

pub use clienthello::{MAX_CLIENT_HELLO, MAX_INPUT, Parsed, Reader, parse};
pub use router::{IngressConfig, serve};
pub use stats::{Rejection, SniCounters, SniStats, Stats};
pub use table::{Picker, Table, UNHEALTHY_FOR};
