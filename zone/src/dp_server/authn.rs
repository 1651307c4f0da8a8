//! Who may use the DP server: data planes with a data plane token (to register, to open the
//! ADS stream of their own proxy, to deregister) and zone proxies with a zone token of this
//! zone (to follow the routing table). The token travels as `authorization: Bearer <token>`,
//! an HTTP header or gRPC metadata alike.
//!
//! `none` (`KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE`, `..._ZONE_PROXY_TYPE`) lets anything in and
//! exists for development only; it is announced with a warning at start.

use atoll_api::rest::ApiError;
use atoll_auth::{Credentials, DataplaneClaims, Refusal, TokenError};
use atoll_model::types::DataplaneSpec;
use axum::http::HeaderMap;

/// How data planes authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpAuthn {
    DpToken,
    None,
}

/// How zone proxies (a separate ingress or egress) authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneProxyAuthn {
    ZoneToken,
    None,
}

/// What a data plane's request or stream may do once its credential checked out.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Authentication is off: anything.
    Any,
    Token(Box<DataplaneClaims>),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credential, or one that is not valid.
    Unauthenticated(String),
    /// A valid credential that does not cover what is asked.
    Forbidden(String),
    /// The signing keys have not arrived yet.
    NotReady(String),
}

impl Denied {
    fn reason(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(_) => "unauthenticated",
            Denied::Forbidden(_) => "forbidden",
            Denied::NotReady(_) => "not_ready",
        }
    }

    fn counted(self, who: &'static str) -> Self {
        metrics::counter!("atoll_dp_server_auth_refusals_total", "client" => who, "reason" => self.reason()).increment(1);
        self
    }

    pub fn into_status(self) -> tonic::Status {
        match self {
            Denied::Unauthenticated(m) => tonic::Status::unauthenticated(m),
            Denied::Forbidden(m) => tonic::Status::permission_denied(m),
            Denied::NotReady(m) => tonic::Status::unavailable(m),
        }
    }

    pub fn into_api_error(self) -> ApiError {
        match self {
            Denied::Unauthenticated(m) => ApiError::unauthorized(m),
            Denied::Forbidden(m) => ApiError::forbidden(m),
            Denied::NotReady(m) => ApiError::unavailable(m),
        }
    }
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Self {
        Denied::Forbidden(format!(
            "the data plane token does not allow this: {refusal}"
        ))
    }
}

/// `Bearer <token>` from an `authorization` value.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    value
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

