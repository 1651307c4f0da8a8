//! Zone certificates from a running global through `atollctl generate zone-certificate`: the
//! files a user gets, the zone bound into the certificate, the KDS CA it chains to, who may ask
//! for one, and one KDS CA shared by the replicas on one database.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use atoll_e2e::cli::{Run, atollctl, atollctl_in};
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::http_request;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The zone a PEM certificate names, read as the KDS server reads it: from the DER.
fn zone_of(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("a PEM certificate");
    atoll_tls::zone_from_certificate(&der).expect("a zone certificate")
}

/// `zone_of`, but only once the certificate is known to chain to `ca_pem` as a client.
fn verified_zone(ca_pem: &str, cert_pem: &str) -> String {
    atoll_tls::verify_zone_certificate(ca_pem, cert_pem)
        .unwrap_or_else(|e| panic!("the certificate does not chain to the KDS CA: {e}"))
}

/// The PEM blocks of `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

/// Asks `global` for `zone`'s certificate on stdout: (certificate, key, CA), in that order.
fn issue_to_stdout(global: &Global, zone: &str) -> (String, String, String) {
    let run = atollctl(
        &[
            "--api-address",
            &global.api(),
            "generate",
            "zone-certificate",
            "--zone",
            zone,
            "--cert-file=-",
            "--key-file=-",
            "--ca-file=-",
        ],
        "",
    )
    .unwrap()
    .ok();
    let blocks = pem_blocks(&run.stdout);
    assert_eq!(blocks.len(), 3, "certificate, key, CA:\n{}", run.stdout);
    assert!(blocks[0].starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(blocks[1].contains("PRIVATE KEY"));
    assert!(blocks[2].starts_with("-----BEGIN CERTIFICATE-----"));
    (blocks[0].clone(), blocks[1].clone(), blocks[2].clone())
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn atollctl_writes_a_certificate_that_names_the_zone_and_chains_to_the_kds_ca() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    atollctl_in(
        dir.path(),
        &[
            "--api-address",
            &global.api(),
            "generate",
            "zone-certificate",
            "--zone",
            "zone-1",
        ],
        "",
    )
    .unwrap()
    .ok();
    // The defaults: <zone>.crt, <zone>.key (owner only) and kds-ca.crt, here.
    let (cert, key, ca) = (
        read(dir.path(), "zone-1.crt"),
        read(dir.path(), "zone-1.key"),
        read(dir.path(), "kds-ca.crt"),
    );
    assert!(key.contains("PRIVATE KEY"));
    let key_mode = fs::metadata(dir.path().join("zone-1.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    assert_eq!(zone_of(&cert), "zone-1");
    assert_eq!(verified_zone(&ca, &cert), "zone-1");

    // Another zone: its own name and key, the same CA.
    let (cert_2, key_2, ca_2) = issue_to_stdout(&global, "zone-2");
    assert_eq!(ca_2, ca);
    assert_ne!(key_2, key);
    assert_eq!(verified_zone(&ca, &cert_2), "zone-2");
    assert!(
        global
            .process
            .log_tail(400)
            .contains("issued a zone certificate"),
        "issuance is logged"
    );
    assert!(
        !global.process.log_tail(400).contains("PRIVATE KEY"),
        "key material must never be logged"
    );
}

#[test]
fn only_an_admin_gets_a_certificate_and_only_for_a_valid_zone_name() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    // A work directory without the admin token, so atollctl has none to send.
    let no_token = tempfile::tempdir().unwrap();
    let api_ca = global.work_dir().join("api-server-ca.crt");
    let over_https = |token: Option<&str>| -> Run {
        let mut args = vec![
            "--api-address".to_string(),
            global.https_api(),
            "--ca-cert-file".into(),
            api_ca.display().to_string(),
            "--work-dir".into(),
            no_token.path().display().to_string(),
        ];
        if let Some(token) = token {
            args.extend(["--token".to_string(), token.to_string()]);
        }
        args.extend(["generate", "zone-certificate", "--zone", "zone-1"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        atollctl_in(cwd.path(), &args, "").unwrap()
    };

    // Over HTTPS (not local plain HTTP), without the token: refused, nothing written.
    let refused = over_https(None);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    assert_eq!(fs::read_dir(cwd.path()).unwrap().count(), 0);

    let token = read(&global.work_dir(), "admin-token");
    over_https(Some(token.trim())).ok();
    assert_eq!(zone_of(&read(cwd.path(), "zone-1.crt")), "zone-1");

    // The global checks the name itself too, whoever asks.
    let (status, body) =
        http_request(global.http_port, "POST", "/zones/Zone_1/certificate", None).unwrap();
    assert_eq!(status, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["causes"][0]["field"], "name", "{body}");
}

#[test]
fn replicas_on_one_database_hand_out_certificates_from_the_same_ca() {
    let pg = TempPostgres::start().unwrap();
    let url = pg.url();
    let start = || {
        Global::start(GlobalOptions {
            postgres_url: Some(url.clone()),
            ..Default::default()
        })
        .expect("global starts")
    };
    // Started together, so both find no CA and the `kds-ca` leadership decides who creates it.
    let (mut a, b) = std::thread::scope(|s| {
        let (a, b) = (s.spawn(start), s.spawn(start));
        (a.join().unwrap(), b.join().unwrap())
    });
    let generated = |global: &Global| {
        global
            .process
            .log_tail(10_000)
            .matches("generated the KDS CA")
            .count()
    };
    assert_eq!(
        generated(&a) + generated(&b),
        1,
        "exactly one replica generates the CA"
    );

    let (cert_a, _, ca_a) = issue_to_stdout(&a, "zone-a");
    let (cert_b, _, ca_b) = issue_to_stdout(&b, "zone-b");
    assert_eq!(ca_a, ca_b, "both replicas use the CA in the store");
    assert_eq!(verified_zone(&ca_a, &cert_b), "zone-b");
    assert_eq!(verified_zone(&ca_b, &cert_a), "zone-a");

    // A restarted replica loads the same CA again instead of making a new one.
    let before = generated(&a);
    a.crash_and_restart().unwrap();
    let (cert_again, _, ca_again) = issue_to_stdout(&a, "zone-a");
    assert_eq!(ca_again, ca_a);
    assert_eq!(verified_zone(&ca_b, &cert_again), "zone-a");
    assert_eq!(generated(&a), before);
}
