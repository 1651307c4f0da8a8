//! Every signing key, verification key and revocation list a control plane holds, built from
//! its secrets: issues tokens with the newest key of a purpose and verifies them with any key
//! of that purpose that is still present.

use std::collections::{BTreeMap, BTreeSet};

use atoll_model::Kind;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::claims::{DataplaneClaims, Standard, UserClaims, ZoneClaims, kind_of};
use crate::jwt;
use crate::keys::{PrivateKey, PublicKey};
use crate::names::{self, Purpose, Role};
use crate::{IssueError, TokenError};

/// One secret as the keyring reads it.
#[derive(Debug, Clone, Copy)]
pub struct SecretEntry<'a> {
    pub kind: Kind,
    /// The mesh of a mesh Secret.
    pub mesh: Option<&'a str>,
    pub name: &'a str,
    /// The secret's decoded bytes.
    pub data: &'a [u8],
}

/// Keys and revocations by purpose. `Default` is a keyring that has not been loaded yet.
#[derive(Clone, Default)]
pub struct Keyring {
    loaded: bool,
    /// The highest serial with a private key signs.
    signers: BTreeMap<Purpose, (u64, PrivateKey)>,
    verifiers: BTreeMap<Purpose, BTreeMap<u64, PublicKey>>,
    revoked: BTreeMap<Purpose, BTreeSet<String>>,
    revoked_zone_certificates: BTreeSet<String>,
    /// Credential secrets that could not be used, with why.
    problems: Vec<String>,
}

/// The role of a secret, whichever kind it is.
pub fn role_of(kind: Kind, mesh: Option<&str>, name: &str) -> Option<Role> {
    match (kind, mesh) {
        (Kind::Secret, Some(mesh)) => names::mesh_secret_role(mesh, name),
        (Kind::GlobalSecret, _) => names::global_secret_role(name),
        _ => None,
    }
}

