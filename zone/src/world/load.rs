//! Reading the whole world from the store, page by page.

use atoll_store::{ListQuery, Store, StoreError};

use super::{KINDS, World};

/// Reads every resource the world holds.
pub async fn load(store: &dyn Store) -> Result<World, StoreError> {
    let mut world = World::default();
    for kind in KINDS {
        let mut offset = 0;
        loop {
            let page = store
                .list(&ListQuery {
                    kind: Some(kind),
                    offset,
                    size: Some(1000),
                    ..Default::default()
                })
                .await?;
            for stored in &page.items {
                let meta = &stored.resource.meta;
                world.apply(
                    kind,
                    meta.mesh.as_deref(),
                    &meta.name,
                    Some(&stored.resource),
                );
            }
            match page.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
    }
    Ok(world)
}
