//! The Atoll test harness: the one place that starts real processes for tests.
//!
//! Tests of every crate get their peers from here: a throwaway PostgreSQL ([`postgres`]), and
//! (as they are added) control planes, Envoys and test backends. Every process listens on a free
//! loopback port ([`free_port`]) so tests run in parallel; every start waits for readiness
//! rather than sleeping; a failed start reports the process's own log; and every handle stops
//! its process and removes its files when dropped, so a failing test leaves nothing behind.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, TcpListener};

use anyhow::Context;

pub mod backend;
pub mod binaries;
pub mod cli;
pub mod dataplane;
pub mod envoy;
pub mod external;
pub mod global;
pub mod ingress;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod tls;
pub mod zone;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The kernel picks it from the ephemeral range, which makes collisions between parallel tests
/// unlikely; the port is released before returning, so a process started later can bind it.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding an ephemeral port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
