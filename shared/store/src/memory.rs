//! The in-process store, for quick starts and tests: a sorted map behind one lock, a store-wide
//! revision counter, and a broadcast change feed. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use atoll_model::Resource;
use chrono::Utc;
use tokio::sync::broadcast;
use tracing::instrument;

use crate::leader::{LeaderGuard, Leadership, MemoryLeases};
use crate::rules::{check, incoming, not_found, same_content, stamped, timestamp};
use crate::{
    Event, FEED_CAPACITY, Key, ListQuery, Page, Precondition, PutOutcome, Store, StoreError, Stored,
};

/// A [`Store`] held in memory. Clones share the same data and feed.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
    leases: MemoryLeases,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<Slot, Stored>,
    revision: u64,
}

/// (type name, mesh or '', name): sorts exactly like the PostgreSQL store's primary key.
type Slot = (&'static str, String, String);

fn slot(key: &Key) -> Slot {
    (
        key.kind.name(),
        key.mesh.clone().unwrap_or_default(),
        key.name.clone(),
    )
}

impl MemoryStore {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(FEED_CAPACITY);
        MemoryStore {
            state: Arc::default(),
            events,
            leases: MemoryLeases::default(),
        }
    }

    /// How many receivers follow the change feed: what tests count to see who follows it.
    pub fn watchers(&self) -> usize {
        self.events.receiver_count()
    }

    /// Leads `name` among the users of this store (and its clones).
    pub fn try_lead(&self, name: &str) -> Option<LeaderGuard> {
        self.leases.try_lead(name)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is applied with one insert or remove after all checks, so a panic
        // elsewhere while the lock was held cannot have left the map half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("resources", &state.resources.len())
            .field("revision", &state.revision)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    #[instrument(level = "debug", skip_all, fields(kind = %key.kind, mesh = ?key.mesh, name = %key.name))]
    async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError> {
        Ok(self.lock().resources.get(&slot(key)).cloned())
    }

    #[instrument(level = "debug", skip_all, fields(kind = ?query.kind, mesh = ?query.mesh))]
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let state = self.lock();
        let matching: Vec<&Stored> = state
            .resources
            .iter()
            .filter(|((kind, mesh, _), stored)| {
                query.kind.is_none_or(|k| k.name() == *kind)
                    && query.mesh.as_ref().is_none_or(|m| m == mesh)
                    && query
                        .labels
                        .iter()
                        .all(|(k, v)| stored.resource.meta.labels.get(k) == Some(v))
            })
            .map(|(_, stored)| stored)
            .collect();
        let total = matching.len();
        let items: Vec<Stored> = matching
            .into_iter()
            .skip(query.offset)
            .take(query.size.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let end = query.offset.saturating_add(items.len());
        Ok(Page {
            next_offset: (end < total).then_some(end),
            items,
            total,
        })
    }

    #[instrument(level = "debug", skip_all, fields(kind = %resource.kind(), mesh = ?resource.mesh(), name = %resource.name(), ?expect))]
    async fn put(
        &self,
        resource: Resource,
        expect: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        let resource = incoming(resource);
        let key = Key::of(&resource);
        let slot = slot(&key);
        let mut state = self.lock();
        let existing = state.resources.get(&slot);
        check(&key, existing.map(|old| old.version), expect)?;
        if let Some(old) = existing
            && same_content(&old.resource, &resource)
        {
            tracing::debug!(version = old.version, "unchanged");
            return Ok(PutOutcome::Unchanged(old.clone()));
        }
        let now = timestamp(Utc::now());
        let created = existing
            .and_then(|old| old.resource.meta.creation_time.clone())
            .unwrap_or_else(|| now.clone());
        let is_update = existing.is_some();
        state.revision += 1;
        let stored = Stored {
            resource: stamped(resource, created, now),
            version: state.revision,
        };
        state.resources.insert(slot, stored.clone());
        // Sent while the lock is held, so events leave in commit order. No receivers is fine.
        let _ = self.events.send(Event::Put {
            key,
            version: stored.version,
        });
        tracing::debug!(version = stored.version, is_update, "stored");
        Ok(if is_update {
            PutOutcome::Updated(stored)
        } else {
            PutOutcome::Created(stored)
        })
    }

    #[instrument(level = "debug", skip_all, fields(kind = %key.kind, mesh = ?key.mesh, name = %key.name, ?expect))]
    async fn delete(&self, key: &Key, expect: Option<u64>) -> Result<Stored, StoreError> {
        let slot = slot(key);
        let mut state = self.lock();
        let precondition = expect.map_or(Precondition::Any, Precondition::Version);
        check(
            key,
            state.resources.get(&slot).map(|old| old.version),
            precondition,
        )?;
        let old = state
            .resources
            .remove(&slot)
            .ok_or_else(|| not_found(key))?;
        state.revision += 1;
        let version = state.revision;
        let _ = self.events.send(Event::Deleted {
            key: key.clone(),
            version,
        });
        tracing::debug!(version, "deleted");
        Ok(old)
    }

    fn watch(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl Leadership for MemoryStore {
    async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>, StoreError> {
        Ok(MemoryStore::try_lead(self, name))
    }
}
