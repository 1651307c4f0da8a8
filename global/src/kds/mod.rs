//! The global's end of KDS: the gRPC server zones connect to (mutual TLS, zone identity bound
//! to the client certificate) and the zone insights it records.

mod insights;
mod server;

pub use insights::Insights;
pub use server::{KdsServer, serve};
