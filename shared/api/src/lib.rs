//! HTTP servers both control planes run.
//!
//! Owns the REST API on Kuma's paths (`rest`), the diagnostics endpoints (`diagnostics`:
//! health, readiness, Prometheus metrics), admin-token authentication, and the accept loop
//! that serves a router over plain TCP or TLS (`serve`). It reads and writes resources only
//! through the `Store` trait and never decides what a control plane syncs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod diagnostics;
pub mod rest;
pub mod serve;

pub use auth::AdminToken;
pub use rest::{ApiState, IssuedCertificate, IssuerSlot, Mode, ZoneCertificateIssuer, router};
pub use serve::{Connection, serve};
