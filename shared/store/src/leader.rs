//! Leadership for singleton work: the [`Leadership`] trait, the [`LeaderGuard`] both stores hand
//! out, and the memory store's in-process leases. PostgreSQL's advisory-lock lease lives in
//! `postgres::leader`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::StoreError;
use crate::postgres::leader::AdvisoryLease;

/// Elects one holder per name among everyone sharing the backing store.
#[async_trait::async_trait]
pub trait Leadership: Send + Sync {
    /// `Some` when this caller now leads `name`; `None` when someone else does. Leadership lasts
    /// until the guard is dropped or released (or, for PostgreSQL, its connection is lost: check
    /// [`LeaderGuard::still_leading`] before acting as leader).
    async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>, StoreError>;
}

/// Proof of leadership; dropping it gives leadership up.
pub struct LeaderGuard {
    name: String,
    lease: Lease,
}

pub(crate) enum Lease {
    Memory(MemoryLease),
    Postgres(AdvisoryLease),
}

impl LeaderGuard {
    pub(crate) fn new(name: &str, lease: Lease) -> Self {
        LeaderGuard {
            name: name.to_string(),
            lease,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether leadership still holds. A PostgreSQL lease ends with its connection, e.g. when
    /// the database restarts; a leader should check this before each round of singleton work.
    pub async fn still_leading(&mut self) -> bool {
        match &mut self.lease {
            Lease::Memory(_) => true,
            Lease::Postgres(lease) => lease.is_alive().await,
        }
    }

    /// Gives leadership up and waits until others can take it.
    pub async fn release(self) {
        tracing::debug!(name = %self.name, "releasing leadership");
        match self.lease {
            Lease::Memory(lease) => drop(lease),
            Lease::Postgres(lease) => lease.release().await,
        }
    }
}

impl std::fmt::Debug for LeaderGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The names led within one memory store.
#[derive(Clone, Default)]
pub(crate) struct MemoryLeases(Arc<Mutex<HashSet<String>>>);

impl MemoryLeases {
    pub(crate) fn try_lead(&self, name: &str) -> Option<LeaderGuard> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(name.to_string()) {
            return None;
        }
        let lease = MemoryLease {
            leases: self.clone(),
            name: name.to_string(),
        };
        Some(LeaderGuard::new(name, Lease::Memory(lease)))
    }
}

pub(crate) struct MemoryLease {
    leases: MemoryLeases,
    name: String,
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let mut held = self.leases.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.name);
    }
}
