//! One list per type for the senders that need it at the same time.
//!
//! When a global restarts, every zone reconnects within a second and asks for the full set of
//! every type. Each sender listing on its own meant thousands of identical queries queued on
//! the database pool, answered one type every few seconds. Senders now join a read of the
//! type that started after they began following the store's feed.
//!
//! Why that condition is enough: a read that started after a sender subscribed reflects every
//! write committed before the read, and the sender's feed reports every write committed after
//! it. The sender keeps the keys its feed reported while it waited (see `Sender::fill`), so a
//! write that raced the shared read is sent as a change right after the full set. A read
//! that started before the sender subscribed could miss a write whose event the sender never
//! saw; such a read is never joined.
//!
//! Single resources are shared the same way: a write reaches every zone's sender through its
//! feed at once, and each used to read the resource back on its own (100 queries and JSON
//! decodes per write with 100 zones). A sender that saw revision `r` of a key joins a read of
//! that key begun after some sender saw a revision at least `r`, i.e. after `r` was committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atoll_model::Kind;
use atoll_store::{Key, ListQuery, Store, Stored};
use tokio::sync::OnceCell;

use crate::KdsError;

/// How long a finished read stays joinable. Senders that reconnect together ask within a few
/// seconds of each other; keeping a read longer would only hold a copy of the type in memory.
const KEEP: Duration = Duration::from_secs(5);
/// How long a finished read of one resource stays joinable: the senders that share it saw the
/// same write within milliseconds of each other.
const KEEP_GET: Duration = Duration::from_secs(1);
/// A read that takes longer fails, and its senders try again with backoff: while a sender
/// waits on a read it sends no heartbeat, and its peer gives up after 10 s of silence.
const READ_TIMEOUT: Duration = Duration::from_secs(4);

type Outcome = Result<Arc<Vec<Stored>>, String>;

/// A read of one resource, begun once its revision `after` was committed.
struct GetRead {
    after: u64,
    outcome: Arc<OnceCell<Result<Option<Stored>, String>>>,
}

struct Read {
    /// The clock's value when this read was created; joinable by tickets below it.
    started: u64,
    outcome: Arc<OnceCell<Outcome>>,
}

/// Lists shared among the senders of one store.
pub struct SharedReads {
    store: Arc<dyn Store>,
    clock: AtomicU64,
    reads: Mutex<HashMap<Kind, Read>>,
    gets: Mutex<HashMap<Key, GetRead>>,
    /// False for a sender's own reader (a zone's one stream up): nothing to share, so nothing
    /// is kept.
    share: bool,
}

/// A sender's place in time: taken right after it subscribes to the store's feed.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl SharedReads {
    pub fn new(store: Arc<dyn Store>) -> Arc<SharedReads> {
        Self::with_sharing(store, true)
    }

    /// A reader for one sender alone: every read goes to the store.
    pub fn private(store: Arc<dyn Store>) -> Arc<SharedReads> {
        Self::with_sharing(store, false)
    }

    fn with_sharing(store: Arc<dyn Store>, share: bool) -> Arc<SharedReads> {
        Arc::new(SharedReads {
            store,
            clock: AtomicU64::new(0),
            reads: Mutex::new(HashMap::new()),
            gets: Mutex::new(HashMap::new()),
            share,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// How many tickets and shared reads were handed out: for tests that must know a sender
    /// has subscribed before they go on.
    #[doc(hidden)]
    pub fn clock(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// To be taken after subscribing to the store's feed, never before.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.clock.fetch_add(1, Ordering::SeqCst))
    }

    /// Every resource of `kind`, from a read that started after `ticket` was taken: one
    /// already under way or recently finished if there is one, a new one otherwise.
    pub async fn list(
        self: &Arc<Self>,
        kind: Kind,
        ticket: Ticket,
    ) -> Result<Arc<Vec<Stored>>, KdsError> {
        if !self.share {
            return Ok(Arc::new(self.store.list(&all_of(kind)).await?.items));
        }
        let (started, outcome) = self.joinable(kind, ticket);
        let store = self.store.clone();
        // Whoever gets here first runs the query; if that caller is dropped mid-way, the next
        // waiter runs it instead.
        let read = outcome.get_or_init(|| async move {
            metrics::counter!("atoll_kds_shared_reads_total", "type" => kind.name()).increment(1);
            store
                .list(&all_of(kind))
                .await
                .map(|page| Arc::new(page.items))
                .map_err(|err| err.to_string())
        });
        let result = bounded(read).await;
        if result.is_err() {
            // A failed read is not kept: the next caller tries the database again.
            self.forget(kind, started);
        }
        result.map_err(KdsError::SharedRead)
    }

    fn joinable(self: &Arc<Self>, kind: Kind, ticket: Ticket) -> (u64, Arc<OnceCell<Outcome>>) {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(read) = reads.get(&kind).filter(|r| r.started > ticket.0) {
            return (read.started, read.outcome.clone());
        }
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        let outcome = Arc::new(OnceCell::new());
        reads.insert(
            kind,
            Read {
                started,
                outcome: outcome.clone(),
            },
        );
        // Dropped after a while so that the copy does not outlive the senders that need it.
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP).await;
            if let Some(this) = this.upgrade() {
                this.forget(kind, started);
            }
        });
        (started, outcome)
    }

    /// The resource at `key` as of a read begun after its revision `revision` was committed
    /// (`revision` comes from a feed event, so it was): one under way or recently finished
    /// for the same or a newer revision, or a new one.
    pub async fn get(
        self: &Arc<Self>,
        key: &Key,
        revision: u64,
    ) -> Result<Option<Stored>, KdsError> {
        if !self.share {
            return Ok(self.store.get(key).await?);
        }
        let (after, outcome) = {
            let mut gets = self.gets.lock().unwrap_or_else(|e| e.into_inner());
            match gets.get(key).filter(|g| g.after >= revision) {
                Some(read) => (read.after, read.outcome.clone()),
                None => {
                    let outcome = Arc::new(OnceCell::new());
                    gets.insert(
                        key.clone(),
                        GetRead {
                            after: revision,
                            outcome: outcome.clone(),
                        },
                    );
                    self.forget_get_later(key.clone(), revision);
                    (revision, outcome)
                }
            }
        };
        let store = self.store.clone();
        let read = outcome.get_or_init(|| async move {
            metrics::counter!("atoll_kds_shared_gets_total").increment(1);
            store.get(key).await.map_err(|err| err.to_string())
        });
        let result = bounded(read).await;
        if result.is_err() {
            self.forget_get(key, after);
        }
        result.map_err(KdsError::SharedRead)
    }

    fn forget_get_later(self: &Arc<Self>, key: Key, after: u64) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_GET).await;
            if let Some(this) = this.upgrade() {
                this.forget_get(&key, after);
            }
        });
    }

    fn forget_get(&self, key: &Key, after: u64) {
        let mut gets = self.gets.lock().unwrap_or_else(|e| e.into_inner());
        if gets.get(key).is_some_and(|g| g.after == after) {
            gets.remove(key);
        }
    }

    fn forget(&self, kind: Kind, started: u64) {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if reads.get(&kind).is_some_and(|r| r.started == started) {
            reads.remove(&kind);
        }
    }
}

