//! The address a zone proxy advertises when the operator did not set one: the address of the
//! interface it listens on, or the host's only non-loopback address when it listens on all of
//! them. An ingress never advertises loopback on its own: other zones run on other machines,
//! where `127.0.0.1` is themselves, and traffic sent there fails far from the cause.

use std::net::IpAddr;

/// Who dials the advertised address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Other zones' sidecars and egresses (an ingress): loopback is refused.
    OtherZones,
    /// This zone's own sidecars (an egress): loopback is fine when they share the host.
    ThisZone,
}

/// The variables an operator sets to fix what [`resolve`] refuses.
#[derive(Debug, Clone, Copy)]
pub struct Variables {
    /// e.g. `KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS`.
    pub advertised: &'static str,
    /// e.g. `KUMA_ZONE_INGRESS_INTERFACE` or `KUMA_ZONE_INGRESS_LISTEN`.
    pub listen: &'static str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdvertiseError {
    #[error(
        "{advertised} is not set and the listener is on {listen}, a loopback address other zones cannot reach: set {advertised} to an address other zones reach this host at (127.0.0.1 only for a single-host demo), or {listen_var} to this host's address"
    )]
    Loopback {
        advertised: &'static str,
        listen_var: &'static str,
        listen: IpAddr,
    },
    #[error(
        "{advertised} is not set, the listener is on {listen} and this host has no address other than loopback: set {advertised} to an address other zones reach this host at (127.0.0.1 only for a single-host demo)"
    )]
    NoAddress {
        advertised: &'static str,
        listen: IpAddr,
    },
    #[error(
        "{advertised} is not set, the listener is on {listen} and this host has several addresses ({candidates}): set {advertised} to the one other machines reach, or {listen_var} to it"
    )]
    Ambiguous {
        advertised: &'static str,
        listen_var: &'static str,
        listen: IpAddr,
        candidates: String,
    },
}

/// The address to advertise: `configured` when set (even loopback: the operator asked for
/// it), else derived from `listen` and the host's non-loopback `host_addresses`.
pub fn resolve(
    configured: Option<&str>,
    listen: IpAddr,
    host_addresses: &[IpAddr],
    audience: Audience,
    vars: Variables,
) -> Result<String, AdvertiseError> {
    if let Some(address) = configured.map(str::trim).filter(|a| !a.is_empty()) {
        return Ok(address.to_string());
    }
    if listen.is_loopback() {
        return match audience {
            Audience::ThisZone => Ok(listen.to_string()),
            Audience::OtherZones => Err(AdvertiseError::Loopback {
                advertised: vars.advertised,
                listen_var: vars.listen,
                listen,
            }),
        };
    }
    if !listen.is_unspecified() {
        return Ok(listen.to_string());
    }
    // 0.0.0.0 accepts IPv4 only; `::` accepts both families.
    let candidates: Vec<&IpAddr> = host_addresses
        .iter()
        .filter(|a| !a.is_loopback() && (listen.is_ipv6() || a.is_ipv4()))
        .collect();
    match candidates.as_slice() {
        [only] => Ok(only.to_string()),
        [] if audience == Audience::ThisZone => Ok("127.0.0.1".into()),
        [] => Err(AdvertiseError::NoAddress {
            advertised: vars.advertised,
            listen,
        }),
        several => Err(AdvertiseError::Ambiguous {
            advertised: vars.advertised,
            listen_var: vars.listen,
            listen,
            candidates: several
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Variables = Variables {
        advertised: "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
        listen: "KUMA_ZONE_INGRESS_INTERFACE",
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ingress(configured: Option<&str>, listen: &str, host: &[&str]) -> Result<String, String> {
        let host: Vec<IpAddr> = host.iter().map(|a| ip(a)).collect();
        resolve(configured, ip(listen), &host, Audience::OtherZones, VARS)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_configured_address_wins_even_loopback() {
        assert_eq!(
            ingress(Some("203.0.113.10"), "0.0.0.0", &["10.0.0.1", "10.0.0.2"]),
            Ok("203.0.113.10".into())
        );
        assert_eq!(
            ingress(Some("127.0.0.1"), "127.0.0.1", &[]),
            Ok("127.0.0.1".into())
        );
        assert_eq!(
            ingress(Some(" "), "10.0.0.5", &[]),
            Ok("10.0.0.5".into()),
            "blank is unset"
        );
    }

    #[test]
    fn the_listening_interface_is_advertised() {
        assert_eq!(
            ingress(None, "10.213.0.3", &["10.213.0.3", "192.0.2.2"]),
            Ok("10.213.0.3".into())
        );
        assert_eq!(
            ingress(None, "0.0.0.0", &["10.213.0.3", "fd00::2"]),
            Ok("10.213.0.3".into()),
            "0.0.0.0 accepts IPv4 only"
        );
        assert_eq!(ingress(None, "::", &["fd00::2"]), Ok("fd00::2".into()));
    }

    #[test]
    fn loopback_is_refused_to_other_zones_naming_the_variable() {
        let err = ingress(None, "127.0.0.1", &["10.0.0.1"]).unwrap_err();
        assert!(
            err.contains("KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS is not set"),
            "{err}"
        );
        assert!(err.contains("loopback"), "{err}");
        let err = ingress(None, "0.0.0.0", &[]).unwrap_err();
        assert!(err.contains("no address other than loopback"), "{err}");
        assert!(
            err.contains("KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS"),
            "{err}"
        );
        let err = ingress(None, "0.0.0.0", &["10.0.0.1", "10.0.0.2"]).unwrap_err();
        assert!(
            err.contains("several addresses (10.0.0.1, 10.0.0.2)"),
            "{err}"
        );
    }

    #[test]
    fn an_egress_may_advertise_loopback_to_its_own_zone() {
        let egress = |listen: &str, host: &[IpAddr]| {
            resolve(None, ip(listen), host, Audience::ThisZone, VARS)
        };
        assert_eq!(egress("127.0.0.1", &[]), Ok("127.0.0.1".into()));
        assert_eq!(egress("0.0.0.0", &[]), Ok("127.0.0.1".into()));
        assert_eq!(egress("0.0.0.0", &[ip("10.0.0.9")]), Ok("10.0.0.9".into()));
    }
}
