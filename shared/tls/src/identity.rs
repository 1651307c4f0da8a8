//! Reading a zone's identity back from its certificate, and checking the certificate chains.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::UnixTime;

use crate::TlsError;
use crate::authority::{ZONE_URI_PREFIX, is_zone_name};
use crate::pem::certificates;

/// The zone a client certificate (DER) was issued to, from its `spiffe://atoll/zone/<zone>`
/// SAN URI.
///
/// It only reads the certificate: callers must have verified that it chains to a CA they trust
/// (the TLS handshake does this for KDS). A certificate naming no zone, several different
/// zones, or a zone that is not a valid zone name is refused rather than guessed at, because a
/// client CA supplied by the operator may sign certificates this crate did not shape.
pub fn zone_from_certificate(der: &[u8]) -> Result<String, TlsError> {
    let refuse = |reason: String| TlsError::NoZoneIdentity(reason);
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| refuse(format!("not a DER X.509 certificate: {e}")))?;
    let no_zone = || {
        refuse(format!(
            "no {ZONE_URI_PREFIX}<zone> URI among its subject alternative names"
        ))
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|e| refuse(format!("unreadable subject alternative names: {e}")))?
        .ok_or_else(no_zone)?;
    let mut zones: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(ZONE_URI_PREFIX),
            _ => None,
        })
        .collect();
    zones.sort_unstable();
    zones.dedup();
    match zones.as_slice() {
        [] => Err(no_zone()),
        [zone] if is_zone_name(zone) => Ok((*zone).to_string()),
        [zone] => Err(refuse(format!(
            "{ZONE_URI_PREFIX}{zone} does not name a valid zone (a lower-case DNS label)"
        ))),
        several => Err(refuse(format!(
            "it names several zones ({}); a zone certificate names exactly one",
            several.join(", ")
        ))),
    }
}

/// The zone `cert_pem` names (leaf first, any intermediates after it), once verified to chain
/// to one of the CAs in `ca_pem` and to be usable for client authentication now: the checks the
/// KDS server's TLS handshake makes, for callers that hold PEM files instead of a connection
/// (tools, tests).
pub fn verify_zone_certificate(ca_pem: &str, cert_pem: &str) -> Result<String, TlsError> {
    let mut roots = RootCertStore::empty();
    for root in certificates(ca_pem, "CA certificate")? {
        roots.add(root)?;
    }
    let mut chain = certificates(cert_pem, "zone certificate")?;
    let leaf = chain.remove(0);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::InvalidCa(e.to_string()))?;
    verifier.verify_client_cert(&leaf, &chain, UnixTime::now())?;
    zone_from_certificate(&leaf)
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
        let err = zone_from_certificate(&der(&cert)).unwrap_err();
        assert!(matches!(err, TlsError::NoZoneIdentity(_)), "{err:?}");
        assert!(err.to_string().contains("spiffe://atoll/zone/"), "{err}");
    }

    #[test]
    fn certificates_without_a_zone_uri_are_refused() {
        // No SAN extension at all (a CA certificate).
        let ca = Authority::generate("kds").unwrap();
        let err = zone_from_certificate(&der(ca.cert_pem())).unwrap_err();
        assert!(err.to_string().contains("spiffe://atoll/zone/"), "{err}");
        // SANs, but only DNS names (a self-signed client certificate).
        let (cert, _) = crate::self_signed(&["zone-1".into()], true).unwrap();
        assert!(zone_from_certificate(&der(&cert)).is_err());
        // A URI of another trust domain.
        let other = signed_with_uris(&["spiffe://elsewhere/zone/zone-1"]);
        assert!(zone_from_certificate(&other).is_err());
        assert!(zone_from_certificate(b"garbage").is_err());
    }

    #[test]
    fn ambiguous_or_malformed_zone_uris_are_refused() {
        let several = signed_with_uris(&["spiffe://atoll/zone/a", "spiffe://atoll/zone/b"]);
        let err = zone_from_certificate(&several).unwrap_err().to_string();
        assert!(err.contains("several zones"), "{err}");
        let repeated = signed_with_uris(&["spiffe://atoll/zone/a", "spiffe://atoll/zone/a"]);
        assert_eq!(zone_from_certificate(&repeated).unwrap(), "a");
        for uri in [
            "spiffe://atoll/zone/",
            "spiffe://atoll/zone/a/b",
            "spiffe://atoll/zone/Zone-1",
        ] {
            assert!(
                zone_from_certificate(&signed_with_uris(&[uri])).is_err(),
                "{uri} must not be accepted"
            );
        }
    }

    #[test]
    fn verified_zone_certificates_chain_to_their_ca_and_are_for_clients() {
        let ca = Authority::generate("kds").unwrap();
        let (cert, _) = ca.issue_client("zone-3").unwrap();
        assert_eq!(
            verify_zone_certificate(ca.cert_pem(), &cert).unwrap(),
            "zone-3"
        );
        let other = Authority::generate("other").unwrap();
        let err = verify_zone_certificate(other.cert_pem(), &cert).unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");
        // A server certificate from the right CA is still not a client identity.
        let (server, _) = ca.issue_server(&["localhost".into()]).unwrap();
        assert!(verify_zone_certificate(ca.cert_pem(), &server).is_err());
        assert!(verify_zone_certificate("", &cert).is_err());
        assert!(verify_zone_certificate(ca.cert_pem(), "").is_err());
    }

    /// A certificate carrying exactly these SAN URIs, as a foreign client CA might issue.
    fn signed_with_uris(uris: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = uris
            .iter()
            .map(|u| rcgen::SanType::URI((*u).try_into().unwrap()))
            .collect();
        params.self_signed(&key).unwrap().der().to_vec()
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
