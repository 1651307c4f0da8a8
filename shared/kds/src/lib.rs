//! KDS: how resources travel between the global control plane and its zones.
//!
//! Owns the protocol as two state machines over message streams, with no sockets: a
//! [`sender`] serves a set of types from a store to a peer, a [`receiver`] subscribes and
//! applies what it receives to its own store. The same two run in both directions — global to
//! zone (the zone's gRPC client receives) and zone to global (the zone's gRPC client sends) —
//! so the gRPC servers and clients in the global and zone crates are thin adapters. [`wire`]
//! fixes the encoding, [`scope`] which resources each side may touch. Messages cross the
//! channels boxed: a channel reserves its slots 32 at a time, and unboxed responses made that
//! about 20 KiB per channel, four channels per connected zone.
//!
//! Rules (docs/kds.md has the full description):
//! - the receiver subscribes to `*` per type; the first answer per type after a (re)connect is
//!   the full set, possibly in several chunks, and what the receiver holds outside it is
//!   deleted; after that only changes travel;
//! - versions are content hashes, so an unchanged resource is never rewritten;
//! - every response is ACKed or NACKed with its nonce; a NACK names the rejected resources;
//! - the sender sends a heartbeat when idle, so a receiver detects a stalled stream.
#![forbid(unsafe_code)]

pub mod observer;
pub mod receiver;
pub mod scope;
pub mod sender;
pub mod shared_reads;
pub mod wire;

pub use observer::{NoopObserver, SyncObserver};
pub use scope::Scope;

/// Why a sync stream ended.
#[derive(Debug, thiserror::Error)]
pub enum KdsError {
    #[error("the peer closed the stream")]
    Closed,
    #[error("nothing received for {0:?}: the stream is stalled")]
    Stalled(std::time::Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] atoll_store::StoreError),
    #[error("cannot read from the store: {0}")]
    SharedRead(String),
    #[error("stream error: {0}")]
    Transport(String),
}

/// Resolves once `stop` turns true (or its sender is gone), without holding the watch's lock.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
