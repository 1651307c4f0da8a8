//! What each kind of token says (Kuma 2.14's claim names), how long it lasts, and what a
//! data plane token admits.

use std::collections::BTreeMap;
use std::time::Duration;

use atoll_model::types::{DataplaneGatewayType, DataplaneSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TokenError;

/// Tolerated clock difference between the issuer and the verifier.
pub const CLOCK_SKEW_SECS: i64 = 300;
/// Validity of a data plane or zone token issued without one (Kuma's default: ten years).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The registered claims every Atoll token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standard {
    pub jti: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
}

impl Standard {
    /// Claims for a token issued at `now` (Unix seconds) and valid for `valid_for`.
    pub fn new(now: i64, valid_for: Duration) -> Self {
        let seconds = i64::try_from(valid_for.as_secs()).unwrap_or(i64::MAX / 2);
        Standard {
            jti: new_jti(),
            iat: now,
            nbf: None,
            exp: now.saturating_add(seconds),
        }
    }

    /// Refuses a token outside its validity at `now`.
    pub fn check_time(&self, now: i64) -> Result<(), TokenError> {
        if now >= self.exp {
            return Err(TokenError::Expired {
                at: rfc3339(self.exp),
            });
        }
        let start = self.nbf.unwrap_or(self.iat);
        if start > now + CLOCK_SKEW_SECS {
            return Err(TokenError::NotYetValid {
                from: rfc3339(start),
            });
        }
        Ok(())
    }

    pub fn expires(&self) -> String {
        rfc3339(self.exp)
    }
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

/// A random token id in UUID form (Kuma's `jti`s are UUIDs), what revocation lists name.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails without an OS random source, where nothing else would work either;
    // an all-zero id would still be a valid (if non-unique) token id.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// What a data plane token lets its bearer register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// A sidecar (or a delegated gateway).
    #[default]
    Dataplane,
    /// A built-in MeshGateway (Atoll addition: its listeners carry TLS keys, so a sidecar's
    /// token must not be enough).
    Gateway,
    Ingress,
    Egress,
}

impl ProxyType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Dataplane => "dataplane",
            ProxyType::Gateway => "gateway",
            ProxyType::Ingress => "ingress",
            ProxyType::Egress => "egress",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dataplane" => Some(ProxyType::Dataplane),
            "gateway" => Some(ProxyType::Gateway),
            "ingress" => Some(ProxyType::Ingress),
            "egress" => Some(ProxyType::Egress),
            _ => None,
        }
    }
}

/// A data plane token: which mesh, optionally which Dataplane and which tag values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneClaims {
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Mesh")]
    pub mesh: String,
    #[serde(rename = "Tags", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Type", default)]
    pub proxy_type: ProxyType,
    #[serde(flatten)]
    pub standard: Standard,
}

/// A zone token: a zone proxy of `zone` with the given scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneClaims {
    #[serde(rename = "Zone")]
    pub zone: String,
    #[serde(rename = "Scope", default)]
    pub scope: Vec<String>,
    #[serde(flatten)]
    pub standard: Standard,
}

/// A user token: a name and the groups access control decides by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Groups", default)]
    pub groups: Vec<String>,
    #[serde(flatten)]
    pub standard: Standard,
}

/// Zone token scopes Atoll knows.
pub const ZONE_SCOPES: &[&str] = &["ingress", "egress"];

/// Which kind of token `claims` look like, for an error that says what was presented instead.
pub fn kind_of(claims: &Value) -> &'static str {
    if claims.get("Zone").is_some() {
        "zone"
    } else if claims.get("Groups").is_some() {
        "user"
    } else if claims.get("Mesh").is_some() {
        "dataplane"
    } else {
        "unknown"
    }
}

/// Why a valid data plane token does not admit a Dataplane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// What a Dataplane is, as a token sees it.
pub fn proxy_type_of(spec: &DataplaneSpec) -> ProxyType {
    let builtin = spec
        .networking
        .as_ref()
        .and_then(|n| n.gateway.as_ref())
        .is_some_and(|g| g.gateway_type == DataplaneGatewayType::Builtin);
    if builtin {
        ProxyType::Gateway
    } else {
        ProxyType::Dataplane
    }
}

/// Every tag set the Dataplane claims: one per inbound, and the gateway's.
fn tag_sets(spec: &DataplaneSpec) -> Vec<&BTreeMap<String, String>> {
    let Some(net) = spec.networking.as_ref() else {
        return Vec::new();
    };
    net.inbound
        .iter()
        .map(|i| &i.tags)
        .chain(net.gateway.as_ref().map(|g| &g.tags))
        .collect()
}

