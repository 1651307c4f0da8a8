//! The Atoll test harness: the one place that starts real processes for tests.
//!
//! Tests of every crate get their peers from here: a throwaway PostgreSQL ([`postgres`]), and
//! (as they are added) control planes, Envoys and test backends. Every process listens on a free
//! loopback port ([`free_port`]) so tests run in parallel; every start waits for readiness
//! rather than sleeping; a failed start reports the process's own log; and every handle stops
//! its process and removes its files when dropped, so a failing test leaves nothing behind.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, TcpListener};

pub mod ads;
pub mod backend;
pub mod binaries;
pub mod browser;
pub mod cli;
pub mod dataplane;
pub mod envoy;
pub mod external;
pub mod faults;
pub mod global;
pub mod grpc;
pub mod ingress;
pub mod kds_scale;
pub mod lab;
pub mod otlp;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod scale;
pub mod tls;
pub mod zone;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Ports come from 20000–31999, below Linux's ephemeral range (32768 and up), so no outgoing
/// connection can take one between the moment it is chosen and the moment a process binds it;
/// a process-wide counter keeps the tests of one binary from choosing the same port, and the
/// starting point varies by process so binaries run one after another do not reuse a port a
/// lingering process may still hold.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % SPAN) as u16;
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        // Envoy's DNS listener and the like bind UDP on the same number.
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + SPAN - 1
    )
}
