//! Reading a zone's identity back from its certificate.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::TlsError;
use crate::authority::ZONE_URI_PREFIX;

/// The zone a client certificate (DER) was issued to, from its `spiffe://atoll/zone/<zone>` SAN.
pub fn zone_from_certificate(der: &[u8]) -> Result<String, TlsError> {
    let invalid = |reason: String| TlsError::Pem {
        path: "client certificate".into(),
        reason,
    };
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| invalid(format!("not a certificate: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| invalid(format!("unreadable subject alternative names: {e}")))?
        .ok_or_else(|| invalid("no subject alternative names".into()))?;
    san.value
        .general_names
        .iter()
        .find_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(ZONE_URI_PREFIX).map(str::to_string),
            _ => None,
        })
        .filter(|zone| !zone.is_empty())
        .ok_or_else(|| invalid(format!("no {ZONE_URI_PREFIX}<zone> name")))
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;
    use crate::Authority;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn client_certificates_name_their_zone() {
        let ca = Authority::generate("kds").unwrap();
        let (cert, _) = ca.issue_client("zone-1").unwrap();
        assert_eq!(zone_from_certificate(&der(&cert)).unwrap(), "zone-1");
    }

    #[test]
    fn server_certificates_name_no_zone() {
        let ca = Authority::generate("kds").unwrap();
        let (cert, _) = ca.issue_server(&["localhost".into()]).unwrap();
        assert!(
            zone_from_certificate(&der(&cert))
                .unwrap_err()
                .to_string()
                .contains("spiffe://atoll/zone/")
        );
        assert!(zone_from_certificate(b"garbage").is_err());
    }

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_it() {
        let ca = Authority::generate("kds").unwrap();
        let reloaded = Authority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let (cert, _) = reloaded.issue_client("zone-2").unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        verifier
            .verify_client_cert(&leaf, &[], rustls_pki_types::UnixTime::now())
            .expect("chains to the CA");
        let other = Authority::generate("other").unwrap();
        let (foreign, _) = other.issue_client("zone-2").unwrap();
        let foreign = CertificateDer::from_pem_slice(foreign.as_bytes()).unwrap();
        assert!(
            verifier
                .verify_client_cert(&foreign, &[], rustls_pki_types::UnixTime::now())
                .is_err()
        );
    }
}
