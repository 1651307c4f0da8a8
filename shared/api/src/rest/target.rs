//! From a request's path to what it addresses: which type, where, and whether it may be written
//! on this side. Who may do it is [`crate::auth`]'s to decide.

use atoll_model::{Kind, Owner, Scope};

use super::Mode;
use super::errors::ApiError;

pub(super) fn kind(plural: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(plural).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        ApiError::not_found(format!(
            "unknown resource type {plural:?}; known: {}",
            known.join(", ")
        ))
    })
}

/// A type addressed as `/{plural}/{name}`: it must be global-scoped.
pub(super) fn global_kind(plural: &str) -> Result<Kind, ApiError> {
    let kind = kind(plural)?;
    if kind.scope() == Scope::Mesh {
        return Err(ApiError::not_found(format!(
            "{kind} is mesh-scoped: use /meshes/{{mesh}}/{plural}/{{name}}"
        )));
    }
    Ok(kind)
}

/// A type addressed under `/meshes/{mesh}/`: it must be mesh-scoped.
pub(super) fn mesh_kind(plural: &str) -> Result<Kind, ApiError> {
    let kind = kind(plural)?;
    if kind.scope() == Scope::Global {
        return Err(ApiError::not_found(format!(
            "{kind} is not mesh-scoped: use /{plural}/{{name}}"
        )));
    }
    Ok(kind)
}

/// Global-owned types are written on the global, zone-owned ones in zones (SPEC.md), policies
/// on either.
pub(super) fn writable(mode: &Mode, kind: Kind) -> Result<(), ApiError> {
    match (mode, kind.owner()) {
        (Mode::Global, Owner::Global) | (Mode::Zone { .. }, Owner::Zone) => Ok(()),
        // Which side's copy it is is checked per resource (`resources::written_here`).
        (_, Owner::Either) => Ok(()),
        (Mode::Global, Owner::Zone) => Err(ApiError::bad_request(
            format!(
                "{kind} is owned by zones: register it with a zone control plane, which syncs it to the global"
            ),
            Vec::new(),
        )),
        (_, Owner::ControlPlane) => Err(ApiError::bad_request(
            format!("{kind} is written by the control plane itself and is read-only"),
            Vec::new(),
        )),
        (Mode::Zone { .. }, Owner::Global) => Err(ApiError::bad_request(
            format!(
                "{kind} is owned by the global control plane: apply it there; zones receive it read-only"
            ),
            Vec::new(),
        )),
    }
}

/// Secrets the control plane manages itself (the KDS CA): never changed through the API.
pub const MANAGED_SECRETS: &[&str] = &["atoll-kds-ca"];

pub(super) fn not_managed(kind: Kind, name: &str) -> Result<(), ApiError> {
    if kind == Kind::GlobalSecret && MANAGED_SECRETS.contains(&name) {
        return Err(ApiError::bad_request(
            format!(
                "GlobalSecret {name:?} is managed by the control plane and cannot be changed or deleted"
            ),
            Vec::new(),
        ));
    }
    Ok(())
}

pub(super) fn is_secret(kind: Kind) -> bool {
    matches!(kind, Kind::Secret | Kind::GlobalSecret)
}
