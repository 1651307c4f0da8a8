//! Cross-zone traffic, the control-plane side: the ingress's routing table computed from the
//! zone's Dataplanes (named by `crate::naming::sni`, which clients share), the ZoneIngress
//! resource that advertises them to other zones, and the stream that feeds a separate ingress
//! process. The SNI router itself is `crate::ingress`; it never sees resources.

pub mod advertise;
pub mod process;
pub mod registry;
pub mod stream;
pub mod table;
