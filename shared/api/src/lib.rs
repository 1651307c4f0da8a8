//! HTTP servers both control planes run.
//!
//! Owns the REST API on Kuma's paths (`rest`) with token issuance, the diagnostics endpoints
//! (`diagnostics`: health, readiness, Prometheus metrics), authentication and authorization of
//! API callers (`auth`, deciding through `atoll-auth`), and how every Atoll server accepts and
//! serves connections within its limits (`listen`, `serve`). It reads and writes resources
//! only through the `Store` trait and never decides what a control plane syncs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod diagnostics;
pub mod gui;
pub mod listen;
pub mod rest;
pub mod serve;

pub use auth::ApiAuth;
pub use listen::Limits;
pub use rest::{
    ApiState, CsrError, IssuedCertificate, IssuerSlot, Mode, ZoneCertificateIssuer, router,
};
pub use serve::{Connection, serve};
