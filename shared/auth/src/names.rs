//! The names of the secrets that hold signing keys, revocation lists and the admin credential
//! (Kuma 2.14's names, SPEC.md "Tokens and API users"), and what a name says about its secret.

/// Mesh Secret `dataplane-token-signing-key-<mesh>-<serial>`.
pub const DATAPLANE_SIGNING_KEY: &str = "dataplane-token-signing-key-";
/// GlobalSecret `zone-token-signing-key-<serial>`; only on the global.
pub const ZONE_SIGNING_KEY: &str = "zone-token-signing-key-";
/// GlobalSecret `zone-token-signing-public-key-<serial>`: what zones receive of a zone key.
pub const ZONE_SIGNING_PUBLIC_KEY: &str = "zone-token-signing-public-key-";
/// GlobalSecret `user-token-signing-key-<serial>`; only on the global.
pub const USER_SIGNING_KEY: &str = "user-token-signing-key-";
/// GlobalSecret `user-token-signing-public-key-<serial>`: what zones receive of a user key.
pub const USER_SIGNING_PUBLIC_KEY: &str = "user-token-signing-public-key-";

/// Mesh Secret `dataplane-token-revocations-<mesh>`: revoked `jti`s, comma-separated.
pub const DATAPLANE_REVOCATIONS: &str = "dataplane-token-revocations-";
pub const ZONE_REVOCATIONS: &str = "zone-token-revocations";
pub const USER_REVOCATIONS: &str = "user-token-revocations";
/// GlobalSecret listing revoked zone certificate serials, comma-separated.
pub const ZONE_CERTIFICATE_REVOCATIONS: &str = "zone-certificate-revocations";

/// GlobalSecret holding the admin user token, so every global replica hands out the same one.
pub const ADMIN_USER_TOKEN: &str = "admin-user-token";

/// What a family of tokens is for; each has its own keys, so a token of one kind never
/// verifies as another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// Data plane tokens of one mesh.
    Dataplane(String),
    Zone,
    User,
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Purpose::Dataplane(mesh) => write!(f, "dataplane tokens of mesh {mesh:?}"),
            Purpose::Zone => f.write_str("zone tokens"),
            Purpose::User => f.write_str("user tokens"),
        }
    }
}

/// What a secret's name makes it, for the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A private signing key with its serial.
    SigningKey(Purpose, u64),
    /// A public verification key with its serial (a zone's copy of a global key).
    PublicKey(Purpose, u64),
    /// A revocation list.
    Revocations(Purpose),
    ZoneCertificateRevocations,
}

