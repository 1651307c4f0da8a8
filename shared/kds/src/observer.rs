//! Hooks through which a control plane records what happens on a sync stream (zone insights,
//! metrics), kept out of the protocol code.

use atoll_model::Kind;

pub trait SyncObserver: Send + Sync {
    /// The peer accepted everything up to this response of `kind`.
    fn acked(&self, _kind: Kind, _nonce: &str) {}
    /// The peer rejected (part of) a response: `reason` names the resources and why.
    fn nacked(&self, _kind: Kind, _nonce: &str, _reason: &str) {}
    /// This side rejected (part of) a received response.
    fn rejected(&self, _kind: Kind, _reason: &str) {}
    /// A full set of `kind` was applied (`changes` writes were needed).
    fn synced(&self, _kind: Kind, _changes: usize) {}
}

pub struct NoopObserver;

impl SyncObserver for NoopObserver {}
