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

/// Whether the global shows `zone` online.
fn online(global: &Global, zone: &str) -> bool {
    let (_, body) = http_request(global.http_port, "GET", "/zones/_overview", None).unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|z| z["name"] == zone && z["online"] == true)
}

fn put(global: &Global, path: &str, json: &str) {
    let (code, body) = http_request(global.http_port, "PUT", path, Some(json)).unwrap();
    assert!(code == 200 || code == 201, "PUT {path}: {code} {body}");
}

#[test]
fn disabling_a_zone_or_revoking_its_certificate_cuts_its_streams_within_seconds() {
    use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
    use std::time::{Duration, Instant};
    let global = Global::start(GlobalOptions::default()).unwrap();
    let zone = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    eventually("zone-1 online", Duration::from_secs(30), || {
        online(&global, "zone-1")
    })
    .unwrap();

    put(
        &global,
        "/zones/zone-1",
        r#"{"type":"Zone","name":"zone-1","enabled":false}"#,
    );
    let cut = Instant::now();
    eventually("zone-1 cut off", Duration::from_secs(5), || {
        !online(&global, "zone-1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", global.process.log_tail(80)));
    println!("disabled zone cut off after {:?}", cut.elapsed());
    eventually("the zone to hear why", Duration::from_secs(10), || {
        zone.log().contains("is disabled on the global")
    })
    .unwrap();
    // It stays out while disabled, and comes back when enabled again.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !online(&global, "zone-1"),
        "a disabled zone must not reconnect"
    );
    put(
        &global,
        "/zones/zone-1",
        r#"{"type":"Zone","name":"zone-1","enabled":true}"#,
    );
    eventually("zone-1 back online", Duration::from_secs(30), || {
        online(&global, "zone-1")
    })
    .unwrap();

    // Revoking the certificate it uses cuts it off the same way.
    let serial = atoll_tls::pem_certificate_serial(&read(zone.dir(), "zone-1.crt")).unwrap();
    let data = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("ffff, {serial}"))
    };
    put(
        &global,
        "/globalsecrets/zone-certificate-revocations",
        &format!(
            r#"{{"type":"GlobalSecret","name":"zone-certificate-revocations","data":"{data}"}}"#
        ),
    );
    let cut = Instant::now();
    eventually(
        "zone-1 cut off after revocation",
        Duration::from_secs(5),
        || !online(&global, "zone-1"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", global.process.log_tail(80)));
    println!("revoked zone cut off after {:?}", cut.elapsed());
    eventually("the zone to hear why", Duration::from_secs(10), || {
        zone.log().contains("is revoked")
    })
    .unwrap();
}

#[test]
fn a_certificate_for_a_csr_keeps_the_zones_key_in_the_zone() {
    use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
    use std::time::Duration;
    let global = Global::start(GlobalOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("zone-2.key");
    let csr = dir.path().join("zone-2.csr");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=whatever-the-requester-says", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let run = atollctl_in(
        dir.path(),
        &[
            "--api-address",
            &global.api(),
            "generate",
            "zone-certificate",
            "--zone",
            "zone-2",
            "--csr",
            &csr.display().to_string(),
        ],
        "",
    )
    .unwrap()
    .ok();
    assert!(run.stderr.contains("serial"), "{}", run.stderr);
    let mut written: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        ["kds-ca.crt", "zone-2.crt", "zone-2.csr", "zone-2.key"],
        "no key is written: the zone has its own"
    );
    let cert = read(dir.path(), "zone-2.crt");
    assert_eq!(
        verified_zone(&read(dir.path(), "kds-ca.crt"), &cert),
        "zone-2"
    );

    // A zone started with its own key and that certificate connects.
    let env = [
        (
            "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE",
            dir.path().join("zone-2.crt"),
        ),
        ("KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE", key.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.display().to_string()))
    .collect();
    let _zone = Zone::start(
        "zone-2",
        &global,
        ZoneOptions {
            env,
            ..Default::default()
        },
    )
    .unwrap();
    eventually("zone-2 online", Duration::from_secs(30), || {
        online(&global, "zone-2")
    })
    .unwrap();
}
