//! The KDS CA: signs the global's KDS server certificate and every zone's client certificate.
//!
//! It lives in the store as the GlobalSecret `atoll-kds-ca` (PEM certificate then key), so all
//! replicas on one database share it and it survives restarts. Generating it is singleton
//! work: only the replica holding the `kds-ca` leadership creates it, the others wait for it.

use std::time::Duration;

use anyhow::Context;
use atoll_model::types::SecretSpec;
use atoll_model::{Kind, Meta, Resource, Spec};
use atoll_store::{Key, Precondition, Store, StoreError};
use atoll_tls::Authority;
use tokio::sync::watch;

/// The GlobalSecret holding the CA; the API refuses to change or delete it.
pub const SECRET_NAME: &str = "atoll-kds-ca";
const LEADERSHIP: &str = "kds-ca";
/// The longest pause between two looks for the CA while another replica creates it.
const MAX_POLL: Duration = Duration::from_secs(2);

fn key() -> Key {
    Key::new(Kind::GlobalSecret, None, SECRET_NAME)
}

/// Loads the CA, generating it first when this replica is the one to do so; waits out a
/// database that is briefly away. `None` when `stop` fires first (the caller is shutting down).
///
/// Polls with a backoff capped at [`MAX_POLL`], so a replica starting next to the leader
/// picks the CA up within seconds of its creation without hammering the database.
pub async fn ensure_kds_ca(
    store: &dyn Store,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Authority>> {
    let started = std::time::Instant::now();
    let mut backoff = atoll_retry::Backoff::new(Duration::from_millis(100), MAX_POLL);
    loop {
        match attempt(store).await {
            Ok(Some(ca)) => return Ok(Some(ca)),
            Ok(None) => tracing::info!(
                waited_secs = started.elapsed().as_secs(),
                "waiting for the replica that leads {LEADERSHIP} to create the KDS CA"
            ),
            Err(Failure::Store(err)) => tracing::warn!(
                %err,
                waited_secs = started.elapsed().as_secs(),
                "cannot read or create the KDS CA yet; retrying"
            ),
            Err(Failure::Fatal(err)) => return Err(err),
        }
        if !backoff.wait(&mut stop).await {
            return Ok(None);
        }
    }
}

/// Why one attempt failed: a store that is away is retried, anything else is not.
enum Failure {
    Store(StoreError),
    Fatal(anyhow::Error),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Failure::Store(err),
            other => Failure::Fatal(other.into()),
        }
    }
}

/// Loads the CA, or creates it when this replica leads; `None` while another replica leads.
async fn attempt(store: &dyn Store) -> Result<Option<Authority>, Failure> {
    if let Some(ca) = load(store).await? {
        return Ok(Some(ca));
    }
    let Some(guard) = store.try_lead(LEADERSHIP).await? else {
        return Ok(None);
    };
    // Checked again under leadership: another replica may have just finished.
    let result = match load(store).await {
        Ok(None) => match generate(store).await {
            Ok(()) => load(store).await,
            Err(err) => Err(err),
        },
        other => other,
    };
    guard.release().await;
    result
}

async fn load(store: &dyn Store) -> Result<Option<Authority>, Failure> {
    let Some(stored) = store.get(&key()).await? else {
        return Ok(None);
    };
    parse(&stored.resource).map(Some).map_err(Failure::Fatal)
}

fn parse(resource: &Resource) -> anyhow::Result<Authority> {
    let Spec::GlobalSecret(secret) = &resource.spec else {
        anyhow::bail!("{SECRET_NAME} is not a GlobalSecret");
    };
    let bundle = String::from_utf8(secret.bytes().context("decoding the KDS CA secret")?)
        .context("the KDS CA secret is not PEM text")?;
    Authority::from_bundle(&bundle).context("loading the KDS CA")
}

