//! Mesh CAs and the workload certificates they issue: a CA travels as one PEM bundle
//! (certificate, then key) in a mesh Secret; a workload certificate names its services as
//! SPIFFE URIs and lives for hours, not years, because it is reissued automatically.

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};

use crate::{Authority, TlsError};

/// The name of the mesh Secret holding the builtin CA of backend `backend`.
pub fn mesh_ca_secret_name(backend: &str) -> String {
    format!("ca-builtin-{backend}")
}

/// Splits a PEM bundle into (certificates, private key), each as PEM text.
pub fn split_pem_bundle(pem: &str) -> (String, Option<String>) {
    let mut certs = String::new();
    let mut key = None;
    let mut block = String::new();
    for line in pem.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            block.clear();
        }
        block.push_str(line);
        block.push('\n');
        if line.starts_with("-----END ") {
            if line.contains("PRIVATE KEY") {
                key.get_or_insert_with(|| block.clone());
            } else {
                certs.push_str(&block);
            }
            block.clear();
        }
    }
    (certs, key)
}

impl Authority {
    /// The CA as one PEM bundle (certificate, then key), as stored in the mesh Secret.
    pub fn to_bundle(&self) -> String {
        format!("{}{}", self.cert_pem(), self.key_pem())
    }

    /// A CA from a bundle written by [`Authority::to_bundle`] (or any certificate + key PEM).
    pub fn from_bundle(pem: &str) -> Result<Self, TlsError> {
        let (cert, key) = split_pem_bundle(pem);
        let key = key.ok_or_else(|| TlsError::InvalidCa("the bundle has no private key".into()))?;
        Authority::from_pem(&cert, &key)
    }

    /// A workload certificate naming `uris` (SPIFFE IDs), for client and server use, valid
    /// from a minute ago for `validity`; returns (certificate PEM, key PEM).
    pub fn issue_workload(
        &self,
        uris: &[String],
        validity: std::time::Duration,
    ) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = uris
            .iter()
            .map(|u| Ok(SanType::URI(u.as_str().try_into()?)))
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::try_from(validity).unwrap_or(time::Duration::DAY);
        let cert = params.signed_by(&key, self.issuer())?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_and_issues_workload_certificates() {
        let ca = Authority::generate("mesh default").unwrap();
        let again = Authority::from_bundle(&ca.to_bundle()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let (cert, key) = again
            .issue_workload(
                &["spiffe://default/web".into()],
                std::time::Duration::from_secs(3600),
            )
            .unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY"));
        assert!(Authority::from_bundle(ca.cert_pem()).is_err(), "no key");
    }
}
