//! Names both sides of cross-zone traffic must agree on: the SNI of a mesh service (the client's
//! cluster and the ingress's table key) and the names of the zone's own ZoneIngress and
//! ZoneEgress. Kept apart so the configuration builder (`proxy`) and the cross-zone registry
//! (`crosszone`) share them without depending on each other.

pub mod sni;

/// The name of a zone's ZoneIngress in its own store (the global stores it as `<zone>.ingress`).
pub const INGRESS_NAME: &str = "ingress";
/// The name of a zone's ZoneEgress.
pub const EGRESS_NAME: &str = "egress";
