//! rustls configurations from PEM text.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// A TLS server configuration (no client authentication) serving `cert_pem` (chain, leaf
/// first) with `key_pem`; `source` names where they came from, for error messages.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    source: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(cert_pem, key_pem, source, None)
}

/// Like [`server_config`], but asking clients for a certificate and accepting exactly the
/// `pinned` ones (or none): see [`crate::PinnedClientCerts`].
pub fn server_config_with_client_certs(
    cert_pem: &str,
    key_pem: &str,
    source: &str,
    pinned: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(
        cert_pem,
        key_pem,
        source,
        Some(Arc::new(crate::PinnedClientCerts::new(pinned))),
    )
}

fn build_server_config(
    cert_pem: &str,
    key_pem: &str,
    source: &str,
    client_certs: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(cert_pem, source)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: source.into(),
        reason: format!("private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
    let builder = match client_certs {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS server configuration that requires a client certificate chaining to a CA in
/// `client_ca_pem` (KDS: zones authenticate with the certificates the KDS CA issued them).
pub fn mutual_tls_server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
    source: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for root in certificates(client_ca_pem, "the client CA")? {
        roots.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::InvalidCa(e.to_string()))?;
    let mut config = build_server_config(cert_pem, key_pem, source, Some(verifier))?;
    // KDS is gRPC only.
    Arc::make_mut(&mut config).alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Every certificate in `pem`, in order; at least one. `source` names where they came from.
pub(crate) fn certificates(
    pem: &str,
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: source.into(),
            reason: format!("certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: source.into(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// A client configuration trusting only the CA certificates in `ca_pem` (`source` names them
/// in errors).
pub fn client_config(ca_pem: &[u8], source: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TlsError::Pem {
            path: source.to_string(),
            reason: format!("not a PEM certificate: {e}"),
        })?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: source.to_string(),
            reason: "no certificate in it".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