pub fn bearer_header(headers: &HeaderMap) -> Option<&str> {
    bearer(
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

pub fn bearer_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    bearer(metadata.get("authorization").and_then(|v| v.to_str().ok()))
}

fn refused(err: TokenError, what: &str) -> Denied {
    match err {
        TokenError::NotReady => Denied::NotReady(err.to_string()),
        other => Denied::Unauthenticated(format!("the {what} is refused: {other}")),
    }
}

#[derive(Clone)]
pub struct Authenticator {
    pub credentials: Credentials,
    pub dataplanes: DpAuthn,
    pub zone_proxies: ZoneProxyAuthn,
    /// This zone: zone tokens must name it.
    pub zone: String,
}

impl Authenticator {
    /// Checks a data plane's credential.
    pub fn dataplane(&self, token: Option<&str>) -> Result<Grant, Denied> {
        if self.dataplanes == DpAuthn::None {
            return Ok(Grant::Any);
        }
        let token = token.ok_or_else(|| {
            Denied::Unauthenticated(
                "a data plane token is required (atoll-dp --dataplane-token-file; issue one with `atollctl generate dataplane-token`)".into(),
            )
            .counted("dataplane")
        })?;
        self.credentials
            .current()
            .verify_dataplane(token, atoll_auth::unix_now())
            .map(|claims| Grant::Token(Box::new(claims)))
            .map_err(|e| refused(e, "data plane token").counted("dataplane"))
    }

    /// Whether `token` can belong to any proxy of this zone (a data plane token or a zone
    /// token): checked before a stream is read, so nobody without one can hold a stream open
    /// waiting for a first request. Which proxy it admits is checked once the request names it.
    pub fn any_proxy(&self, token: Option<&str>) -> Result<(), Denied> {
        if self.dataplanes == DpAuthn::None || self.zone_proxies == ZoneProxyAuthn::None {
            return Ok(());
        }
        let now = atoll_auth::unix_now();
        let keys = self.credentials.current();
        let Some(token) = token else {
            return Err(Denied::Unauthenticated(
                "a data plane token (or, for a zone egress, a zone token) is required".into(),
            )
            .counted("dataplane"));
        };
        let as_dataplane = match keys.verify_dataplane(token, now) {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if keys.verify_zone(token, now).is_ok() {
            return Ok(());
        }
        // The data plane check's own reason (revoked, expired, keys not loaded yet): what the
        // full check would have said to the common caller.
        Err(refused(as_dataplane, "data plane token").counted("dataplane"))
    }

    /// Checks a zone proxy's credential for `role` (`ingress` or `egress`).
    pub fn zone_proxy(&self, token: Option<&str>, role: &str) -> Result<(), Denied> {
        if self.zone_proxies == ZoneProxyAuthn::None {
            return Ok(());
        }
        let token = token.ok_or_else(|| {
            Denied::Unauthenticated(format!(
                "a zone token with scope {role} is required (atoll-zone {role} --zone-token-file; issue one on the global with `atollctl generate zone-token --zone {} --scope {role}`)",
                self.zone
            ))
            .counted("zone_proxy")
        })?;
        let claims = self
            .credentials
            .current()
            .verify_zone(token, atoll_auth::unix_now())
            .map_err(|e| refused(e, "zone token").counted("zone_proxy"))?;
        if claims.zone != self.zone {
            return Err(Denied::Forbidden(format!(
                "the zone token is for zone {:?}; this is zone {:?}",
                claims.zone, self.zone
            ))
            .counted("zone_proxy"));
        }
        if !claims.scope.iter().any(|s| s == role) {
            return Err(Denied::Forbidden(format!(
                "the zone token's scope ({}) does not include {role}",
                claims.scope.join(", ")
            ))
            .counted("zone_proxy"));
        }
        Ok(())
    }
}

impl Grant {
    /// Whether this grant admits Dataplane `name` in `mesh` as `spec` describes it.
    pub fn admits(&self, mesh: &str, name: &str, spec: &DataplaneSpec) -> Result<(), Denied> {
        match self {
            Grant::Any => Ok(()),
            Grant::Token(claims) => claims
                .admits(mesh, name, spec)
                .map_err(|r| Denied::from(r).counted("dataplane")),
        }
    }

    /// Whether this grant may speak for the proxy `name` in `mesh` at all.
    pub fn admits_proxy(&self, mesh: &str, name: &str) -> Result<(), Denied> {
        match self {
            Grant::Any => Ok(()),
            Grant::Token(claims) => claims
                .admits_proxy(mesh, name)
                .map_err(|r| Denied::from(r).counted("dataplane")),
        }
    }

    /// The id of the token behind this grant, for logs (never the token itself).
    pub fn jti(&self) -> Option<&str> {
        match self {
            Grant::Any => None,
            Grant::Token(claims) => Some(&claims.standard.jti),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use atoll_auth::keyring::SecretEntry;
    use atoll_auth::{Keyring, Purpose, Standard, ZoneClaims};

    use super::*;

    fn authenticator(
        dataplanes: DpAuthn,
        zone_proxies: ZoneProxyAuthn,
    ) -> (Authenticator, Keyring) {
        let key = atoll_auth::keys::generate_pem().unwrap();
        let keyring = Keyring::build([SecretEntry {
            kind: atoll_model::Kind::GlobalSecret,
            mesh: None,
            name: "zone-token-signing-key-1",
            data: key.as_bytes(),
        }]);
        let auth = Authenticator {
            credentials: Credentials::fixed(keyring.clone()),
            dataplanes,
            zone_proxies,
            zone: "zone-1".into(),
        };
        (auth, keyring)
    }

    fn zone_token(keyring: &Keyring, zone: &str, scope: &[&str]) -> String {
        keyring
            .issue(
                &Purpose::Zone,
                &ZoneClaims {
                    zone: zone.into(),
                    scope: scope.iter().map(|s| s.to_string()).collect(),
                    standard: Standard::new(atoll_auth::unix_now(), Duration::from_secs(60)),
                },
            )
            .unwrap()
    }

    #[test]
    fn zone_tokens_must_name_this_zone_and_the_role() {
        let (auth, keyring) = authenticator(DpAuthn::DpToken, ZoneProxyAuthn::ZoneToken);
        assert!(matches!(
            auth.zone_proxy(None, "ingress"),
            Err(Denied::Unauthenticated(_))
        ));
        let ours = zone_token(&keyring, "zone-1", &["ingress"]);
        assert!(auth.zone_proxy(Some(&ours), "ingress").is_ok());
        let Err(Denied::Forbidden(why)) = auth.zone_proxy(Some(&ours), "egress") else {
            panic!("an ingress token is not an egress's");
        };
        assert!(why.contains("does not include egress"), "{why}");
        let theirs = zone_token(&keyring, "zone-2", &["ingress"]);
        let Err(Denied::Forbidden(why)) = auth.zone_proxy(Some(&theirs), "ingress") else {
            panic!("another zone's token must not pass");
        };
        assert!(why.contains("zone-2"), "{why}");
        // A zone token is no data plane token.
        let Err(Denied::Unauthenticated(why)) = auth.dataplane(Some(&ours)) else {
            panic!("a zone token must not admit a data plane");
        };
        assert!(why.contains("zone token"), "{why}");
    }

    #[test]
    fn none_admits_anything_and_only_when_chosen() {
        let (open, _) = authenticator(DpAuthn::None, ZoneProxyAuthn::None);
        assert!(matches!(open.dataplane(None), Ok(Grant::Any)));
        assert!(open.zone_proxy(None, "ingress").is_ok());
        let (closed, _) = authenticator(DpAuthn::DpToken, ZoneProxyAuthn::ZoneToken);
        assert!(closed.dataplane(None).is_err());
        assert_eq!(bearer(Some("Bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
    }
}