async fn generate(store: &dyn Store) -> Result<(), Failure> {
    let ca = Authority::generate("Atoll KDS CA").map_err(|e| Failure::Fatal(e.into()))?;
    let bundle = ca.to_bundle();
    let secret = Resource::new(
        Meta {
            name: SECRET_NAME.into(),
            ..Default::default()
        },
        Spec::GlobalSecret(SecretSpec::from_bytes(bundle.as_bytes())),
    );
    match store.put(secret, Precondition::Absent).await {
        Ok(_) => {
            tracing::info!("generated the KDS CA (GlobalSecret {SECRET_NAME})");
            Ok(())
        }
        Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Issues zone client certificates from the KDS CA for the REST API.
pub struct ZoneIssuer(pub std::sync::Arc<Authority>);

impl ZoneIssuer {
    fn issued(
        &self,
        certificate: String,
        key: Option<String>,
    ) -> Result<atoll_api::IssuedCertificate, String> {
        let serial = atoll_tls::pem_certificate_serial(&certificate).map_err(|e| e.to_string())?;
        Ok(atoll_api::IssuedCertificate {
            certificate,
            key,
            ca_certificate: self.0.cert_pem().to_string(),
            serial,
        })
    }
}

impl atoll_api::ZoneCertificateIssuer for ZoneIssuer {
    fn issue(&self, zone: &str) -> Result<atoll_api::IssuedCertificate, String> {
        let (certificate, key) = self.0.issue_client(zone).map_err(|e| e.to_string())?;
        self.issued(certificate, Some(key))
    }

    fn issue_for_csr(
        &self,
        zone: &str,
        csr_pem: &str,
    ) -> Result<atoll_api::IssuedCertificate, atoll_api::CsrError> {
        let certificate = self
            .0
            .issue_client_for_csr(zone, csr_pem)
            .map_err(|e| match e {
                atoll_tls::TlsError::InvalidCsr(why) => atoll_api::CsrError::Refused(why),
                other => atoll_api::CsrError::Failed(other.to_string()),
            })?;
        self.issued(certificate, None)
            .map_err(atoll_api::CsrError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn generated_once_and_shared() {
        let store: Arc<dyn Store> = Arc::new(atoll_store::MemoryStore::new());
        let (_tx, stop) = watch::channel(false);
        let (a, b) = tokio::join!(
            ensure_kds_ca(store.as_ref(), stop.clone()),
            ensure_kds_ca(store.as_ref(), stop)
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert_eq!(
            a.cert_pem(),
            b.cert_pem(),
            "concurrent starts must end with one CA"
        );
        let again = ensure_kds_ca(store.as_ref(), watch::channel(false).1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.cert_pem(), a.cert_pem());
    }

    #[tokio::test]
    async fn a_replica_that_does_not_lead_waits_for_the_leaders_ca() {
        let store = Arc::new(atoll_store::MemoryStore::new());
        // Another replica leads and has not written the CA yet.
        let leader = store.try_lead(LEADERSHIP).expect("free to lead");
        let (_tx, stop) = watch::channel(false);
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { ensure_kds_ca(store.as_ref(), stop).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "must wait, not generate a second CA"
        );
        assert!(matches!(generate(store.as_ref()).await, Ok(())));
        drop(leader);
        let ca = waiting.await.unwrap().unwrap().expect("the leader's CA");
        let stored = store.get(&key()).await.unwrap().unwrap();
        assert_eq!(ca.cert_pem(), parse(&stored.resource).unwrap().cert_pem());
    }

    #[tokio::test]
    async fn stopping_ends_the_wait() {
        let store = Arc::new(atoll_store::MemoryStore::new());
        let _leader = store.try_lead(LEADERSHIP).expect("free to lead");
        let (tx, stop) = watch::channel(false);
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { ensure_kds_ca(store.as_ref(), stop).await }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(true).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("stops promptly")
            .unwrap()
            .unwrap();
        assert!(outcome.is_none());
    }

    #[test]
    fn the_api_issuer_hands_out_certificates_from_the_kds_ca() {
        use atoll_api::ZoneCertificateIssuer;
        let ca = Arc::new(Authority::generate("test").unwrap());
        let issued = ZoneIssuer(ca.clone()).issue("zone-1").unwrap();
        assert_eq!(issued.ca_certificate, ca.cert_pem());
        assert_eq!(
            atoll_tls::verify_zone_certificate(ca.cert_pem(), &issued.certificate).unwrap(),
            "zone-1"
        );
        assert!(ZoneIssuer(ca).issue("Not A Zone").is_err());
    }

    #[tokio::test]
    async fn a_corrupt_ca_secret_is_an_error_not_a_wait() {
        let store = atoll_store::MemoryStore::new();
        let garbage = Resource::new(
            Meta {
                name: SECRET_NAME.into(),
                ..Default::default()
            },
            Spec::GlobalSecret(SecretSpec::from_bytes(b"not a PEM bundle")),
        );
        store.put(garbage, Precondition::Absent).await.unwrap();
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            ensure_kds_ca(&store, watch::channel(false).1),
        )
        .await
        .expect("fails fast")
        .err()
        .expect("a corrupt CA must not be used");
        assert!(format!("{err:#}").contains("KDS CA"), "{err:#}");
    }
}
