//! Workload certificates for proxies: issued by the zone from the mesh CA (synced from the
//! global as a Secret), cached so a recomputation reuses them (an unchanged certificate keeps
//! the configuration's version), and reissued once 80% of their lifetime has passed, well
//! before expiry. Envoy receives the new one over SDS and keeps its open connections.
//!
//! In the zone, certificates are issued on a thread of their own ([`Identities::background`]):
//! a key pair and a signature per proxy, for thousands of proxies at once when a mesh turns on
//! mTLS or a CA changes, would otherwise hold up every other proxy's push behind them. Until
//! its new certificate arrives, a proxy keeps the one it has while that is still valid; a
//! proxy that has none gets its configuration without it, and the rest once it is issued.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

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
    expires_at: Instant,
}

/// A proxy and the mesh its certificate is for.
type IdentityKey = (ProxyId, String);

/// What the issuing thread is asked to make.
struct Request {
    key: IdentityKey,
    authority: Arc<Authority>,
    uris: Vec<String>,
    validity: Duration,
}

/// What the issuing thread made, for [`Identities::accept`].
pub struct Done {
    key: IdentityKey,
    /// The CA and names it was asked for, to remember a failure by.
    ca_pem: String,
    uris: Vec<String>,
    result: Result<Issued, String>,
}

/// Why a proxy has no certificate in its configuration yet.
pub const PENDING: &str = "its workload certificate is being issued";

#[derive(Default)]
pub struct Identities {
    /// By proxy and the mesh the certificate is for: a zone egress holds one per mesh.
    issued: BTreeMap<IdentityKey, Issued>,
    /// The same certificates by renewal time: the reconciler asks for the next one after every
    /// event it handles, so finding it must not mean a pass over every proxy.
    renewals: BTreeSet<(Instant, IdentityKey)>,
    /// Parsed CAs by their bundle, so a CA is parsed once, not per proxy.
    authorities: BTreeMap<Vec<u8>, std::sync::Arc<Authority>>,
    /// `None`: issued inline, on the caller (tests and benchmarks of configuration building).
    worker: Option<std::sync::mpsc::Sender<Request>>,
    /// Asked of the worker and not back yet.
    pending: BTreeSet<IdentityKey>,
    /// Issuance that failed, with the CA and names it was for and why: not asked again until
    /// one of them changes.
    failed: BTreeMap<IdentityKey, (String, Vec<String>, String)>,
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
        let cached = self.issued.get(&key);
        if let Some(cached) = cached
            && cached.ca_pem == authority.cert_pem()
            && cached.uris == uris
            && now < cached.renew_at
        {
            return Ok(cached.clone());
        }
        if let Some((ca, names, reason)) = self.failed.get(&key)
            && ca == authority.cert_pem()
            && *names == uris
        {
            return Err(reason.clone());
        }
        let Some(worker) = &self.worker else {
            let issued = issue(&authority, uris, validity, now);
            return match issued {
                Ok(issued) => {
                    self.keep(key, issued.clone());
                    Ok(issued)
                }
                Err(reason) => Err(reason),
            };
        };
        if !self.pending.contains(&key) {
            let request = Request {
                key: key.clone(),
                authority,
                uris,
                validity,
            };
            if worker.send(request).is_err() {
                return Err("the certificate issuer has stopped".into());
            }
            self.pending.insert(key.clone());
        }
        // Meanwhile the certificate the proxy has, for as long as it is valid.
        match self.issued.get(&key) {
            Some(current) if now < current.expires_at => Ok(current.clone()),
            _ => Err(PENDING.into()),
        }
    }

    /// Identities whose certificates are issued on a thread of their own; what it issued
    /// comes back on the receiver, for [`Identities::accept`].
    pub fn background() -> (Identities, mpsc::UnboundedReceiver<Done>) {
        let (requests, inbox) = std::sync::mpsc::channel::<Request>();
        let inbox = Arc::new(std::sync::Mutex::new(inbox));
        let (done, results) = mpsc::unbounded_channel();
        // As many issuers as cores: when thousands are due at once, issuing is the bulk of
        // the work, and the configurations wait for it.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut started = 0;
        for i in 0..threads {
            let (inbox, done) = (inbox.clone(), done.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("atoll-cert-issuer-{i}"))
                .spawn(move || issuer(&inbox, &done));
            match spawned {
                Ok(_) => started += 1,
                Err(err) => tracing::warn!(%err, "cannot start a certificate issuer thread"),
            }
        }
        let worker = if started > 0 {
            Some(requests)
        } else {
            tracing::warn!("no certificate issuer thread; issuing inline");
            None
        };
        (
            Identities {
                worker,
                ..Identities::default()
            },
            results,
        )
    }

    /// Takes in a certificate the worker issued; the proxy to compute again with it, unless
    /// it went away meanwhile.
    pub fn accept(&mut self, done: Done) -> Option<ProxyId> {
        if !self.pending.remove(&done.key) {
            return None;
        }
        match done.result {
            Ok(issued) => {
                self.failed.remove(&done.key);
                self.keep(done.key.clone(), issued);
            }
            Err(reason) => {
                tracing::warn!(mesh = %done.key.0.0, proxy = %done.key.0.1, %reason, "cannot issue a workload certificate");
                self.failed
                    .insert(done.key.clone(), (done.ca_pem, done.uris, reason));
            }
        }
        Some(done.key.0)
    }

    /// Records `issued` as the certificate of `key`.
    fn keep(&mut self, key: IdentityKey, issued: Issued) {
        self.renewals.insert((issued.renew_at, key.clone()));
        if let Some(old) = self.issued.insert(key.clone(), issued) {
            self.renewals.remove(&(old.renew_at, key));
        }
    }

    /// Forgets a proxy that went away.
    pub fn remove(&mut self, proxy: &ProxyId) {
        let mesh_first = (proxy.clone(), String::new());
        let keys: Vec<IdentityKey> = self
            .issued
            .range(mesh_first..)
            .take_while(|((p, _), _)| p == proxy)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(old) = self.issued.remove(&key) {
                self.renewals.remove(&(old.renew_at, key));
            }
        }
        self.pending.retain(|(p, _)| p != proxy);
        self.failed.retain(|(p, _), _| p != proxy);
    }

    /// When the next certificate not already being reissued is due for renewal.
    pub fn next_renewal(&self) -> Option<Instant> {
        self.renewals
            .iter()
            .find(|(_, key)| !self.pending.contains(key))
            .map(|(at, _)| *at)
    }

    /// The proxies whose certificate is due at `now` and not already being reissued.
    pub fn due(&self, now: Instant) -> Vec<ProxyId> {
        let due: BTreeSet<&ProxyId> = self
            .renewals
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter(|(_, key)| !self.pending.contains(key))
            .map(|(_, (p, _))| p)
            .collect();
        due.into_iter().cloned().collect()
    }
}

