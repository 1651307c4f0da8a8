//! The conformance suite every [`Store`] passes: one async function per behaviour, each taking
//! a fresh, empty store. [`conformance_tests!`](crate::conformance_tests) turns them into
//! `#[tokio::test]`s for one implementation, so both stores always run the same cases.
//!
//! Waits are bounded by deadlines (a missing event fails the test after [`EVENT_DEADLINE`]);
//! nothing sleeps to let something happen.

use std::collections::BTreeMap;
use std::time::Duration;

use atoll_model::types::{SecretSpec, ZoneSpec};
use atoll_model::{Kind, Meta, Resource, Spec};
use tokio::sync::broadcast;

use crate::{Event, Key, ListQuery, Precondition, PutOutcome, Store, StoreError, Stored};

/// How long a test waits for an event that must come.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Declares one `#[tokio::test]` per conformance case. `$setup` is an async fn returning
/// `(store, guard)`; the guard (e.g. a temporary database) lives until the test ends.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            crud,
            get_missing_is_none,
            delete_missing_is_not_found,
            store_sets_timestamps,
            create_only_refuses_existing,
            version_preconditions,
            concurrent_writers_one_wins,
            identical_put_is_unchanged,
            trace_context_is_kept_with_the_change,
            list_pages,
            list_filters,
            watch_in_commit_order,
        );
    };
    (@cases $setup:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $setup().await;
                $crate::conformance::$case(&store).await;
            }
        )+
    };
}

/// A global-scoped resource with labels.
pub fn zone(name: &str, labels: &[(&str, &str)], enabled: bool) -> Resource {
    let meta = Meta {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Meta::default()
    };
    Resource::new(
        meta,
        Spec::Zone(ZoneSpec {
            enabled: Some(enabled),
        }),
    )
}

/// A mesh-scoped resource.
pub fn secret(mesh: &str, name: &str, data: &[u8]) -> Resource {
    let meta = Meta {
        name: name.to_string(),
        mesh: Some(mesh.to_string()),
        ..Meta::default()
    };
    Resource::new(meta, Spec::Secret(SecretSpec::from_bytes(data)))
}

/// A global-scoped resource of another type.
pub fn mesh(name: &str) -> Resource {
    let meta = Meta {
        name: name.to_string(),
        ..Meta::default()
    };
    Resource::new(meta, Spec::Mesh(Default::default()))
}

async fn put(store: &dyn Store, resource: Resource, expect: Precondition) -> PutOutcome {
    let name = resource.name().to_string();
    match store.put(resource, expect).await {
        Ok(outcome) => outcome,
        Err(err) => panic!("put {name}: {err}"),
    }
}

