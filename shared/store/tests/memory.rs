//! The conformance suite on the memory store, and its leadership.

use atoll_store::MemoryStore;

async fn setup() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

atoll_store::conformance_tests!(setup);

#[tokio::test]
async fn one_leader_per_name() {
    let store = MemoryStore::new();
    let clone = store.clone();
    let guard = store.try_lead("gc").expect("first leads");
    assert_eq!(guard.name(), "gc");
    assert!(clone.try_lead("gc").is_none(), "two leaders");
    let other = clone.try_lead("insights").expect("another name is free");
    drop(guard);
    let mut again = clone.try_lead("gc").expect("free after drop");
    assert!(again.still_leading().await);
    again.release().await;
    other.release().await;
    // Separate stores share nothing.
    assert!(MemoryStore::new().try_lead("gc").is_some());
}
