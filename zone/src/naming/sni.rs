//! The SNI that names a mesh service across zones: `<service>.<port>.<mesh>.atoll`.
//!
//! One function, used by the client side (the cluster's SNI in a sidecar or gateway) and by the
//! ingress side (the keys of the ingress's routing table), so the two can never disagree
//! (Kuma once shipped a release where they did for port-numbered routes, kumahq/kuma#17739).
//!
//! Each part becomes one DNS label: `a-z`, `0-9` and inner `-` stay; any other byte becomes
//! `x` and two hex digits (so `x` itself is `x78`, `_` is `x5f`); a label longer than 63 bytes
//! is cut and suffixed with a hash of the whole. `<port>` is the port number or `any` when the
//! caller names no port.

use std::hash::Hasher;

const SUFFIX: &str = "atoll";
const MAX_LABEL: usize = 63;

/// The SNI for `service` in `mesh`, on `port` when one is named.
pub fn service_sni(mesh: &str, service: &str, port: Option<u32>) -> String {
    let port = port.map_or_else(|| "any".to_string(), |p| p.to_string());
    format!("{}.{port}.{}.{SUFFIX}", label(service), label(mesh))
}

/// The SNI a sidecar sends to the zone egress for MeshExternalService `name` of `mesh`:
/// `<name>.mes.<mesh>.atoll` (a mesh service's second label is a port or `any`, never `mes`).
pub fn external_sni(mesh: &str, name: &str) -> String {
    format!("{}.mes.{}.{SUFFIX}", label(name), label(mesh))
}

/// The `any`-port form of a service SNI (`<service>.any.<mesh>.atoll`), for an egress that
/// forwards every port form of a service to the same remote ingresses; `None` for other names.
pub fn any_port_form(sni: &str) -> Option<String> {
    let mut labels: Vec<&str> = sni.split('.').collect();
    if labels.len() != 4 || labels[3] != SUFFIX {
        return None;
    }
    labels[1] = "any";
    Some(labels.join("."))
}

fn label(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, &b) in bytes.iter().enumerate() {
        let edge = i == 0 || i == bytes.len() - 1;
        match b {
            b'a'..=b'w' | b'y' | b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' if !edge => out.push('-'),
            other => out.push_str(&format!("x{other:02x}")),
        }
    }
    if out.is_empty() {
        out.push_str("x00");
    }
    if out.len() > MAX_LABEL {
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        // Cut on a char boundary (all ASCII here) and keep the label unique by the hash.
        out.truncate(MAX_LABEL - 17);
        out = format!("{}-{:016x}", out.trim_end_matches('-'), h.finish());
    }
    out
}

/// Whether `name` is a valid DNS name (what SNI requires).
pub fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(
            service_sni("default", "backend", None),
            "backend.any.default.atoll"
        );
        assert_eq!(
            service_sni("default", "backend_kuma-demo_svc_80", Some(80)),
            "backendx5fkuma-demox5fsvcx5f80.80.default.atoll"
        );
        assert_eq!(service_sni("m", "x", Some(1)), "x78.1.m.atoll");
        assert_ne!(service_sni("m", "a_b", None), service_sni("m", "a.b", None));
    }

    proptest! {
        #[test]
        fn always_a_dns_name(mesh in "[a-z0-9-]{1,63}", service in any::<String>(), port in proptest::option::of(1u32..65536)) {
            let sni = service_sni(&mesh, &service, port);
            prop_assert!(is_dns_name(&sni), "{sni}");
        }

        #[test]
        fn distinct_services_get_distinct_names(a in "[ -~]{1,40}", b in "[ -~]{1,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(service_sni("m", &a, None), service_sni("m", &b, None));
        }
    }
}