/// An issuer thread: takes requests until the Identities (the only sender) is dropped or the
/// reconciler stops listening.
fn issuer(
    inbox: &std::sync::Mutex<std::sync::mpsc::Receiver<Request>>,
    done: &mpsc::UnboundedSender<Done>,
) {
    loop {
        let request = match inbox.lock() {
            Ok(inbox) => inbox.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(request) = request else {
            return;
        };
        let ca_pem = request.authority.cert_pem().to_string();
        let uris = request.uris.clone();
        let result = issue(
            &request.authority,
            request.uris,
            request.validity,
            Instant::now(),
        );
        let answer = Done {
            key: request.key,
            ca_pem,
            uris,
            result,
        };
        if done.send(answer).is_err() {
            return;
        }
    }
}

/// A key pair and a certificate for `uris` signed by `authority`.
fn issue(
    authority: &Authority,
    uris: Vec<String>,
    validity: Duration,
    now: Instant,
) -> Result<Issued, String> {
    let (cert_pem, key_pem) = authority
        .issue_workload(&uris, validity)
        .map_err(|e| format!("issuing a workload certificate: {e}"))?;
    metrics::counter!("atoll_xds_certificates_issued_total").increment(1);
    Ok(Issued {
        cert_pem,
        key_pem,
        ca_pem: authority.cert_pem().to_string(),
        uris,
        renew_at: now + validity.mul_f64(0.8),
        expires_at: now + validity,
    })
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

    /// In the zone, issuing happens on the worker: the caller gets an answer at once (the
    /// certificate it has, or none yet), and the new one when the worker is done.
    #[tokio::test]
    async fn the_background_issuer_answers_at_once_and_delivers_later() {
        let ca = Authority::generate("m").unwrap().to_bundle().into_bytes();
        let (mut ids, mut done) = Identities::background();
        let p = ("m".to_string(), "web-1".to_string());
        let uris = vec!["spiffe://m/web".to_string()];
        let validity = Duration::from_secs(100);
        let t0 = Instant::now();
        assert_eq!(
            ids.get(&p, &ca, uris.clone(), validity, t0).unwrap_err(),
            PENDING
        );
        // Asked once, however often the proxy is computed meanwhile.
        assert!(ids.get(&p, &ca, uris.clone(), validity, t0).is_err());
        let first = done.recv().await.expect("issued");
        assert_eq!(ids.accept(first), Some(p.clone()));
        let issued = ids.get(&p, &ca, uris.clone(), validity, t0).unwrap();
        // Renewal: the current certificate is served while the next one is made, and the
        // proxy is not due again while it is.
        let later = Instant::now() + Duration::from_secs(85);
        let during = ids.get(&p, &ca, uris.clone(), validity, later).unwrap();
        assert_eq!(during.cert_pem, issued.cert_pem);
        assert!(ids.due(later).is_empty());
        let renewed = done.recv().await.expect("renewed");
        assert!(done.try_recv().is_err(), "issued more than asked");
        assert_eq!(ids.accept(renewed), Some(p.clone()));
        let fresh = ids.get(&p, &ca, uris, validity, later).unwrap();
        assert_ne!(fresh.cert_pem, issued.cert_pem);
    }
}