fn serial(text: &str) -> Option<u64> {
    // Digits only: "1", "2", ...; a leading '+' or sign is not a serial.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The role of mesh Secret `name` in `mesh`, if it is a credential secret.
pub fn mesh_secret_role(mesh: &str, name: &str) -> Option<Role> {
    if let Some(rest) = name.strip_prefix(DATAPLANE_SIGNING_KEY) {
        let serial = serial(rest.strip_prefix(mesh)?.strip_prefix('-')?)?;
        return Some(Role::SigningKey(
            Purpose::Dataplane(mesh.to_string()),
            serial,
        ));
    }
    if name.strip_prefix(DATAPLANE_REVOCATIONS) == Some(mesh) {
        return Some(Role::Revocations(Purpose::Dataplane(mesh.to_string())));
    }
    None
}

/// The role of GlobalSecret `name`, if it is a credential secret.
pub fn global_secret_role(name: &str) -> Option<Role> {
    let keyed = [
        (ZONE_SIGNING_KEY, Purpose::Zone, true),
        (ZONE_SIGNING_PUBLIC_KEY, Purpose::Zone, false),
        (USER_SIGNING_KEY, Purpose::User, true),
        (USER_SIGNING_PUBLIC_KEY, Purpose::User, false),
    ];
    for (prefix, purpose, private) in keyed {
        if let Some(serial) = name.strip_prefix(prefix).and_then(serial) {
            return Some(if private {
                Role::SigningKey(purpose, serial)
            } else {
                Role::PublicKey(purpose, serial)
            });
        }
    }
    match name {
        ZONE_REVOCATIONS => Some(Role::Revocations(Purpose::Zone)),
        USER_REVOCATIONS => Some(Role::Revocations(Purpose::User)),
        ZONE_CERTIFICATE_REVOCATIONS => Some(Role::ZoneCertificateRevocations),
        _ => None,
    }
}

/// The secret name of the signing key `serial` for `purpose`.
pub fn signing_key_name(purpose: &Purpose, serial: u64) -> String {
    match purpose {
        Purpose::Dataplane(mesh) => format!("{DATAPLANE_SIGNING_KEY}{mesh}-{serial}"),
        Purpose::Zone => format!("{ZONE_SIGNING_KEY}{serial}"),
        Purpose::User => format!("{USER_SIGNING_KEY}{serial}"),
    }
}

/// The name under which zones receive the public half of GlobalSecret `name`, when it is a
/// zone or user signing key; `None` for any other secret.
pub fn public_key_name(name: &str) -> Option<String> {
    match global_secret_role(name)? {
        Role::SigningKey(Purpose::Zone, serial) => {
            Some(format!("{ZONE_SIGNING_PUBLIC_KEY}{serial}"))
        }
        Role::SigningKey(Purpose::User, serial) => {
            Some(format!("{USER_SIGNING_PUBLIC_KEY}{serial}"))
        }
        _ => None,
    }
}

/// The entries of a revocation list: comma- or newline-separated, blanks ignored.
pub fn list_entries(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// A certificate serial as revocation lists compare it: hex digits in lower case without
/// separators or leading zeros, so `3A:5F`, `0x3a5f` and `3a5f` are the same serial.
pub fn normalize_serial(text: &str) -> String {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() && !hex.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataplane_key_names_carry_mesh_and_serial() {
        assert_eq!(
            mesh_secret_role("default", "dataplane-token-signing-key-default-1"),
            Some(Role::SigningKey(Purpose::Dataplane("default".into()), 1))
        );
        // A mesh whose name ends like another mesh's: the key belongs to the mesh it lives in.
        assert_eq!(
            mesh_secret_role("a-b", "dataplane-token-signing-key-a-b-12"),
            Some(Role::SigningKey(Purpose::Dataplane("a-b".into()), 12))
        );
        assert_eq!(
            mesh_secret_role("b", "dataplane-token-signing-key-a-b-12"),
            None
        );
        assert_eq!(
            mesh_secret_role("default", "dataplane-token-signing-key-default-"),
            None
        );
        assert_eq!(
            mesh_secret_role("default", "dataplane-token-signing-key-default-x1"),
            None
        );
        assert_eq!(
            mesh_secret_role("default", "dataplane-token-revocations-default"),
            Some(Role::Revocations(Purpose::Dataplane("default".into())))
        );
        assert_eq!(mesh_secret_role("default", "ca-builtin-ca-1"), None);
        assert_eq!(
            signing_key_name(&Purpose::Dataplane("m".into()), 3),
            "dataplane-token-signing-key-m-3"
        );
    }

    #[test]
    fn global_names() {
        assert_eq!(
            global_secret_role("zone-token-signing-key-2"),
            Some(Role::SigningKey(Purpose::Zone, 2))
        );
        assert_eq!(
            global_secret_role("user-token-signing-public-key-7"),
            Some(Role::PublicKey(Purpose::User, 7))
        );
        assert_eq!(
            global_secret_role("zone-certificate-revocations"),
            Some(Role::ZoneCertificateRevocations)
        );
        assert_eq!(global_secret_role("admin-user-token"), None);
        assert_eq!(global_secret_role("atoll-kds-ca"), None);
        assert_eq!(
            public_key_name("user-token-signing-key-3").as_deref(),
            Some("user-token-signing-public-key-3")
        );
        assert_eq!(public_key_name("user-token-revocations"), None);
    }

    #[test]
    fn serials_compare_in_one_form() {
        assert_eq!(normalize_serial("3A:5F"), "3a5f");
        assert_eq!(normalize_serial("0x003a5f"), "3a5f");
        assert_eq!(normalize_serial(" 00 "), "0");
        let entries: Vec<&str> = list_entries("a, b,\n c,,").collect();
        assert_eq!(entries, ["a", "b", "c"]);
    }
}
