//! Credentials for Atoll's control planes.
//!
//! Owns the three kinds of RS256 tokens (data plane, zone, user) with Kuma 2.14's claims, the
//! RSA signing keys and revocation lists they are checked against (kept as secrets with Kuma's
//! names, [`names`]), the keyring built from those secrets and kept current from the store
//! ([`Credentials`]), and static access control ([`access`]). It decides whether a credential
//! is valid and what it admits; it serves no port and writes nothing: servers ask it, and the
//! global's runtime generates the keys it reads.
#![forbid(unsafe_code)]

pub mod access;
pub mod claims;
#[cfg(feature = "follow")]
mod follow;
pub mod jwt;
pub mod keyring;
pub mod keys;
pub mod names;

pub use access::{Action, Rule, StaticAccess, User};
pub use claims::{DataplaneClaims, ProxyType, Refusal, Standard, UserClaims, ZoneClaims};
#[cfg(feature = "follow")]
pub use follow::{Credentials, load};
pub use keyring::Keyring;
pub use names::Purpose;

/// Why a token is not accepted. Every variant says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token is signed with {0:?}; only RS256 tokens are accepted")]
    Algorithm(String),
    #[error("this is a {found} token; a {expected} token is needed here")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "the token's signing key (kid {kid:?}) is not one of the keys for {purpose}: it was signed elsewhere, or its key was deleted"
    )]
    UnknownKey { kid: String, purpose: String },
    #[error("the token's signature does not verify with key {kid:?} of {purpose}")]
    Signature { kid: String, purpose: String },
    #[error("the token expired at {at}")]
    Expired { at: String },
    #[error("the token is not valid before {from}")]
    NotYetValid { from: String },
    #[error("the token (jti {jti}) is revoked")]
    Revoked { jti: String },
    /// The signing keys have not been read yet (the control plane is starting).
    #[error("the control plane has not loaded its signing keys yet; retry shortly")]
    NotReady,
}

/// Why a token cannot be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("there is no signing key for {0} here yet")]
    NoSigningKey(Purpose),
    #[error("cannot encode the claims: {0}")]
    Claims(String),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// Seconds since the Unix epoch, what token times are.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
