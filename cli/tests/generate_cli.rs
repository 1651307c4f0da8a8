//! `atollctl generate` offline: certificates as a user gets them (files, modes, contents), and
//! arguments refused before anything is asked of a control plane. Issuing zone certificates
//! needs a global: see `e2e/tests/zone_certificates.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

fn atollctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atollctl"))
        .args(args)
        .env_remove("ATOLL_API_ADDRESS")
        .env_remove("ATOLL_API_TOKEN")
        .output()
        .expect("atollctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .expect("a PEM certificate")
        .to_vec()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// (SAN DNS names and IP addresses as text, server auth, client auth)
fn inspect(der: &[u8]) -> (Vec<String>, bool, bool) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            GeneralName::IPAddress(ip) => {
                let octets: [u8; 4] = (*ip).try_into().expect("IPv4");
                std::net::Ipv4Addr::from(octets).to_string()
            }
            other => format!("{other:?}"),
        })
        .collect();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    (names, eku.server_auth, eku.client_auth)
}

#[test]
fn tls_certificates_name_every_hostname_for_the_requested_use() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, server, client) in [("server", true, false), ("client", false, true)] {
        let cert = dir.path().join(format!("{kind}.crt"));
        let key = dir.path().join(format!("{kind}.key"));
        let (code, out, err) = atollctl(&[
            "generate",
            "tls-certificate",
            &format!("--type={kind}"),
            "--hostname=foo.example.com",
            "--hostname=127.0.0.1",
            &format!("--cert-file={}", cert.display()),
            &format!("--key-file={}", key.display()),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            inspect(&der(&cert)),
            (
                vec!["foo.example.com".to_string(), "127.0.0.1".to_string()],
                server,
                client
            ),
            "{kind}"
        );
        assert_eq!(mode(&key), 0o600);
        assert!(
            std::fs::read_to_string(&key)
                .unwrap()
                .contains("PRIVATE KEY")
        );
    }
}

#[test]
fn an_existing_key_file_is_narrowed_to_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&key, "old").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = atollctl(&[
        "generate",
        "tls-certificate",
        "--type=server",
        "--hostname=localhost",
        &format!("--cert-file={}", cert.display()),
        &format!("--key-file={}", key.display()),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(mode(&key), 0o600, "a key must not stay world-readable");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
}

#[test]
fn tls_certificate_needs_a_type_and_a_hostname() {
    let (code, _, err) = atollctl(&[
        "generate",
        "tls-certificate",
        "--type=server",
        "--cert-file=-",
        "--key-file=-",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--hostname"), "{err}");
    let (code, _, err) = atollctl(&[
        "generate",
        "tls-certificate",
        "--type=peer",
        "--hostname=x",
        "--cert-file=-",
        "--key-file=-",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("server") && err.contains("client"), "{err}");
}

#[test]
fn zone_certificate_refuses_an_invalid_zone_name_before_asking() {
    let dir = tempfile::tempdir().unwrap();
    for zone in ["../etc", "Zone-1", "zone_1", ""] {
        // Port 1 answers nothing: an attempt to ask would fail with "cannot reach" instead.
        let (code, out, err) = atollctl(&[
            "--api-address",
            "http://127.0.0.1:1",
            "--work-dir",
            &dir.path().display().to_string(),
            "generate",
            "zone-certificate",
            "--zone",
            zone,
        ]);
        assert_ne!(code, 0, "{zone:?}: {out}");
        assert!(err.contains("DNS label"), "{zone:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}