impl DataplaneClaims {
    /// Whether this token admits Dataplane `name` in `mesh` with `spec`: same mesh, same name
    /// when the token names one, a matching proxy type, and, for every tag the token lists,
    /// only listed values on every inbound and on the gateway (Kuma's rule).
    pub fn admits(&self, mesh: &str, name: &str, spec: &DataplaneSpec) -> Result<(), Refusal> {
        self.admits_proxy(mesh, name)?;
        let actual = proxy_type_of(spec);
        if actual != self.proxy_type {
            return Err(Refusal(format!(
                "the token is for a proxy of type {:?}, but this Dataplane is a {}{}",
                self.proxy_type.as_str(),
                actual.as_str(),
                match actual {
                    ProxyType::Gateway => " (issue a token with --type gateway)",
                    _ => "",
                }
            )));
        }
        for (tag, allowed) in &self.tags {
            for set in tag_sets(spec) {
                if let Some(value) = set.get(tag)
                    && !allowed.contains(value)
                {
                    return Err(Refusal(format!(
                        "tag {tag}={value} is not allowed by the token, which allows {tag} to be {}",
                        allowed.join(" or ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// The checks that need no Dataplane: mesh and name (for an ADS stream or a
    /// deregistration that names a proxy).
    pub fn admits_proxy(&self, mesh: &str, name: &str) -> Result<(), Refusal> {
        if self.mesh != mesh {
            return Err(Refusal(format!(
                "the token is for mesh {:?}, not {mesh:?}",
                self.mesh
            )));
        }
        if !self.name.is_empty() && self.name != name {
            return Err(Refusal(format!(
                "the token is for the Dataplane {:?}, not {name:?}",
                self.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> DataplaneSpec {
        let resource = atoll_model::parse_documents(yaml)
            .remove(0)
            .outcome
            .expect("valid");
        match resource.spec {
            atoll_model::Spec::Dataplane(dp) => dp,
            _ => panic!("not a dataplane"),
        }
    }

    fn claims(name: &str, tags: &[(&str, &[&str])], proxy_type: ProxyType) -> DataplaneClaims {
        DataplaneClaims {
            name: name.into(),
            mesh: "default".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            proxy_type,
            standard: Standard::new(0, Duration::from_secs(60)),
        }
    }

    const WEB: &str = "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n      team: a\n";
    const GATEWAY: &str = "type: Dataplane\nmesh: default\nname: edge-1\nnetworking:\n  address: 10.0.0.2\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: edge\n";

    #[test]
    fn admission_rules() {
        let web = spec(WEB);
        let gateway = spec(GATEWAY);
        let any = claims("", &[], ProxyType::Dataplane);
        assert!(any.admits("default", "web-1", &web).is_ok());
        let err = any.admits("other", "web-1", &web).unwrap_err();
        assert!(err.0.contains("mesh \"default\""), "{err}");
        let named = claims("web-2", &[], ProxyType::Dataplane);
        assert!(
            named
                .admits("default", "web-1", &web)
                .unwrap_err()
                .0
                .contains("web-2")
        );
        let for_backend = claims(
            "",
            &[("kuma.io/service", &["backend"])],
            ProxyType::Dataplane,
        );
        let err = for_backend.admits("default", "web-1", &web).unwrap_err();
        assert!(err.0.contains("kuma.io/service=web"), "{err}");
        let for_web = claims(
            "",
            &[("kuma.io/service", &["web", "api"])],
            ProxyType::Dataplane,
        );
        assert!(for_web.admits("default", "web-1", &web).is_ok());
        // A tag the Dataplane does not carry restricts nothing (Kuma's rule).
        let for_region = claims("", &[("region", &["eu"])], ProxyType::Dataplane);
        assert!(for_region.admits("default", "web-1", &web).is_ok());
        // A sidecar's token never admits a built-in gateway, nor the other way round.
        let err = any.admits("default", "edge-1", &gateway).unwrap_err();
        assert!(err.0.contains("--type gateway"), "{err}");
        let gw = claims("", &[("kuma.io/service", &["edge"])], ProxyType::Gateway);
        assert!(gw.admits("default", "edge-1", &gateway).is_ok());
        assert!(gw.admits("default", "web-1", &web).is_err());
        let ingress = claims("", &[], ProxyType::Ingress);
        assert!(ingress.admits("default", "web-1", &web).is_err());
    }

    #[test]
    fn claims_use_kumas_names_and_times_are_checked() {
        let c = claims(
            "web-1",
            &[("kuma.io/service", &["web"])],
            ProxyType::Dataplane,
        );
        let value = serde_json::to_value(&c).unwrap();
        assert_eq!(value["Name"], "web-1");
        assert_eq!(value["Mesh"], "default");
        assert_eq!(value["Tags"]["kuma.io/service"][0], "web");
        assert_eq!(value["Type"], "dataplane");
        assert!(value["jti"].as_str().unwrap().len() == 36);
        assert_eq!(kind_of(&value), "dataplane");
        let back: DataplaneClaims = serde_json::from_value(value).unwrap();
        assert_eq!(back, c);

        let standard = Standard::new(1_000, Duration::from_secs(60));
        assert!(standard.check_time(1_000).is_ok());
        assert!(matches!(
            standard.check_time(1_060),
            Err(TokenError::Expired { .. })
        ));
        assert!(matches!(
            standard.check_time(1_000 - CLOCK_SKEW_SECS - 1),
            Err(TokenError::NotYetValid { .. })
        ));
        assert_ne!(Standard::new(0, DEFAULT_VALIDITY).jti, standard.jti);
    }
}
