//! Workload certificates for proxies: issued by the zone from the mesh CA (synced from the
//! global as a Secret), cached so a recomputation reuses them (an unchanged certificate keeps
//! the configuration's version), and reissued once 80% of their lifetime has passed, well
//! before expiry. Envoy receives the new one over SDS and keeps its open connections.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atoll_tls::Authority;

use super::deps::ProxyId;

/// A certificate handed to a proxy.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// What it was issued for: a change of either means a new certificate.
    ca_pem: String,
    uris: Vec<String>,
    renew_at: Instant,
}

#[derive(Default)]
pub struct Identities {
    /// By proxy and the mesh the certificate is for: a zone egress holds one per mesh.
    issued: BTreeMap<(ProxyId, String), Issued>,
    /// Parsed CAs by their bundle, so a CA is parsed once, not per proxy.
    authorities: BTreeMap<Vec<u8>, std::sync::Arc<Authority>>,
}

impl Identities {
    /// The certificate for `proxy` naming `uris`, from the CA in `bundle`, valid for
    /// `validity`: the cached one while it is fresh and matches, a new one otherwise.
    pub fn get(
        &mut self,
        proxy: &ProxyId,
        bundle: &[u8],
        uris: Vec<String>,
        validity: Duration,
        now: Instant,
    ) -> Result<Issued, String> {
        self.get_in(proxy, &proxy.0, bundle, uris, validity, now)
    }

    /// [`Identities::get`] for a proxy that holds certificates of several meshes.
    pub fn get_in(
        &mut self,
        proxy: &ProxyId,
        mesh: &str,
        bundle: &[u8],
        uris: Vec<String>,
        validity: Duration,
        now: Instant,
    ) -> Result<Issued, String> {
        let key = (proxy.clone(), mesh.to_string());
        let authority = match self.authorities.get(bundle) {
            Some(a) => a.clone(),
            None => {
                let text =
                    std::str::from_utf8(bundle).map_err(|_| "the mesh CA is not PEM text")?;
                let authority = std::sync::Arc::new(
                    Authority::from_bundle(text).map_err(|e| format!("mesh CA: {e}"))?,
                );
                self.authorities.insert(bundle.to_vec(), authority.clone());
                authority
            }
        };
        if let Some(cached) = self.issued.get(&key)
            && cached.ca_pem == authority.cert_pem()
            && cached.uris == uris
            && now < cached.renew_at
        {
            return Ok(cached.clone());
        }
        let (cert_pem, key_pem) = authority
            .issue_workload(&uris, validity)
            .map_err(|e| format!("issuing a workload certificate: {e}"))?;
        metrics::counter!("atoll_xds_certificates_issued_total").increment(1);
        let issued = Issued {
            cert_pem,
            key_pem,
            ca_pem: authority.cert_pem().to_string(),
            uris,
            renew_at: now + validity.mul_f64(0.8),
        };
        self.issued.insert(key, issued.clone());
        Ok(issued)
    }

    /// Forgets a proxy that went away.
    pub fn remove(&mut self, proxy: &ProxyId) {
        self.issued.retain(|(p, _), _| p != proxy);
    }

    /// When the next certificate is due for renewal.
    pub fn next_renewal(&self) -> Option<Instant> {
        self.issued.values().map(|i| i.renew_at).min()
    }

    /// The proxies whose certificate is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<ProxyId> {
        let due: std::collections::BTreeSet<&ProxyId> = self
            .issued
            .iter()
            .filter(|(_, i)| i.renew_at <= now)
            .map(|((p, _), _)| p)
            .collect();
        due.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_reused_until_renewal_is_due() {
        let ca = Authority::generate("m").unwrap().to_bundle().into_bytes();
        let mut ids = Identities::default();
        let p = ("m".to_string(), "web-1".to_string());
        let uris = vec!["spiffe://m/web".to_string()];
        let t0 = Instant::now();
        let validity = Duration::from_secs(100);
        let first = ids.get(&p, &ca, uris.clone(), validity, t0).unwrap();
        let same = ids
            .get(
                &p,
                &ca,
                uris.clone(),
                validity,
                t0 + Duration::from_secs(79),
            )
            .unwrap();
        assert_eq!(first.cert_pem, same.cert_pem);
        assert_eq!(ids.next_renewal(), Some(t0 + Duration::from_secs(80)));
        assert!(ids.due(t0 + Duration::from_secs(79)).is_empty());
        assert_eq!(ids.due(t0 + Duration::from_secs(80)), vec![p.clone()]);
        let renewed = ids
            .get(&p, &ca, uris, validity, t0 + Duration::from_secs(80))
            .unwrap();
        assert_ne!(first.cert_pem, renewed.cert_pem);
        let other_service = ids
            .get(
                &p,
                &ca,
                vec!["spiffe://m/api".into()],
                validity,
                t0 + Duration::from_secs(81),
            )
            .unwrap();
        assert_ne!(renewed.cert_pem, other_service.cert_pem);
    }
}
