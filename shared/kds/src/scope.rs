//! Which resources a stream carries and may touch, per side and direction.
//!
//! The sending side decides what the peer gets (`export`); the receiving side decides which of
//! its own resources the stream manages (`owns`) and how an incoming resource is stored
//! (`import`). A zone can therefore never create, change or delete anything outside its own
//! scope on the global: the global derives names and labels from the zone's authenticated name.

use atoll_auth::names;
use std::collections::BTreeMap;

use atoll_model::labels::{ORIGIN, ZONE};
use atoll_model::types::SecretSpec;
use atoll_model::{Kind, Resource, Spec, with_policies};
use atoll_store::Key;

use crate::wire;

/// Label carrying a zone resource's own name on the global (where names get a zone prefix).
pub const DISPLAY_NAME: &str = "kuma.io/display-name";

/// Types written on the global and synced down, plus other zones' ingresses. Of the
/// GlobalSecrets, only what zones need to check tokens travels (see [`GlobalExport`]); of the
/// policies, only those written on the global.
pub const GLOBAL_TO_ZONE: &[Kind] = &with_policies::<9, 19>([
    Kind::Mesh,
    Kind::MeshGateway,
    Kind::MeshHttpRoute,
    Kind::MeshTcpRoute,
    Kind::MeshExternalService,
    Kind::HostnameGenerator,
    Kind::Secret,
    Kind::GlobalSecret,
    Kind::ZoneIngress,
]);

/// Types written in zones and synced up: a zone's proxies, their insights and the policies
/// written there.
pub const ZONE_TO_GLOBAL: &[Kind] = &with_policies::<4, 14>([
    Kind::Dataplane,
    Kind::DataplaneInsight,
    Kind::ZoneIngress,
    Kind::ZoneEgress,
]);

pub trait Scope: Send + Sync {
    fn kinds(&self) -> &[Kind];

    /// Sending side: the resource as the peer should get it, or `None` to keep it back.
    fn export(&self, resource: &Resource) -> Option<Resource> {
        Some(resource.clone())
    }

    /// Receiving side: whether a local resource is managed by this stream (replaced or deleted
    /// to match the peer).
    fn owns(&self, _resource: &Resource) -> bool {
        false
    }

    /// Receiving side: labels every resource this stream owns carries, so that the store can
    /// narrow the list of owned resources before [`Scope::owns`] decides. On a global with
    /// 100 zones, listing every zone's Dataplanes to find one zone's was 100 times the rows.
    fn owned_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Receiving side: the local form of an incoming resource, or why it is refused.
    fn import(&self, resource: Resource) -> Result<Resource, String> {
        Ok(resource)
    }

    /// Receiving side: the delta name the peer uses for a local resource this stream owns.
    fn peer_name(&self, local: &Resource) -> String {
        wire::delta_name(local)
    }

    /// Sending side: the delta name under which the resource at `key` was exported, for
    /// telling the peer it is gone.
    fn exported_name(&self, key: &Key) -> String {
        wire::key_delta_name(key)
    }
}

fn label<'a>(r: &'a Resource, key: &str) -> Option<&'a str> {
    r.meta.labels.get(key).map(String::as_str)
}

/// On the global, sending to zone `zone`: everything global-owned, and the ingresses of the
/// other zones (never the zone's own back to it); not the policies written in zones.
pub struct GlobalExport {
    pub zone: String,
}

impl Scope for GlobalExport {
    fn kinds(&self) -> &[Kind] {
        GLOBAL_TO_ZONE
    }

    fn export(&self, resource: &Resource) -> Option<Resource> {
        match resource.kind() {
            Kind::ZoneIngress if label(resource, ZONE) == Some(self.zone.as_str()) => None,
            // A policy written in a zone is in force there only; the global keeps a copy.
            kind if kind.is_policy() && label(resource, ORIGIN) == Some("zone") => None,
            Kind::GlobalSecret => export_global_secret(resource),
            _ => Some(resource.clone()),
        }
    }

    fn exported_name(&self, key: &Key) -> String {
        match key.kind {
            Kind::GlobalSecret => names::public_key_name(&key.name).unwrap_or(key.name.clone()),
            _ => wire::key_delta_name(key),
        }
    }
}

