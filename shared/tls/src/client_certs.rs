//! Client certificates pinned by the operator (`KUMA_API_SERVER_AUTH_CLIENT_CERTS_DIR`): the
//! HTTPS API asks for a client certificate, accepts exactly the ones in the directory (by their
//! bytes, not by a CA), and lets clients without one in as they would be without TLS client
//! authentication.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::TlsError;
use crate::pem::certificates;

/// Every certificate in the `.crt`/`.pem` files of `dir`.
pub fn load_client_certificates(dir: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let io = |source: std::io::Error| TlsError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "crt" | "pem" | "cert"));
        if !wanted || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| TlsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        found.extend(certificates(&text, &path.display().to_string())?);
    }
    Ok(found)
}

/// Accepts exactly the pinned certificates (within their validity), or no certificate at all.
#[derive(Debug)]
pub struct PinnedClientCerts {
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl PinnedClientCerts {
    pub fn new(pinned: Vec<CertificateDer<'static>>) -> Self {
        PinnedClientCerts {
            pinned,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }
}

fn within_validity(der: &[u8], now: UnixTime) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp()
}

impl ClientCertVerifier for PinnedClientCerts {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let known = self
            .pinned
            .iter()
            .any(|pinned| pinned.as_ref() == end_entity.as_ref());
        if !known {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        if !within_validity(end_entity.as_ref(), now) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The serial number of a DER certificate in lower-case hex without separators, the form
/// revocation lists are compared in.
pub fn certificate_serial(der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| TlsError::NoZoneIdentity(format!("not a DER X.509 certificate: {e}")))?;
    let hex: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let trimmed = hex.trim_start_matches('0');
    Ok(if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    })
}

/// How a client certificate is named in logs and as a user: its subject's common name, or
/// `serial:<hex>` when it has none.
pub fn describe_certificate(der: &[u8]) -> String {
    if let Ok((_, cert)) = X509Certificate::from_der(der)
        && let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    {
        return cn.to_string();
    }
    match certificate_serial(der) {
        Ok(serial) => format!("serial:{serial}"),
        Err(_) => "unreadable certificate".into(),
    }
}

/// The serial of the first certificate in `pem` (see [`certificate_serial`]).
pub fn pem_certificate_serial(pem: &str) -> Result<String, TlsError> {
    let der = certificates(pem, "certificate")?.remove(0);
    certificate_serial(der.as_ref())
}
