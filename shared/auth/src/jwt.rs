//! JSON Web Tokens signed with RS256: `base64url(header).base64url(claims).base64url(signature)`.
//!
//! Hand-written rather than taken from a JWT crate so that exactly one algorithm exists: a
//! header naming anything but `RS256` (`none`, `HS256` with the public key as secret, ...) is
//! refused before any key is looked at. Input is bounded and never indexed blindly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TokenError;
use crate::keys::{KeyError, PrivateKey, PublicKey};

/// Longer input is refused unread: real tokens are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: Header,
    pub claims: Value,
    /// `header.claims`, what the signature covers.
    signed: &'a str,
    signature: Vec<u8>,
}

/// Signs `claims` (a JSON object) under key id `kid`.
pub fn encode(claims: &Value, kid: &str, key: &PrivateKey) -> Result<String, KeyError> {
    let header = Header {
        alg: "RS256".into(),
        typ: Some("JWT".into()),
        kid: Some(kid.to_string()),
    };
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.sign(signed.as_bytes())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn malformed(why: &str) -> TokenError {
    TokenError::Malformed(why.to_string())
}

/// Splits and decodes `token`; refuses anything that is not a well-formed RS256 JWT with a key
/// id.
pub fn decode(token: &str) -> Result<Unverified<'_>, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(malformed("the token is empty"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("the token is longer than any token Atoll issues"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a token has three dot-separated parts (header.claims.signature)",
        ));
    };
    let signed = &token[..header.len() + 1 + claims.len()];
    let part = |text: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| malformed(&format!("its {what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&part(header, "header")?)
        .map_err(|_| malformed("its header is not a JWT header"))?;
    if header.alg != "RS256" {
        return Err(TokenError::Algorithm(header.alg));
    }
    if header.kid.as_deref().is_none_or(str::is_empty) {
        return Err(malformed("its header names no key (kid)"));
    }
    let claims: Value = serde_json::from_slice(&part(claims, "claims")?)
        .map_err(|_| malformed("its claims are not JSON"))?;
    if !claims.is_object() {
        return Err(malformed("its claims are not a JSON object"));
    }
    Ok(Unverified {
        header,
        claims,
        signed,
        signature: part(signature, "signature")?,
    })
}

impl Unverified<'_> {
    pub fn kid(&self) -> &str {
        self.header.kid.as_deref().unwrap_or_default()
    }

    /// Whether `key` signed this token.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        key.verify(self.signed.as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::generate_pem;

    fn key() -> PrivateKey {
        PrivateKey::from_pem(generate_pem().unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn round_trip_and_tampering() {
        let key = key();
        let token = encode(&json!({"Name": "web-1", "exp": 1}), "1", &key).unwrap();
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.kid(), "1");
        assert_eq!(decoded.claims["Name"], "web-1");
        assert!(decoded.signed_by(&key.public()));

        // Changing the claims invalidates the signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"Name":"payments-1","exp":1}"#);
        parts[1] = &forged;
        let tampered = parts.join(".");
        assert!(!decode(&tampered).unwrap().signed_by(&key.public()));
    }

    #[test]
    fn only_rs256_with_a_key_id() {
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"1"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"Name":"x"}"#)
        );
        assert!(matches!(decode(&none), Err(TokenError::Algorithm(a)) if a == "none"));
        let hs = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"1"}"#),
            URL_SAFE_NO_PAD.encode(br#"{}"#)
        );
        assert!(matches!(decode(&hs), Err(TokenError::Algorithm(_))));
        let no_kid = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(br#"{}"#)
        );
        let err = decode(&no_kid).unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
    }

    #[test]
    fn malformed_input_is_refused_not_panicked_on() {
        for input in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.??.**",
            "e30.e30.e30",
            "W10.W10.",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(decode(input).is_err(), "{input:?} must be refused");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(input in ".{0,300}") {
            let _ = decode(&input);
        }
    }
}