/// What a zone gets of a GlobalSecret: the public half of a zone or user token signing key
/// (under its `-public-key-` name) and the zone and user token revocation lists; nothing else.
/// Private keys, the admin token, the KDS CA and operators' own GlobalSecrets stay on the
/// global.
fn export_global_secret(resource: &Resource) -> Option<Resource> {
    let name = resource.name();
    if name == names::ZONE_REVOCATIONS || name == names::USER_REVOCATIONS {
        return Some(resource.clone());
    }
    let public_name = names::public_key_name(name)?;
    let Spec::GlobalSecret(secret) = &resource.spec else {
        return None;
    };
    let bytes = secret.bytes().ok()?;
    let public = atoll_auth::keys::PrivateKey::from_pem(&bytes)
        .and_then(|key| key.public().to_pem())
        .map_err(|err| tracing::warn!(secret = %name, %err, "a signing key that cannot be read is not synced"))
        .ok()?;
    let mut exported = resource.clone();
    exported.meta.name = public_name;
    exported.spec = Spec::GlobalSecret(SecretSpec::from_bytes(public.as_bytes()));
    Some(exported)
}

/// On the global, receiving from zone `zone`: stored as `<zone>.<name>` with the zone's labels.
pub struct GlobalImport {
    pub zone: String,
}

impl Scope for GlobalImport {
    fn kinds(&self) -> &[Kind] {
        ZONE_TO_GLOBAL
    }

    fn owns(&self, resource: &Resource) -> bool {
        label(resource, ORIGIN) == Some("zone") && label(resource, ZONE) == Some(self.zone.as_str())
    }

    fn owned_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (ORIGIN.to_string(), "zone".to_string()),
            (ZONE.to_string(), self.zone.clone()),
        ])
    }

    fn import(&self, mut resource: Resource) -> Result<Resource, String> {
        if !ZONE_TO_GLOBAL.contains(&resource.kind()) {
            return Err(format!("{} is not written by zones", resource.kind()));
        }
        let display = resource.meta.name.clone();
        resource
            .meta
            .labels
            .retain(|k, _| !k.starts_with("kuma.io/"));
        resource.meta.labels.insert(ORIGIN.into(), "zone".into());
        resource.meta.labels.insert(ZONE.into(), self.zone.clone());
        resource
            .meta
            .labels
            .insert(DISPLAY_NAME.into(), display.clone());
        resource.meta.name = format!("{}.{display}", self.zone);
        match &mut resource.spec {
            Spec::ZoneIngress(spec) => spec.zone = Some(self.zone.clone()),
            Spec::ZoneEgress(spec) => spec.zone = Some(self.zone.clone()),
            _ => {}
        }
        Ok(resource)
    }

    fn peer_name(&self, local: &Resource) -> String {
        let name = label(local, DISPLAY_NAME).unwrap_or(local.name());
        match local.mesh() {
            Some(mesh) => format!("{name}.{mesh}"),
            None => name.to_string(),
        }
    }
}

/// In zone `zone`, receiving from the global: synced copies are labelled `kuma.io/origin:
/// global` and are all this stream's to manage.
pub struct ZoneImport {
    pub zone: String,
}

impl Scope for ZoneImport {
    fn kinds(&self) -> &[Kind] {
        GLOBAL_TO_ZONE
    }

    fn owns(&self, resource: &Resource) -> bool {
        label(resource, ORIGIN) == Some("global")
            || (label(resource, ORIGIN) == Some("zone")
                && label(resource, ZONE) != Some(self.zone.as_str()))
    }

    fn import(&self, mut resource: Resource) -> Result<Resource, String> {
        if resource.kind() == Kind::ZoneIngress {
            // Another zone's ingress keeps its zone's labels; it must never be ours.
            if label(&resource, ZONE) == Some(self.zone.as_str())
                || label(&resource, ZONE).is_none()
            {
                return Err("a zone ingress from the global must belong to another zone".into());
            }
            return Ok(resource);
        }
        resource.meta.labels.insert(ORIGIN.into(), "global".into());
        Ok(resource)
    }
}

/// In zone `zone`, sending to the global: only what was created here.
pub struct ZoneExport {
    pub zone: String,
}

impl Scope for ZoneExport {
    fn kinds(&self) -> &[Kind] {
        ZONE_TO_GLOBAL
    }

    fn export(&self, resource: &Resource) -> Option<Resource> {
        match label(resource, ORIGIN) {
            None => Some(resource.clone()),
            Some("zone") if label(resource, ZONE) == Some(self.zone.as_str()) => {
                Some(resource.clone())
            }
            _ => None,
        }
    }
}
