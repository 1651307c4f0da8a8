//! The MeshExternalService `status` the zone's API shows: the reconciler publishes the names
//! it computed, and the API reads the latest ones as it answers. Computed on read, never
//! stored, so a re-sync from the global cannot overwrite it and nothing is written for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use atoll_api::rest::StatusFn;
use atoll_model::Spec;
use tokio::sync::watch;

use super::names::ServiceNames;
use crate::world::Named;

pub type Names = Arc<BTreeMap<Named, ServiceNames>>;

/// Where the reconciler publishes names.
pub type Publisher = watch::Sender<Names>;

/// A publisher and the API's status function reading from it.
pub fn board() -> (Publisher, StatusFn) {
    let (tx, rx) = watch::channel(Names::default());
    let status: StatusFn = Arc::new(move |resource| {
        if !matches!(resource.spec, Spec::MeshExternalService(_)) {
            return None;
        }
        let key = (
            resource.meta.mesh.clone().unwrap_or_default(),
            resource.meta.name.clone(),
        );
        rx.borrow().get(&key).map(ServiceNames::status)
    });
    (tx, status)
}
