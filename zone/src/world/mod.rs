//! The zone's world: its resources in memory, held once for the whole zone and kept current
//! by one follower of the store's change feed. The reconciler (each proxy's configuration)
//! and the cross-zone registry (the ingress and egress tables, the ZoneIngress) read this one
//! copy and are told what changed; neither reads the store's feed itself.

mod dep;
#[cfg(test)]
pub(crate) mod fixtures;
mod follow;
mod load;
mod mesh;
mod model;
mod shared;

pub use dep::Dep;
pub use follow::{follow, spawn};
pub use load::load;
pub use mesh::{DEFAULT_CERT_VALIDITY, mtls_backend};
pub use model::{Endpoint, ExternalService, KINDS, Named, RemoteIngress, World, services_of};
pub use shared::{Changes, Shared, Subscription};
