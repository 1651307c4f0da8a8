//! What a Mesh says about mesh mTLS, read by the configuration builder (certificates) and by
//! the cross-zone tables (only meshes with mTLS on are routed between zones).

use std::time::Duration;

use atoll_model::types::MeshSpec;

/// Default lifetime of a workload certificate (Kuma's default `dpCert.rotation.expiration`).
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The mesh's enabled CA backend, when mTLS is on: (backend name, certificate validity).
pub fn mtls_backend(mesh: &MeshSpec) -> Option<(String, Duration)> {
    let mtls = mesh.mtls.as_ref()?;
    if mtls.enabled_backend.is_empty() {
        return None;
    }
    let backend = mtls
        .backends
        .iter()
        .find(|b| b.name == mtls.enabled_backend)?;
    let validity = backend
        .dp_cert
        .as_ref()
        .and_then(|c| c.rotation.as_ref())
        .and_then(|r| r.expiration.as_deref())
        .and_then(|e| atoll_model::duration::parse(e).ok())
        .unwrap_or(DEFAULT_CERT_VALIDITY);
    Some((backend.name.clone(), validity))
}
