//! The one copy of the world and the readers told when it changes.
//!
//! The world is held once, behind a lock: the follower writes one resource at a time, readers
//! hold it while they compute one proxy's configuration or one table, so neither waits long
//! and nothing is copied per change or per reader. Each reader has an inbox where the changes
//! since it last looked accumulate (a burst merges into one set), with a wake-up beside it:
//! a slow reader never loses a change and never makes the follower wait.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};

use atoll_model::Kind;
use tokio::sync::Notify;

use super::{Dep, World};

/// What changed in the world since a reader last looked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// The world was read again whole: anything may have changed.
    pub reloaded: bool,
    /// The kinds of the resources that changed.
    pub kinds: BTreeSet<Kind>,
    /// What depended on the old or new values (only for readers that asked for it).
    pub deps: BTreeSet<Dep>,
    /// The `traceparent` of the first change that carried one, and how many did.
    pub trace: Option<String>,
    pub traced: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.reloaded && self.kinds.is_empty() && self.deps.is_empty() && self.traced == 0
    }

    /// Whether a resource of one of `kinds` changed, or the whole world was read again.
    pub fn touches(&self, kinds: &[Kind]) -> bool {
        self.reloaded || kinds.iter().any(|k| self.kinds.contains(k))
    }

    fn merge(&mut self, other: &Changes, with_deps: bool) {
        self.reloaded |= other.reloaded;
        self.kinds.extend(other.kinds.iter().copied());
        if with_deps {
            self.deps.extend(other.deps.iter().cloned());
        }
        if self.trace.is_none() {
            self.trace.clone_from(&other.trace);
        }
        self.traced += other.traced;
    }
}

struct Inbox {
    pending: Mutex<Changes>,
    with_deps: bool,
    ready: Notify,
}

/// A reader's feed of changes.
pub struct Subscription {
    inbox: Arc<Inbox>,
}

impl Subscription {
    /// Waits for changes, then takes every one that accumulated. Cancel-safe: changes stay in
    /// the inbox until returned.
    pub async fn next(&mut self) -> Changes {
        loop {
            let taken = std::mem::take(&mut *lock(&self.inbox.pending));
            if !taken.is_empty() {
                return taken;
            }
            self.inbox.ready.notified().await;
        }
    }
}

struct Inner {
    world: RwLock<World>,
    /// Whether the world was read from the store at least once.
    loaded: AtomicBool,
    inboxes: Mutex<Vec<Weak<Inbox>>>,
}

/// The zone's world, shared by the follower that writes it and the readers. Clones share it.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the value whole (a merge or a take), so a panic elsewhere
    // cannot have left it half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// An empty world for `zone` (not loaded yet); `vip_cidr` is where MeshExternalService
    /// VIPs come from.
    pub fn new(zone: &str, vip_cidr: crate::external::vip::Cidr) -> Self {
        let mut world = World::default();
        world.local_zone = zone.to_string();
        world.vip_cidr = vip_cidr;
        Shared {
            inner: Arc::new(Inner {
                world: RwLock::new(world),
                loaded: AtomicBool::new(false),
                inboxes: Mutex::default(),
            }),
        }
    }

    /// The world as it is now. Hold it for one computation, never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        // The follower replaces whole resources under the lock: a panic elsewhere cannot have
        // left one half-written.
        self.inner
            .world
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the world was read from the store at least once (until then it is empty).
    pub fn loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// Changes as the kinds they touched. The first call of `next` returns at once (as if the
    /// world had just been read), so a reader starts from the world as it is.
    pub fn subscribe(&self) -> Subscription {
        self.subscription(false)
    }

    /// Changes with what depended on them, for the reconciler's dependency index.
    pub fn subscribe_with_deps(&self) -> Subscription {
        self.subscription(true)
    }

    fn subscription(&self, with_deps: bool) -> Subscription {
        let inbox = Arc::new(Inbox {
            pending: Mutex::new(Changes {
                reloaded: true,
                ..Default::default()
            }),
            with_deps,
            ready: Notify::new(),
        });
        let mut inboxes = lock(&self.inner.inboxes);
        // Readers that went away leave a dead entry: drop those here rather than on every change.
        inboxes.retain(|i| i.strong_count() > 0);
        inboxes.push(Arc::downgrade(&inbox));
        Subscription { inbox }
    }

    /// How many readers follow the world's changes.
    pub fn readers(&self) -> usize {
        lock(&self.inner.inboxes)
            .iter()
            .filter(|i| i.strong_count() > 0)
            .count()
    }

    /// Changes the world with `change`; only the follower calls this.
    pub(super) fn write<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        let mut world = self
            .inner
            .world
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut world)
    }

    /// Replaces the whole world with one just read (keeping the zone's own settings).
    pub(super) fn replace(&self, mut fresh: World) {
        let old = self.write(|world| {
            fresh.local_zone.clone_from(&world.local_zone);
            fresh.vip_cidr = world.vip_cidr;
            std::mem::replace(world, fresh)
        });
        self.inner.loaded.store(true, Ordering::Release);
        // Freeing a large world takes a while: not while readers wait for the lock.
        drop(old);
    }

    /// Tells every reader about `changes`.
    pub(super) fn publish(&self, changes: &Changes) {
        if changes.is_empty() {
            return;
        }
        for inbox in lock(&self.inner.inboxes).iter().filter_map(Weak::upgrade) {
            lock(&inbox.pending).merge(changes, inbox.with_deps);
            inbox.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn changes(kind: Kind, dep: Dep, trace: Option<&str>) -> Changes {
        Changes {
            kinds: BTreeSet::from([kind]),
            deps: BTreeSet::from([dep]),
            trace: trace.map(str::to_string),
            traced: usize::from(trace.is_some()),
            ..Default::default()
        }
    }

    /// A reader that was busy gets every change since it last looked, merged into one set;
    /// one that did not ask for deps gets the kinds only; a reader that went away is dropped.
    #[tokio::test]
    async fn changes_accumulate_until_a_reader_takes_them() {
        let world = Shared::new("zone-1", Default::default());
        let mut reconciler = world.subscribe_with_deps();
        let mut registry = world.subscribe();
        // The first look starts from the world as it is.
        assert!(reconciler.next().await.reloaded);
        assert!(registry.next().await.reloaded);
        // Nothing pending: the first poll does not complete.
        assert!(
            tokio::time::timeout(Duration::ZERO, registry.next())
                .await
                .is_err()
        );
        let web = Dep::Service("default".into(), "web".into());
        world.publish(&changes(Kind::Dataplane, web.clone(), None));
        world.publish(&changes(
            Kind::Mesh,
            Dep::Mesh("default".into()),
            Some("00-t-s-01"),
        ));
        let got = reconciler.next().await;
        assert!(!got.reloaded);
        assert_eq!(got.kinds, BTreeSet::from([Kind::Dataplane, Kind::Mesh]));
        assert_eq!(got.deps, BTreeSet::from([web, Dep::Mesh("default".into())]));
        assert_eq!((got.trace.as_deref(), got.traced), (Some("00-t-s-01"), 1));
        let got = registry.next().await;
        assert!(got.deps.is_empty(), "{got:?}");
        assert!(got.touches(&[Kind::Mesh]) && !got.touches(&[Kind::Secret]));
        assert_eq!(world.readers(), 2);
        drop(reconciler);
        assert_eq!(world.readers(), 1);
    }
}
