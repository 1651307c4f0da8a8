//! Reading a data source (`secret`, `inline`, `inlineString`, `file`) on the zone control
//! plane: a gateway's certificates and a `provided` mesh CA come this way. A `secret` is read
//! from the mesh Secrets synced from the global and recorded as a dependency, so changing it
//! recomputes the proxies that read it; a `file` is read on the zone control plane's host.

use std::collections::BTreeSet;

use atoll_model::types::DataSource;

use super::deps::Dep;
use crate::world::World;

/// The bytes `source` holds in `mesh`, or why they cannot be read.
pub fn read(
    world: &World,
    mesh: &str,
    source: &DataSource,
    deps: &mut BTreeSet<Dep>,
) -> Result<Vec<u8>, String> {
    if let Some(name) = &source.secret {
        deps.insert(Dep::Secret(mesh.to_string(), name.clone()));
        world
            .secrets
            .get(&(mesh.to_string(), name.clone()))
            .cloned()
            .ok_or_else(|| format!("secret {name:?} not found in mesh {mesh}"))
    } else if let Some(decoded) = source.inline_bytes() {
        decoded.map_err(|_| "inline is not base64".to_string())
    } else if let Some(text) = &source.inline_string {
        Ok(text.clone().into_bytes())
    } else if let Some(path) = &source.file {
        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))
    } else {
        Err("no usable data source".into())
    }
}

/// [`read`] as PEM text.
pub fn read_pem(
    world: &World,
    mesh: &str,
    source: &DataSource,
    deps: &mut BTreeSet<Dep>,
) -> Result<String, String> {
    String::from_utf8(read(world, mesh, source, deps)?).map_err(|_| "not PEM text".to_string())
}
