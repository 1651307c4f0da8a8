//! RSA signing keys: generated here (2048 bits), kept in secrets as PEM, used through ring.
//!
//! ring signs and verifies (fast, constant-time) but cannot generate RSA keys, so the `rsa`
//! crate generates them and converts between the key formats operators bring: PKCS#1
//! (`RSA PRIVATE KEY`, what `openssl genrsa` wrote for years and what Kuma stores) and PKCS#8
//! (`PRIVATE KEY`) for private keys, SPKI (`PUBLIC KEY`) and PKCS#1 (`RSA PUBLIC KEY`) for
//! public ones.

use std::sync::Arc;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

/// Size of generated keys.
pub const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    #[error("not an RSA private key in PEM (RSA PRIVATE KEY or PRIVATE KEY): {0}")]
    Private(String),
    #[error("not an RSA public key in PEM (PUBLIC KEY or RSA PUBLIC KEY): {0}")]
    Public(String),
    #[error("signing failed")]
    Sign,
}

/// A private key able to sign RS256. Deliberately not `Debug`.
#[derive(Clone)]
pub struct PrivateKey {
    pair: Arc<RsaKeyPair>,
}

/// A public key able to verify RS256 signatures (PKCS#1 DER inside).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pkcs1: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} bytes)", self.pkcs1.len())
    }
}

/// The OS randomness for the `rsa` crate, drawn from ring's, which never fails on Linux.
struct OsRandom;

impl rand_core::TryRng for OsRandom {
    type Error = KeyGenRandomError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        ring::rand::SecureRandom::fill(&SystemRandom::new(), dest).map_err(|_| KeyGenRandomError)
    }
}

impl rand_core::TryCryptoRng for OsRandom {}

#[derive(Debug)]
pub struct KeyGenRandomError;

impl std::fmt::Display for KeyGenRandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no randomness from the operating system")
    }
}

impl std::error::Error for KeyGenRandomError {}

/// PEM text of `der` under `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new 2048-bit RSA key as PKCS#1 PEM (`RSA PRIVATE KEY`), the form Kuma stores.
pub fn generate_pem() -> Result<String, KeyError> {
    let key = rsa::PrivateKey::new(&mut OsRandom, KEY_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(pem("RSA PRIVATE KEY", der.as_bytes()))
}

impl PrivateKey {
    /// Reads a PEM private key (PKCS#1 or PKCS#8).
    pub fn from_pem(bytes: &[u8]) -> Result<Self, KeyError> {
        let der =
            PrivateKeyDer::from_pem_slice(bytes).map_err(|e| KeyError::Private(e.to_string()))?;
        let pair = match &der {
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            _ => return Err(KeyError::Private("an EC key; RS256 needs RSA".into())),
        }
        .map_err(|e| KeyError::Private(e.to_string()))?;
        Ok(PrivateKey {
            pair: Arc::new(pair),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            pkcs1: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (JWT's RS256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| KeyError::Sign)?;
        Ok(signature)
    }
}

impl PublicKey {
    /// Reads a PEM public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    pub fn from_pem(bytes: &[u8]) -> Result<Self, KeyError> {
        let invalid = |e: String| KeyError::Public(e);
        if let Ok(spki) = SubjectPublicKeyInfoDer::from_pem_slice(bytes) {
            let key = rsa::PublicKey::from_public_key_der(spki.as_ref())
                .map_err(|e| invalid(e.to_string()))?;
            let der = key.to_pkcs1_der().map_err(|e| invalid(e.to_string()))?;
            return Ok(PublicKey {
                pkcs1: der.as_bytes().to_vec(),
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| invalid(e.to_string()))?;
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN RSA PUBLIC KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| invalid(e.to_string()))?;
        rsa::PublicKey::from_pkcs1_der(&der).map_err(|e| invalid(e.to_string()))?;
        Ok(PublicKey { pkcs1: der })
    }

    /// SPKI PEM (`PUBLIC KEY`), the form zones receive.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let key = rsa::PublicKey::from_pkcs1_der(&self.pkcs1)
            .map_err(|e| KeyError::Public(e.to_string()))?;
        let der = key
            .to_public_key_der()
            .map_err(|e| KeyError::Public(e.to_string()))?;
        Ok(pem("PUBLIC KEY", der.as_bytes()))
    }

    /// Whether `signature` is an RS256 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.pkcs1)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_their_public_halves_verify() {
        let pem = generate_pem().unwrap();
        assert!(
            pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
            "{pem}"
        );
        let key = PrivateKey::from_pem(pem.as_bytes()).unwrap();
        let signature = key.sign(b"message").unwrap();
        assert_eq!(signature.len(), KEY_BITS / 8);
        let public = key.public();
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"massage", &signature));
        // The public half survives its PEM round trip.
        let public_pem = public.to_pem().unwrap();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let reread = PublicKey::from_pem(public_pem.as_bytes()).unwrap();
        assert_eq!(reread, public);
        // Another key's signature does not verify.
        let other = PrivateKey::from_pem(generate_pem().unwrap().as_bytes()).unwrap();
        assert!(!public.verify(b"message", &other.sign(b"message").unwrap()));
    }

    #[test]
    fn garbage_is_refused_with_the_expected_format_named() {
        let err = PrivateKey::from_pem(b"not a key").err().unwrap();
        assert!(err.to_string().contains("RSA PRIVATE KEY"), "{err}");
        let err = PublicKey::from_pem(
            b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        // An EC key is a valid PEM private key, but not one RS256 can use.
        let ec = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVcB/UNPxalR9zDYAjQIfjojUDiQuGnSJrFEEzZPT/92hRANCAASc7UJtgnF/abqWM60T3XNJEzBv5ez9TdwK1ek2TZiIvBN1vRUepUyrs9SL4YoOiBqEGyU8L3V9pS6kGQiqPdaW\n-----END PRIVATE KEY-----\n";
        assert!(PrivateKey::from_pem(ec.as_bytes()).is_err());
    }
}
