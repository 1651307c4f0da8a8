//! TLS pieces tests need without a TLS server of their own: the ClientHello a real client sends.

use std::sync::Arc;

use rustls::pki_types::ServerName;

/// The first bytes a rustls client sends for `sni`: a real ClientHello.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from(sni.to_string()).expect("a valid server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("writing to a Vec");
    }
    out
}
