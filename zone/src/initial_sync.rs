//! The hold on a fresh zone's upward sync. A zone whose store starts empty (the memory store
//! after a restart) must not report "I have no proxies" to the global before its running data
//! planes have registered again, or the global would delete them and every other zone would
//! lose their endpoints. The zone's own resources go up once the global's full sets are
//! applied, every proxy whose Envoy came back with configuration has registered again, and
//! registrations have gone quiet. The same hold keeps those Envoys on the configuration they
//! have (`dp_server::ads`): one computed while a proxy they call is still unregistered would
//! take its endpoints away.

use std::sync::Arc;
use std::time::Duration;

use atoll_kds::SyncObserver;
use atoll_kds::sender::Hold;
use atoll_store::Store;
use tokio::sync::watch;

/// How long a zone on the memory store waits, once the global's full sets have been applied,
/// for its proxies to stop registering before it sends the global its own resources: its
/// running data planes can only register again once their mesh is back, and retry with a
/// backoff of at most 5 s. Until then the global keeps what the zone last reported.
pub const REGISTRATION_GRACE: Duration = Duration::from_secs(6);
/// The hold ends after this long in any case (a global that never completes a sync).
const MAX_HOLD: Duration = Duration::from_secs(120);
/// How long, once the global's state is applied, the hold waits for proxies that came back
/// to register again: three of `atoll-dp`'s 10 s re-registration periods. One that has not by
/// then (its workload deleted meanwhile, its atoll-dp stuck) must not hold the zone longer.
const EXPECTED_GRACE: Duration = Duration::from_secs(30);

/// Holds the zone's upward sync, for a zone whose store starts empty, until the global's full
/// sets of every type have been applied and then no proxy has registered (or changed) for
/// [`REGISTRATION_GRACE`]: a quiet period rather than a fixed delay, so a zone slowed down by
/// a large sync still waits for every proxy that is coming back.
pub struct InitialSync {
    pending: std::sync::Mutex<std::collections::BTreeSet<atoll_model::Kind>>,
    applied: watch::Sender<bool>,
    /// Dataplanes (mesh, name) whose Envoys reconnected with configuration: they ran before
    /// the restart, and the hold lasts until they are registered again.
    expected: watch::Sender<std::collections::BTreeSet<(String, String)>>,
}

impl InitialSync {
    pub fn new(store: Arc<dyn Store>) -> (Arc<InitialSync>, Hold) {
        let (release, hold) = watch::channel(None);
        let (applied, mut applied_rx) = watch::channel(false);
        let pending = atoll_kds::scope::GLOBAL_TO_ZONE.iter().copied().collect();
        let (expected, mut expected_rx) = watch::channel(std::collections::BTreeSet::new());
        let sync = Arc::new(InitialSync {
            pending: std::sync::Mutex::new(pending),
            applied,
            expected,
        });
        let mut feed = store.watch();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let deadline = started + MAX_HOLD;
            // The watch's borrow must not live across the awaits below (it is not Send).
            let applied = matches!(
                tokio::time::timeout_at(deadline, applied_rx.wait_for(|a| *a)).await,
                Ok(Ok(_))
            );
            if applied {
                let expect_until = tokio::time::Instant::now() + EXPECTED_GRACE;
                loop {
                    let registration = async {
                        loop {
                            match feed.recv().await {
                                Ok(atoll_store::Event::Put { key, .. })
                                | Ok(atoll_store::Event::Deleted { key, .. })
                                    if matches!(
                                        key.kind,
                                        atoll_model::Kind::Dataplane
                                            | atoll_model::Kind::ZoneIngress
                                            | atoll_model::Kind::ZoneEgress
                                    ) =>
                                {
                                    return true;
                                }
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                    return false;
                                }
                                _ => {}
                            }
                        }
                    };
                    let quiet_until =
                        (tokio::time::Instant::now() + REGISTRATION_GRACE).min(deadline);
                    let more_expected = async {
                        if expected_rx.changed().await.is_err() {
                            // Nobody can add expectations any more; only registrations wake.
                            std::future::pending::<()>().await;
                        }
                    };
                    let woken = tokio::select! {
                        woken = tokio::time::timeout_at(quiet_until, registration) => woken,
                        // A proxy that came back: check again whether it is registered.
                        () = more_expected => Ok(true),
                    };
                    match woken {
                        Ok(true) if tokio::time::Instant::now() < deadline => continue,
                        Ok(false) => break,
                        _ if tokio::time::Instant::now() >= deadline => break,
                        // Quiet: over, unless a proxy that came back is still unregistered.
                        _ => {
                            let expected = expected_rx.borrow_and_update().clone();
                            let missing = unregistered(store.as_ref(), &expected).await;
                            if missing == 0 {
                                break;
                            }
                            if tokio::time::Instant::now() >= expect_until {
                                tracing::warn!(
                                    missing,
                                    "proxies that came back have not registered again in time; releasing the hold without them"
                                );
                                break;
                            }
                            tracing::info!(
                                missing,
                                "proxies that came back have not registered again yet; holding"
                            );
                        }
                    }
                }
                tracing::info!(waited = ?started.elapsed(), "the global's state is applied and proxies have registered again: reporting this zone's resources");
            } else {
                tracing::warn!(
                    "no complete sync from the global yet: reporting this zone's resources anyway"
                );
            }
            let _ = release.send(Some(tokio::time::Instant::now()));
        });
        (sync, Hold(hold))
    }
}

impl InitialSync {
    /// The Envoy of Dataplane `name` in `mesh` reconnected with configuration it already had:
    /// the hold waits for that Dataplane to be registered again.
    pub fn expect(&self, mesh: &str, name: &str) {
        self.expected
            .send_if_modified(|expected| expected.insert((mesh.to_string(), name.to_string())));
    }
}

/// How many of `expected` have no Dataplane in `store` (a store that cannot be read counts
/// them all as missing; the hold's deadline still ends the wait).
async fn unregistered(
    store: &dyn Store,
    expected: &std::collections::BTreeSet<(String, String)>,
) -> usize {
    let mut missing = 0;
    for (mesh, name) in expected {
        let key = atoll_store::Key::new(atoll_model::Kind::Dataplane, Some(mesh), name);
        if !matches!(store.get(&key).await, Ok(Some(_))) {
            missing += 1;
        }
    }
    missing
}

impl SyncObserver for InitialSync {
    fn synced(&self, kind: atoll_model::Kind, _changes: usize) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.remove(&kind) && pending.is_empty() {
            let _ = self.applied.send(true);
        }
    }
}