impl Keyring {
    /// Builds a keyring from secrets; others are ignored, unusable ones are listed in
    /// [`Keyring::problems`].
    pub fn build<'a>(secrets: impl IntoIterator<Item = SecretEntry<'a>>) -> Keyring {
        let mut ring = Keyring {
            loaded: true,
            ..Default::default()
        };
        for secret in secrets {
            let Some(role) = role_of(secret.kind, secret.mesh, secret.name) else {
                continue;
            };
            match role {
                Role::SigningKey(purpose, serial) => match PrivateKey::from_pem(secret.data) {
                    Ok(key) => {
                        ring.verifiers
                            .entry(purpose.clone())
                            .or_default()
                            .insert(serial, key.public());
                        let newer = ring
                            .signers
                            .get(&purpose)
                            .is_none_or(|(current, _)| serial > *current);
                        if newer {
                            ring.signers.insert(purpose, (serial, key));
                        }
                    }
                    Err(err) => ring.problems.push(format!("{}: {err}", secret.name)),
                },
                Role::PublicKey(purpose, serial) => match PublicKey::from_pem(secret.data) {
                    Ok(key) => {
                        ring.verifiers
                            .entry(purpose)
                            .or_default()
                            .insert(serial, key);
                    }
                    Err(err) => ring.problems.push(format!("{}: {err}", secret.name)),
                },
                Role::Revocations(purpose) => {
                    let text = String::from_utf8_lossy(secret.data);
                    ring.revoked
                        .entry(purpose)
                        .or_default()
                        .extend(names::list_entries(&text).map(str::to_string));
                }
                Role::ZoneCertificateRevocations => {
                    let text = String::from_utf8_lossy(secret.data);
                    ring.revoked_zone_certificates
                        .extend(names::list_entries(&text).map(names::normalize_serial));
                }
            }
        }
        ring
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The serials of the keys that verify tokens of `purpose`.
    pub fn serials(&self, purpose: &Purpose) -> Vec<u64> {
        self.verifiers
            .get(purpose)
            .map(|keys| keys.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether tokens of `purpose` can be issued here.
    pub fn can_issue(&self, purpose: &Purpose) -> bool {
        self.signers.contains_key(purpose)
    }

    /// Signs `claims` with the newest key of `purpose`.
    pub fn issue<C: Serialize>(&self, purpose: &Purpose, claims: &C) -> Result<String, IssueError> {
        let Some((serial, key)) = self.signers.get(purpose) else {
            return Err(IssueError::NoSigningKey(purpose.clone()));
        };
        let value = serde_json::to_value(claims).map_err(|e| IssueError::Claims(e.to_string()))?;
        Ok(jwt::encode(&value, &serial.to_string(), key)?)
    }

    pub fn verify_dataplane(&self, token: &str, now: i64) -> Result<DataplaneClaims, TokenError> {
        self.verify(token, now, "dataplane", |claims| {
            claims
                .get("Mesh")
                .and_then(|m| m.as_str())
                .map(|mesh| Purpose::Dataplane(mesh.to_string()))
        })
    }

    pub fn verify_zone(&self, token: &str, now: i64) -> Result<ZoneClaims, TokenError> {
        self.verify(token, now, "zone", |_| Some(Purpose::Zone))
    }

    pub fn verify_user(&self, token: &str, now: i64) -> Result<UserClaims, TokenError> {
        self.verify(token, now, "user", |_| Some(Purpose::User))
    }

    /// Whether the zone certificate with this serial (any common spelling) is revoked.
    pub fn zone_certificate_revoked(&self, serial: &str) -> bool {
        self.revoked_zone_certificates
            .contains(&names::normalize_serial(serial))
    }

    fn verify<C: DeserializeOwned + HasStandard>(
        &self,
        token: &str,
        now: i64,
        expected: &'static str,
        purpose: impl FnOnce(&serde_json::Value) -> Option<Purpose>,
    ) -> Result<C, TokenError> {
        if !self.loaded {
            return Err(TokenError::NotReady);
        }
        let decoded = jwt::decode(token)?;
        let found = kind_of(&decoded.claims);
        if found != expected {
            return Err(TokenError::WrongKind { expected, found });
        }
        let purpose = purpose(&decoded.claims).ok_or(TokenError::Malformed(format!(
            "a {expected} token without its claims"
        )))?;
        let kid = decoded.kid();
        let key = kid
            .parse::<u64>()
            .ok()
            .and_then(|serial| self.verifiers.get(&purpose)?.get(&serial))
            .ok_or_else(|| TokenError::UnknownKey {
                kid: kid.to_string(),
                purpose: purpose.to_string(),
            })?;
        if !decoded.signed_by(key) {
            return Err(TokenError::Signature {
                kid: kid.to_string(),
                purpose: purpose.to_string(),
            });
        }
        let claims: C = serde_json::from_value(decoded.claims).map_err(|e| {
            TokenError::Malformed(format!("its claims are not a {expected} token's: {e}"))
        })?;
        let standard = claims.standard();
        standard.check_time(now)?;
        if self
            .revoked
            .get(&purpose)
            .is_some_and(|r| r.contains(&standard.jti))
        {
            return Err(TokenError::Revoked {
                jti: standard.jti.clone(),
            });
        }
        Ok(claims)
    }
}

/// Tokens whose validity and id the keyring checks.
pub trait HasStandard {
    fn standard(&self) -> &Standard;
}

impl HasStandard for DataplaneClaims {
    fn standard(&self) -> &Standard {
        &self.standard
    }
}

impl HasStandard for ZoneClaims {
    fn standard(&self) -> &Standard {
        &self.standard
    }
}

impl HasStandard for UserClaims {
    fn standard(&self) -> &Standard {
        &self.standard
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::claims::ProxyType;
    use crate::keys::generate_pem;

    fn dp_claims(mesh: &str, now: i64) -> DataplaneClaims {
        DataplaneClaims {
            name: "web-1".into(),
            mesh: mesh.into(),
            tags: Default::default(),
            proxy_type: ProxyType::Dataplane,
            standard: Standard::new(now, Duration::from_secs(3600)),
        }
    }

    struct Secrets(Vec<(Kind, Option<String>, String, Vec<u8>)>);

    impl Secrets {
        fn add(&mut self, kind: Kind, mesh: Option<&str>, name: &str, data: &[u8]) -> &mut Self {
            self.0
                .push((kind, mesh.map(String::from), name.into(), data.to_vec()));
            self
        }

        fn ring(&self) -> Keyring {
            Keyring::build(self.0.iter().map(|(kind, mesh, name, data)| SecretEntry {
                kind: *kind,
                mesh: mesh.as_deref(),
                name,
                data,
            }))
        }
    }

    #[test]
    fn issue_verify_rotate_revoke() {
        let now = 1_700_000_000;
        let (k1, k2) = (generate_pem().unwrap(), generate_pem().unwrap());
        let mut secrets = Secrets(Vec::new());
        secrets.add(
            Kind::Secret,
            Some("default"),
            "dataplane-token-signing-key-default-1",
            k1.as_bytes(),
        );
        let ring = secrets.ring();
        let purpose = Purpose::Dataplane("default".into());
        let old = ring.issue(&purpose, &dp_claims("default", now)).unwrap();
        assert_eq!(ring.verify_dataplane(&old, now).unwrap().name, "web-1");

        // A second key with a higher serial signs new tokens; the old ones stay valid.
        secrets.add(
            Kind::Secret,
            Some("default"),
            "dataplane-token-signing-key-default-2",
            k2.as_bytes(),
        );
        let ring = secrets.ring();
        let new = ring.issue(&purpose, &dp_claims("default", now)).unwrap();
        assert_eq!(jwt::decode(&new).unwrap().kid(), "2");
        assert!(ring.verify_dataplane(&old, now).is_ok());
        assert!(ring.verify_dataplane(&new, now).is_ok());
        assert_eq!(ring.serials(&purpose), [1, 2]);

        // Deleting key 1 invalidates what it signed.
        secrets.0.remove(0);
        let ring = secrets.ring();
        let err = ring.verify_dataplane(&old, now).unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey { .. }), "{err}");
        assert!(ring.verify_dataplane(&new, now).is_ok());

        // Revoking by jti.
        let jti = ring.verify_dataplane(&new, now).unwrap().standard.jti;
        secrets.add(
            Kind::Secret,
            Some("default"),
            "dataplane-token-revocations-default",
            format!("other, {jti}").as_bytes(),
        );
        let err = secrets.ring().verify_dataplane(&new, now).unwrap_err();
        assert!(matches!(err, TokenError::Revoked { .. }), "{err}");

        // Expiry.
        let err = ring.verify_dataplane(&new, now + 3600).unwrap_err();
        assert!(matches!(err, TokenError::Expired { .. }), "{err}");
    }

    #[test]
    fn tokens_of_one_kind_or_mesh_never_verify_as_another() {
        let now = 1_700_000_000;
        let key = generate_pem().unwrap();
        let other = generate_pem().unwrap();
        let mut secrets = Secrets(Vec::new());
        secrets
            .add(
                Kind::Secret,
                Some("a"),
                "dataplane-token-signing-key-a-1",
                key.as_bytes(),
            )
            .add(
                Kind::Secret,
                Some("b"),
                "dataplane-token-signing-key-b-1",
                other.as_bytes(),
            )
            .add(
                Kind::GlobalSecret,
                None,
                "zone-token-signing-key-1",
                key.as_bytes(),
            )
            .add(
                Kind::GlobalSecret,
                None,
                "user-token-signing-key-1",
                other.as_bytes(),
            );
        let ring = secrets.ring();
        // A token for mesh a, with its Mesh claim rewritten to b, fails b's key.
        let token = ring
            .issue(&Purpose::Dataplane("a".into()), &dp_claims("a", now))
            .unwrap();
        assert!(ring.verify_dataplane(&token, now).is_ok());
        let forged_for_b = ring
            .issue(&Purpose::Dataplane("a".into()), &dp_claims("b", now))
            .unwrap();
        let err = ring.verify_dataplane(&forged_for_b, now).unwrap_err();
        assert!(matches!(err, TokenError::Signature { .. }), "{err}");
        // A zone token is not a data plane token, even when both keys are the same.
        let zone = ring
            .issue(
                &Purpose::Zone,
                &ZoneClaims {
                    zone: "zone-1".into(),
                    scope: vec!["ingress".into()],
                    standard: Standard::new(now, Duration::from_secs(60)),
                },
            )
            .unwrap();
        let err = ring.verify_dataplane(&zone, now).unwrap_err();
        assert!(err.to_string().contains("zone token"), "{err}");
        assert!(ring.verify_zone(&zone, now).is_ok());
        assert!(ring.verify_user(&token, now).is_err());
        // An unloaded keyring says so instead of calling every token invalid.
        assert!(matches!(
            Keyring::default().verify_zone(&zone, now),
            Err(TokenError::NotReady)
        ));
    }

    #[test]
    fn zones_verify_with_public_keys_only_and_bad_secrets_are_reported() {
        let now = 1_700_000_000;
        let key = generate_pem().unwrap();
        let mut global = Secrets(Vec::new());
        global.add(
            Kind::GlobalSecret,
            None,
            "user-token-signing-key-3",
            key.as_bytes(),
        );
        let token = global
            .ring()
            .issue(
                &Purpose::User,
                &UserClaims {
                    name: "alice".into(),
                    groups: vec!["team-a".into()],
                    standard: Standard::new(now, Duration::from_secs(60)),
                },
            )
            .unwrap();
        let public = PrivateKey::from_pem(key.as_bytes())
            .unwrap()
            .public()
            .to_pem()
            .unwrap();
        let mut zone = Secrets(Vec::new());
        zone.add(
            Kind::GlobalSecret,
            None,
            "user-token-signing-public-key-3",
            public.as_bytes(),
        )
        .add(
            Kind::GlobalSecret,
            None,
            "zone-token-signing-key-1",
            b"garbage",
        )
        .add(
            Kind::GlobalSecret,
            None,
            "zone-certificate-revocations",
            b"3A:5F",
        );
        let ring = zone.ring();
        assert_eq!(ring.verify_user(&token, now).unwrap().name, "alice");
        assert!(!ring.can_issue(&Purpose::User));
        assert!(matches!(
            ring.issue(&Purpose::User, &serde_json::json!({})),
            Err(IssueError::NoSigningKey(_))
        ));
        assert_eq!(ring.problems().len(), 1);
        assert!(ring.problems()[0].starts_with("zone-token-signing-key-1"));
        assert!(ring.zone_certificate_revoked("3a5f"));
        assert!(!ring.zone_certificate_revoked("3a5e"));
    }
}
