//! The global's end of KDS: the gRPC server zones connect to (mutual TLS, zone identity bound
//! to the client certificate, cut when the zone is disabled or its certificate revoked) and
//! the zone insights it records.

mod access;
mod insights;
mod server;

pub use access::ZoneAccess;
pub use insights::Insights;
pub use server::{KdsServer, serve};
