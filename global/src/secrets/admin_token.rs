//! The admin credential: a user token for the `mesh-system:admin` group, kept as the
//! GlobalSecret `admin-user-token` so every global replica on one database hands out (and
//! accepts) the same one, and written to `<work dir>/admin-token` (mode 0600) for `atollctl`
//! on the same host. It is reissued when it no longer verifies (its key was deleted).

use std::path::Path;
use std::time::Duration;

use atoll_auth::access::{ADMIN_GROUP, ADMIN_USER};
use atoll_auth::names::ADMIN_USER_TOKEN;
use atoll_auth::{Purpose, Standard, UserClaims};
use atoll_model::types::SecretSpec;
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Key, Precondition, Store, StoreError};

use super::Inventory;

/// The file, inside the work directory, that holds the admin token.
pub const TOKEN_FILE: &str = "admin-token";
/// Validity of the admin token (Kuma's admin token does not expire in practice either).
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn key() -> Key {
    Key::new(Kind::GlobalSecret, None, ADMIN_USER_TOKEN)
}

fn token_of(resource: &Resource) -> Option<String> {
    match &resource.spec {
        Spec::GlobalSecret(secret) => secret
            .bytes()
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|t| t.trim().to_string()),
        _ => None,
    }
}

/// Whether the admin token is missing or no longer verifies with the user keys present.
pub(super) async fn needed(store: &dyn Store, inventory: &Inventory) -> Result<bool, StoreError> {
    let Some(stored) = inventory
        .global_secrets
        .items
        .iter()
        .find(|s| s.resource.name() == ADMIN_USER_TOKEN)
    else {
        return Ok(true);
    };
    let Some(token) = token_of(&stored.resource) else {
        return Ok(true);
    };
    let keyring = atoll_auth::load(store).await?;
    if !keyring.can_issue(&Purpose::User) {
        // No user key yet: it is created first, then the token is checked again.
        return Ok(true);
    }
    Ok(keyring
        .verify_user(&token, atoll_auth::unix_now())
        .map(|claims| !claims.groups.iter().any(|g| g == ADMIN_GROUP))
        .unwrap_or(true))
}

/// Issues a new admin token and stores it.
pub(super) async fn issue(store: &dyn Store) -> Result<(), StoreError> {
    let keyring = atoll_auth::load(store).await?;
    let claims = UserClaims {
        name: ADMIN_USER.into(),
        groups: vec![ADMIN_GROUP.into()],
        standard: Standard::new(atoll_auth::unix_now(), VALIDITY),
    };
    let token = match keyring.issue(&Purpose::User, &claims) {
        Ok(token) => token,
        Err(err) => {
            tracing::error!(%err, "cannot issue the admin token");
            return Ok(());
        }
    };
    let current = store.get(&key()).await?;
    let expect = match &current {
        Some(stored) => Precondition::Version(stored.version),
        None => Precondition::Absent,
    };
    let secret = Resource::new(
        Meta {
            name: ADMIN_USER_TOKEN.into(),
            ..Default::default()
        },
        Spec::GlobalSecret(SecretSpec::from_bytes(token.as_bytes())),
    );
    match store.put(secret, expect).await {
        Ok(_) => {
            tracing::info!(jti = %claims.standard.jti, "issued the admin user token (GlobalSecret {ADMIN_USER_TOKEN})");
            Ok(())
        }
        // Another writer got there first; the next check looks at theirs.
        Err(StoreError::AlreadyExists { .. } | StoreError::Conflict { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Writes the stored admin token to `<work_dir>/admin-token` when the file differs.
pub(super) async fn write_file(store: &dyn Store, work_dir: &Path) -> Result<(), StoreError> {
    let Some(token) = store
        .get(&key())
        .await?
        .and_then(|stored| token_of(&stored.resource))
    else {
        return Ok(());
    };
    let path = work_dir.join(TOKEN_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|text| text.trim() == token) {
        return Ok(());
    }
    if let Err(err) = std::fs::create_dir_all(work_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            atoll_tls::write_atomic(&path, token.as_bytes(), 0o600).map_err(|e| e.to_string())
        })
    {
        tracing::error!(path = %path.display(), %err, "cannot write the admin token file");
    } else {
        tracing::info!(path = %path.display(), "wrote the admin token for atollctl on this host");
    }
    Ok(())
}
