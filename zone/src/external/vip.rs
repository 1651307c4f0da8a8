//! VIPs for MeshExternalServices without a stored allocation: each service's address is a
//! function of its identity (a stable hash of mesh and name into the CIDR), so every zone,
//! every restart and every re-sync computes the same VIP and nothing is written. Two services
//! hashing to one address are settled by age: the older keeps it, the newer probes onwards.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range, e.g. `242.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (address/prefix length)"))?;
        let base: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("prefix length {prefix:?} must be 0 to {bits}"))?;
        // Room for at least a few services.
        if bits - prefix < 2 {
            return Err(format!("{text} leaves no room for VIPs"));
        }
        Ok(Cidr { base, prefix })
    }
}

impl Default for Cidr {
    fn default() -> Self {
        Cidr {
            base: IpAddr::V4(Ipv4Addr::new(242, 0, 0, 0)),
            prefix: 8,
        }
    }
}

impl Cidr {
    fn bits(&self) -> u32 {
        if self.base.is_ipv4() { 32 } else { 128 }
    }

    /// Usable host addresses (the network and, for IPv4, the broadcast address excluded).
    fn hosts(&self) -> u128 {
        let size = 1u128.checked_shl(self.bits() - u32::from(self.prefix));
        size.unwrap_or(u128::MAX) - 2
    }

    fn nth_host(&self, n: u128) -> IpAddr {
        let host_bits = self.bits() - u32::from(self.prefix);
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        match self.base {
            IpAddr::V4(v4) => {
                let network = u128::from(u32::from(v4)) & !mask & u128::from(u32::MAX);
                IpAddr::V4(Ipv4Addr::from((network | (n + 1)) as u32))
            }
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from((u128::from(v6) & !mask) | (n + 1))),
        }
    }
}

/// FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
fn stable_hash(parts: &[&str]) -> u128 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    u128::from(h)
}

/// A service to place: (mesh, name) and its creation time (RFC 3339).
pub struct Candidate<'a> {
    pub mesh: &'a str,
    pub name: &'a str,
    pub created: &'a str,
}

/// Every candidate's VIP; candidates beyond the range's size get none.
pub fn allocate(cidr: &Cidr, candidates: &[Candidate<'_>]) -> BTreeMap<(String, String), IpAddr> {
    let mut order: Vec<&Candidate<'_>> = candidates.iter().collect();
    order.sort_by(|a, b| (a.created, a.mesh, a.name).cmp(&(b.created, b.mesh, b.name)));
    let hosts = cidr.hosts();
    let mut taken = BTreeSet::new();
    let mut out = BTreeMap::new();
    for c in order {
        if taken.len() as u128 >= hosts {
            break;
        }
        let mut slot = stable_hash(&[c.mesh, c.name]) % hosts;
        while !taken.insert(slot) {
            slot = (slot + 1) % hosts;
        }
        out.insert(
            (c.mesh.to_string(), c.name.to_string()),
            cidr.nth_host(slot),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(name: &'a str, created: &'a str) -> Candidate<'a> {
        Candidate {
            mesh: "default",
            name,
            created,
        }
    }

    #[test]
    fn vips_are_in_range_unique_and_independent_of_order_and_newcomers() {
        let cidr: Cidr = "242.0.0.0/8".parse().unwrap();
        let a = allocate(&cidr, &[c("a", "1"), c("b", "2")]);
        let b = allocate(&cidr, &[c("b", "2"), c("x", "3"), c("a", "1")]);
        assert_eq!(
            a[&("default".into(), "a".into())],
            b[&("default".into(), "a".into())]
        );
        assert_eq!(
            a[&("default".into(), "b".into())],
            b[&("default".into(), "b".into())]
        );
        for ip in b.values() {
            let IpAddr::V4(v4) = ip else { panic!() };
            assert_eq!(v4.octets()[0], 242);
        }
        assert_eq!(b.values().collect::<BTreeSet<_>>().len(), 3);
    }

    #[test]
    fn a_full_small_range_gives_every_address_once_and_the_elder_keeps_its_own() {
        let cidr: Cidr = "10.0.0.0/30".parse().unwrap();
        assert_eq!(cidr.hosts(), 2);
        let names: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
        let created: Vec<String> = (0..5).map(|i| format!("2026-01-0{i}")).collect();
        let all: Vec<Candidate<'_>> = names.iter().zip(&created).map(|(n, t)| c(n, t)).collect();
        let got = allocate(&cidr, &all);
        assert_eq!(got.len(), 2, "only two addresses: the two oldest get them");
        let ips: BTreeSet<_> = got.values().copied().collect();
        assert_eq!(
            ips,
            BTreeSet::from(["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()])
        );
        let alone = allocate(&cidr, &all[..1]);
        assert_eq!(
            alone[&("default".into(), "s0".into())],
            got[&("default".into(), "s0".into())]
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert!(
            "242.0.0.0"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not a CIDR")
        );
        assert!(
            "242.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!(
            "10.0.0.0/31"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("no room")
        );
        assert!("fd00::/64".parse::<Cidr>().is_ok());
    }
}
