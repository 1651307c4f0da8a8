//! MeshExternalService on the zone side: the hostnames HostnameGenerators give each service,
//! the VIP each gets from `KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR`, and the `status` that shows
//! them. Pure functions of the zone's resources: nothing here writes to the store, so a
//! restart or a resync recomputes exactly the same names and VIPs and writes nothing.

pub mod names;
pub mod status;
pub mod template;
pub mod vip;