/// Every resource of `kind`.
fn all_of(kind: Kind) -> ListQuery {
    ListQuery {
        kind: Some(kind),
        ..Default::default()
    }
}

/// A shared read's outcome, or a failure once [`READ_TIMEOUT`] has passed.
async fn bounded<'a, T: Clone + 'a>(
    read: impl std::future::Future<Output = &'a Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(result) => result.clone(),
        Err(_) => Err(format!("no answer within {READ_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_model::{Meta, Resource, Spec};
    use atoll_store::{MemoryStore, Precondition};

    fn mesh(name: &str) -> Resource {
        Resource::new(
            Meta {
                name: name.into(),
                ..Default::default()
            },
            Spec::Mesh(Default::default()),
        )
    }

    #[tokio::test]
    async fn senders_that_subscribed_before_a_read_share_it() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store.put(mesh("a"), Precondition::Any).await.unwrap();
        let reads = SharedReads::new(store.clone());
        let first = reads.ticket();
        let second = reads.ticket();
        let one = reads.list(Kind::Mesh, first).await.unwrap();
        let two = reads.list(Kind::Mesh, second).await.unwrap();
        assert!(
            Arc::ptr_eq(&one, &two),
            "the second sender joins the first read"
        );
        assert_eq!(one.len(), 1);
    }

    #[tokio::test]
    async fn a_sender_never_joins_a_read_older_than_its_subscription() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let reads = SharedReads::new(store.clone());
        let early = reads.ticket();
        let before = reads.list(Kind::Mesh, early).await.unwrap();
        assert!(before.is_empty());
        // Written while the first read is still joinable, before the late sender subscribes.
        store.put(mesh("late"), Precondition::Any).await.unwrap();
        let late = reads.ticket();
        let after = reads.list(Kind::Mesh, late).await.unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(
            after.len(),
            1,
            "the late sender sees the write made before it subscribed"
        );
    }

    #[tokio::test]
    async fn a_resource_is_read_once_per_revision_and_again_for_a_newer_one() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let reads = SharedReads::new(store.clone());
        let first = store.put(mesh("a"), Precondition::Any).await.unwrap();
        let key = Key::of(&first.stored().resource);
        let revision = first.stored().version;
        let read = reads.get(&key, revision).await.unwrap();
        assert_eq!(read.map(|s| s.version), Some(revision));
        // Deleted behind the cache's back: a sender that saw only `revision` still shares the
        // read made for it (it will see the delete's event, with a newer revision, next)...
        let deleted = store.delete(&key, None).await.unwrap();
        assert!(reads.get(&key, revision).await.unwrap().is_some());
        // ...and one that saw the delete gets a read of its own.
        let newer = deleted.version.max(revision + 1);
        assert!(reads.get(&key, newer).await.unwrap().is_none());
        // A private reader shares nothing.
        let private = SharedReads::private(store.clone());
        store.put(mesh("a"), Precondition::Any).await.unwrap();
        assert!(private.get(&key, revision).await.unwrap().is_some());
    }
}