async fn create(store: &dyn Store, resource: Resource) -> Stored {
    match put(store, resource, Precondition::Absent).await {
        PutOutcome::Created(stored) => stored,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn get(store: &dyn Store, key: &Key) -> Option<Stored> {
    match store.get(key).await {
        Ok(found) => found,
        Err(err) => panic!("get {key:?}: {err}"),
    }
}

/// The next event, failing the test if none comes before the deadline.
pub async fn next_event(events: &mut broadcast::Receiver<Event>) -> Event {
    match tokio::time::timeout(EVENT_DEADLINE, events.recv()).await {
        Ok(Ok(event)) => event,
        Ok(Err(err)) => panic!("change feed failed: {err}"),
        Err(_) => panic!("no event within {EVENT_DEADLINE:?}"),
    }
}

pub async fn crud(store: &dyn Store) {
    let key = Key::new(Kind::Zone, None, "east");
    let created = create(store, zone("east", &[("env", "prod")], true)).await;
    assert!(created.version > 0);
    assert_eq!(created.resource.meta.labels["env"], "prod");
    assert_eq!(get(store, &key).await.as_ref(), Some(&created));

    let updated = match put(
        store,
        zone("east", &[("env", "dev")], false),
        Precondition::Any,
    )
    .await
    {
        PutOutcome::Updated(stored) => stored,
        other => panic!("expected Updated, got {other:?}"),
    };
    assert!(updated.version > created.version);
    assert_eq!(updated.resource.meta.labels["env"], "dev");
    assert_eq!(
        updated.resource.spec,
        Spec::Zone(ZoneSpec {
            enabled: Some(false)
        })
    );
    assert_eq!(get(store, &key).await.as_ref(), Some(&updated));

    let deleted = store.delete(&key, None).await.expect("delete");
    assert_eq!(deleted, updated);
    assert_eq!(get(store, &key).await, None);

    // Mesh-scoped resources are keyed by mesh too.
    let in_default = create(store, secret("default", "tls", b"one")).await;
    let in_other = create(store, secret("other", "tls", b"two")).await;
    let key_default = Key::new(Kind::Secret, Some("default"), "tls");
    let key_other = Key::new(Kind::Secret, Some("other"), "tls");
    assert_eq!(get(store, &key_default).await, Some(in_default));
    assert_eq!(get(store, &key_other).await, Some(in_other));
}

pub async fn get_missing_is_none(store: &dyn Store) {
    assert_eq!(
        get(store, &Key::new(Kind::Zone, None, "nowhere")).await,
        None
    );
    assert_eq!(
        get(store, &Key::new(Kind::Secret, Some("default"), "nothing")).await,
        None
    );
    store.ping().await.expect("ping");
}

pub async fn delete_missing_is_not_found(store: &dyn Store) {
    let key = Key::new(Kind::Zone, None, "nowhere");
    match store.delete(&key, None).await {
        Err(StoreError::NotFound { kind, name }) => {
            assert_eq!((kind, name.as_str()), (Kind::Zone, "nowhere"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match store.delete(&key, Some(1)).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn store_sets_timestamps(store: &dyn Store) {
    let mut resource = zone("west", &[], true);
    resource.meta.creation_time = Some("1999-01-01T00:00:00Z".to_string());
    resource.meta.modification_time = Some("1999-01-01T00:00:00Z".to_string());
    let before = chrono::Utc::now() - chrono::Duration::minutes(5);
    let created = create(store, resource).await;
    let meta = &created.resource.meta;
    let creation = parse_time(meta.creation_time.as_deref());
    assert_eq!(meta.creation_time, meta.modification_time);
    assert!(
        creation > before,
        "creation time {creation} is not the store's clock"
    );

    let mut changed = zone("west", &[], false);
    changed.meta.creation_time = Some("1999-01-01T00:00:00Z".to_string());
    let updated = put(store, changed, Precondition::Any).await;
    let meta = &updated.stored().resource.meta;
    assert_eq!(meta.creation_time, created.resource.meta.creation_time);
    assert!(parse_time(meta.modification_time.as_deref()) >= creation);
}

/// Parses an RFC 3339 UTC timestamp as the stores write them, e.g. `2026-11-22T21:55:52.123456Z`.
fn parse_time(text: Option<&str>) -> chrono::DateTime<chrono::Utc> {
    let text = text.expect("the store sets timestamps");
    assert!(text.ends_with('Z'), "{text} is not UTC");
    assert_eq!(text.len(), "2026-11-22T21:55:52.123456Z".len(), "{text}");
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.to_utc(),
        Err(err) => panic!("{text} is not RFC 3339: {err}"),
    }
}

pub async fn create_only_refuses_existing(store: &dyn Store) {
    let first = create(store, zone("north", &[], true)).await;
    match store
        .put(zone("north", &[], false), Precondition::Absent)
        .await
    {
        Err(StoreError::AlreadyExists { kind, name }) => {
            assert_eq!((kind, name.as_str()), (Kind::Zone, "north"));
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // Even an identical document is refused: the caller asked to create.
    assert!(matches!(
        store
            .put(zone("north", &[], true), Precondition::Absent)
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        get(store, &Key::new(Kind::Zone, None, "north")).await,
        Some(first)
    );
}

pub async fn version_preconditions(store: &dyn Store) {
    let key = Key::new(Kind::Zone, None, "south");
    match store
        .put(zone("south", &[], true), Precondition::Version(1))
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    let v1 = create(store, zone("south", &[], true)).await.version;
    let v2 = put(store, zone("south", &[], false), Precondition::Version(v1))
        .await
        .stored()
        .version;
    assert!(v2 > v1);
    match store
        .put(zone("south", &[], true), Precondition::Version(v1))
        .await
    {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (v1, v2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.delete(&key, Some(v1)).await {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (v1, v2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(get(store, &key).await.is_some(), "a refused delete deleted");
    let deleted = store.delete(&key, Some(v2)).await.expect("delete at v2");
    assert_eq!(deleted.version, v2);
}

pub async fn concurrent_writers_one_wins(store: &dyn Store) {
    let v = create(store, zone("contested", &[], true)).await.version;
    let first = zone("contested", &[("writer", "first")], true);
    let second = zone("contested", &[("writer", "second")], true);
    // Both hold version v and write at the same time: exactly one may win.
    let (a, b) = tokio::join!(
        store.put(first, Precondition::Version(v)),
        store.put(second, Precondition::Version(v)),
    );
    let (winner, loser) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (a, b) => panic!("expected one success and one conflict, got {a:?} and {b:?}"),
    };
    let PutOutcome::Updated(winner) = winner else {
        panic!("expected Updated, got {winner:?}");
    };
    match loser {
        StoreError::Conflict {
            expected, actual, ..
        } => assert_eq!((expected, actual), (v, winner.version)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let stored = get(store, &Key::new(Kind::Zone, None, "contested")).await;
    assert_eq!(stored, Some(winner));
}

pub async fn identical_put_is_unchanged(store: &dyn Store) {
    let mut events = store.watch();
    let created = create(store, zone("steady", &[("env", "prod")], true)).await;
    assert_eq!(
        next_event(&mut events).await,
        Event::Put {
            key: Key::new(Kind::Zone, None, "steady"),
            version: created.version
        }
    );
    for expect in [Precondition::Any, Precondition::Version(created.version)] {
        match put(store, zone("steady", &[("env", "prod")], true), expect).await {
            PutOutcome::Unchanged(stored) => assert_eq!(stored, created),
            other => panic!("expected Unchanged, got {other:?}"),
        }
    }
    // The next event is the next real write's: the unchanged puts sent none.
    let other = create(store, zone("marker", &[], true)).await;
    assert_eq!(
        next_event(&mut events).await,
        Event::Put {
            key: Key::new(Kind::Zone, None, "marker"),
            version: other.version
        }
    );
}

/// Each write keeps the trace of the operation that made it, and only the last write's: a
/// change made outside any trace clears it. A trace alone is not a change.
pub async fn trace_context_is_kept_with_the_change(store: &dyn Store) {
    let key = Key::new(Kind::Zone, None, "traced");
    let traced = |trace: Option<&str>, enabled: bool| {
        let mut r = zone("traced", &[], enabled);
        r.meta.trace = trace.map(str::to_string);
        r
    };
    let first = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    create(store, traced(Some(first), true)).await;
    let stored = get(store, &key).await.expect("stored");
    assert_eq!(stored.resource.meta.trace.as_deref(), Some(first));
    let other = "00-11111111111111111111111111111111-2222222222222222-01";
    assert!(matches!(
        put(store, traced(Some(other), true), Precondition::Any).await,
        PutOutcome::Unchanged(_)
    ));
    let after = get(store, &key).await.expect("stored");
    assert_eq!(after.resource.meta.trace.as_deref(), Some(first));
    put(store, traced(None, false), Precondition::Any).await;
    let untraced = get(store, &key).await.expect("stored");
    assert_eq!(untraced.resource.meta.trace, None);
}

/// Eight resources of three types, in the store's order (type, mesh, name).
async fn fill(store: &dyn Store) -> Vec<Key> {
    create(store, zone("zone-b", &[("env", "dev")], true)).await;
    create(store, zone("zone-a", &[("env", "prod")], true)).await;
    create(
        store,
        zone("zone-c", &[("env", "prod"), ("team", "x")], true),
    )
    .await;
    create(store, secret("other", "s1", b"3")).await;
    create(store, secret("default", "s2", b"2")).await;
    create(store, secret("default", "s1", b"1")).await;
    create(store, mesh("other")).await;
    create(store, mesh("default")).await;
    vec![
        Key::new(Kind::Mesh, None, "default"),
        Key::new(Kind::Mesh, None, "other"),
        Key::new(Kind::Secret, Some("default"), "s1"),
        Key::new(Kind::Secret, Some("default"), "s2"),
        Key::new(Kind::Secret, Some("other"), "s1"),
        Key::new(Kind::Zone, None, "zone-a"),
        Key::new(Kind::Zone, None, "zone-b"),
        Key::new(Kind::Zone, None, "zone-c"),
    ]
}

fn keys(items: &[Stored]) -> Vec<Key> {
    items.iter().map(|s| Key::of(&s.resource)).collect()
}

async fn list(store: &dyn Store, query: ListQuery) -> crate::Page {
    match store.list(&query).await {
        Ok(page) => page,
        Err(err) => panic!("list {query:?}: {err}"),
    }
}

pub async fn list_pages(store: &dyn Store) {
    let empty = list(store, ListQuery::default()).await;
    assert_eq!(
        (empty.items.len(), empty.total, empty.next_offset),
        (0, 0, None)
    );

    let all_keys = fill(store).await;
    let all = list(store, ListQuery::default()).await;
    assert_eq!(keys(&all.items), all_keys);
    assert_eq!((all.total, all.next_offset), (8, None));

    let mut paged = Vec::new();
    let mut offset = Some(0);
    let mut pages = 0;
    while let Some(at) = offset {
        let page = list(
            store,
            ListQuery {
                offset: at,
                size: Some(3),
                ..ListQuery::default()
            },
        )
        .await;
        assert_eq!(page.total, 8);
        assert!(page.items.len() <= 3);
        paged.extend(page.items);
        offset = page.next_offset;
        pages += 1;
        assert!(pages <= 3, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, all.items);

    let last = list(
        store,
        ListQuery {
            offset: 6,
            size: Some(3),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!((last.items.len(), last.next_offset), (2, None));
    let beyond = list(
        store,
        ListQuery {
            offset: 100,
            size: Some(3),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(
        (beyond.items.len(), beyond.total, beyond.next_offset),
        (0, 8, None)
    );
}

pub async fn list_filters(store: &dyn Store) {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    fill(store).await;

    let secrets = list(
        store,
        ListQuery {
            kind: Some(Kind::Secret),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(secrets.total, 3);

    let in_default = ListQuery {
        kind: Some(Kind::Secret),
        mesh: Some("default".to_string()),
        ..ListQuery::default()
    };
    let page = list(store, in_default).await;
    assert_eq!(
        keys(&page.items),
        [
            Key::new(Kind::Secret, Some("default"), "s1"),
            Key::new(Kind::Secret, Some("default"), "s2")
        ]
    );

    // A mesh filter leaves out global-scoped resources, even one named like the mesh.
    let in_other = list(
        store,
        ListQuery {
            mesh: Some("other".to_string()),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(
        keys(&in_other.items),
        [Key::new(Kind::Secret, Some("other"), "s1")]
    );

    let prod = list(
        store,
        ListQuery {
            labels: labels(&[("env", "prod")]),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(
        keys(&prod.items),
        [
            Key::new(Kind::Zone, None, "zone-a"),
            Key::new(Kind::Zone, None, "zone-c")
        ]
    );
    assert_eq!(prod.total, 2);

    // Every label must match.
    let prod_x = ListQuery {
        labels: labels(&[("env", "prod"), ("team", "x")]),
        ..ListQuery::default()
    };
    assert_eq!(
        keys(&list(store, prod_x).await.items),
        [Key::new(Kind::Zone, None, "zone-c")]
    );
    let nobody = ListQuery {
        labels: labels(&[("env", "qa")]),
        ..ListQuery::default()
    };
    assert_eq!(list(store, nobody).await.total, 0);

    let paged_prod = ListQuery {
        labels: labels(&[("env", "prod")]),
        size: Some(1),
        ..ListQuery::default()
    };
    let first = list(store, paged_prod).await;
    assert_eq!(
        (first.items.len(), first.total, first.next_offset),
        (1, 2, Some(1))
    );
}

pub async fn watch_in_commit_order(store: &dyn Store) {
    let mut events = store.watch();
    let key = Key::new(Kind::Secret, Some("default"), "watched");
    let created = create(store, secret("default", "watched", b"v1")).await;
    let updated = put(
        store,
        secret("default", "watched", b"v2"),
        Precondition::Any,
    )
    .await;
    store.delete(&key, None).await.expect("delete");

    assert_eq!(
        next_event(&mut events).await,
        Event::Put {
            key: key.clone(),
            version: created.version
        }
    );
    assert_eq!(
        next_event(&mut events).await,
        Event::Put {
            key: key.clone(),
            version: updated.stored().version
        }
    );
    match next_event(&mut events).await {
        Event::Deleted {
            key: deleted,
            version,
        } => {
            assert_eq!(deleted, key);
            assert!(
                version > updated.stored().version,
                "delete revision {version} is not newer"
            );
        }
        other => panic!("expected Deleted, got {other:?}"),
    }
}
