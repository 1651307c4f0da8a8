//! The resource store.
//!
//! Owns persistence of resources and the change feed: the [`Store`] trait, its PostgreSQL
//! implementation (production, shared by several control-plane replicas) and its memory
//! implementation (quick starts, zones), which pass one conformance suite. It stores what it is
//! given: validation happens before a write reaches it, and it knows nothing of HTTP or KDS.
//!
//! # Consuming the change feed
//!
//! [`Store::watch`] hands out a `tokio::sync::broadcast` receiver holding up to
//! [`FEED_CAPACITY`] events. A consumer that falls further behind gets
//! `RecvError::Lagged`: it must treat that exactly like [`Event::Resync`] (re-list what it
//! follows), because the events it skipped are gone. `Resync` itself is sent when the feed may
//! have missed changes, e.g. after the PostgreSQL listener reconnected; a re-list done after
//! receiving it sees every change committed before, and every later change arrives as an event.
//!
//! # Leadership
//!
//! Singleton work (one replica out of several) is guarded by [`Leadership::try_lead`]: a
//! PostgreSQL advisory lock held by a dedicated connection, or an in-process lock for the memory
//! store.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use atoll_model::{Kind, Resource};
use tokio::sync::broadcast;

// Always compiled, not behind a feature: a feature only the tests turn on would give
// `cargo test` a different atoll-store from the binaries', and every crate above it would be
// built twice. Unused, it costs the binaries nothing.
pub mod conformance;
mod leader;
mod memory;
mod postgres;
mod rules;

pub use leader::{LeaderGuard, Leadership};
pub use memory::MemoryStore;
pub use postgres::{PostgresConfig, PostgresStore};

/// How many events a [`Store::watch`] receiver buffers before it lags (see the crate docs).
pub const FEED_CAPACITY: usize = 4096;

/// Identifies one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    /// `None` for global-scoped types.
    pub mesh: Option<String>,
    pub name: String,
}

impl Key {
    pub fn new(kind: Kind, mesh: Option<&str>, name: &str) -> Self {
        Key {
            kind,
            mesh: mesh.map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn of(resource: &Resource) -> Self {
        Key::new(resource.kind(), resource.mesh(), resource.name())
    }
}

/// A resource as stored: `meta.creation_time` and `meta.modification_time` are set by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub resource: Resource,
    /// Revision of the last change to this resource: unique across the store, and greater
    /// than every earlier revision of the same resource, whichever replica wrote it.
    pub version: u64,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Create or replace, whatever is there.
    Any,
    /// Only create.
    Absent,
    /// Only replace the revision the writer last read.
    Version(u64),
}

/// The result of a put.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    Created(Stored),
    Updated(Stored),
    /// Spec and labels equal what is stored: nothing was written and no event was sent.
    Unchanged(Stored),
}

impl PutOutcome {
    pub fn stored(&self) -> &Stored {
        match self {
            PutOutcome::Created(s) | PutOutcome::Updated(s) | PutOutcome::Unchanged(s) => s,
        }
    }
}

/// Which resources a list returns, and which page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub kind: Option<Kind>,
    /// `None`: every mesh (and global-scoped resources).
    pub mesh: Option<String>,
    /// Every entry must be present among the resource's labels with this value.
    pub labels: BTreeMap<String, String>,
    pub offset: usize,
    /// `None`: no limit.
    pub size: Option<usize>,
}

/// One page of a list, ordered by kind, mesh, name.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Stored>,
    /// How many resources match the query in total.
    pub total: usize,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<usize>,
}

/// A change committed to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Created or updated, at this revision.
    Put {
        key: Key,
        version: u64,
    },
    Deleted {
        key: Key,
        version: u64,
    },
    /// Changes may have been missed (lost database connection, lagging receiver): re-list.
    Resync,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: Kind, name: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: Kind, name: String },
    #[error(
        "{kind} {name:?} was changed concurrently: expected version {expected}, found {actual}"
    )]
    Conflict {
        kind: Kind,
        name: String,
        expected: u64,
        actual: u64,
    },
    /// The backing database cannot be reached or the connection pool is exhausted; retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Persistence for resources with a change feed.
#[async_trait::async_trait]
pub trait Store: Leadership + Send + Sync + 'static {
    async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError>;

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Creates or replaces. Labels and spec equal to what is stored give `Unchanged`.
    async fn put(&self, resource: Resource, expect: Precondition)
    -> Result<PutOutcome, StoreError>;

    /// Deletes; `expect` of `Some(v)` deletes only revision `v`.
    async fn delete(&self, key: &Key, expect: Option<u64>) -> Result<Stored, StoreError>;

    /// Every change committed after this call, in commit order, from any writer to the same
    /// backing store (including other processes on the same database).
    fn watch(&self) -> broadcast::Receiver<Event>;

    /// Whether the backing store answers now.
    async fn ping(&self) -> Result<(), StoreError>;
}
