//! Who may use the REST API, with real globals: the admin token shared by replicas on one
//! database, user tokens with static access control, loopback that is not trusted, and
//! pinned client certificates on the HTTPS API.

use std::collections::BTreeMap;
use std::process::Command;

use atoll_e2e::cli::atollctl;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::{http_call_with, http_request};

const MESH: &str = r#"{"type":"Mesh","name":"default"}"#;

fn strict() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN".to_string(),
        "false".to_string(),
    )])
}

fn with_token(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: &str,
) -> (u16, String) {
    http_call_with(
        port,
        "127.0.0.1",
        method,
        path,
        body,
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .unwrap()
}

#[test]
fn replicas_on_one_database_accept_the_same_admin_token() {
    let pg = TempPostgres::start().unwrap();
    let start = || {
        Global::start(GlobalOptions {
            postgres_url: Some(pg.url()),
            env: strict(),
            ..Default::default()
        })
        .expect("global starts")
    };
    let (a, b) = std::thread::scope(|s| {
        let (a, b) = (s.spawn(start), s.spawn(start));
        (a.join().unwrap(), b.join().unwrap())
    });
    let token = a.admin_token().unwrap();
    assert_eq!(
        token,
        b.admin_token().unwrap(),
        "each replica writes the admin token from the database"
    );
    let keys = |g: &Global| {
        g.process
            .log_tail(10_000)
            .matches("generated a token signing key")
            .count()
    };
    assert_eq!(
        keys(&a) + keys(&b),
        2,
        "one zone and one user signing key, made by one replica"
    );
    // A's token works on B, and nothing works without it (loopback is not trusted here).
    let (code, body) = http_request(b.http_port, "PUT", "/meshes/default", Some(MESH)).unwrap();
    assert_eq!(code, 401, "{body}");
    let (code, body) = with_token(b.http_port, "PUT", "/meshes/default", Some(MESH), &token);
    assert_eq!(code, 201, "{body}");
    // Reading stays open, as in Kuma.
    let (code, _) = http_request(a.http_port, "GET", "/meshes/default", None).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_read_only_user_reads_but_cannot_write_or_read_secrets() {
    let global = Global::start(GlobalOptions {
        env: strict(),
        ..Default::default()
    })
    .unwrap();
    let admin = global.admin_token().unwrap();
    assert_eq!(
        with_token(
            global.http_port,
            "PUT",
            "/meshes/default",
            Some(MESH),
            &admin
        )
        .0,
        201
    );
    let secret = r#"{"type":"Secret","mesh":"default","name":"s","data":"c2VjcmV0"}"#;
    assert_eq!(
        with_token(
            global.http_port,
            "PUT",
            "/meshes/default/secrets/s",
            Some(secret),
            &admin
        )
        .0,
        201
    );

    // atollctl issues the user token, as an operator would.
    let run = atollctl(
        &[
            "--api-address",
            &global.api(),
            "--token",
            &admin,
            "generate",
            "user-token",
            "--name",
            "viewer",
            "--group",
            "viewers",
            "--valid-for",
            "1h",
        ],
        "",
    )
    .unwrap()
    .ok();
    let viewer = run.stdout.trim().to_string();
    let (code, body) = with_token(global.http_port, "GET", "/meshes/default", None, &viewer);
    assert_eq!(code, 200, "{body}");
    let (code, body) = with_token(
        global.http_port,
        "PUT",
        "/meshes/other",
        Some(MESH.replace("default", "other").as_str()),
        &viewer,
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("viewer") && body.contains("KUMA_ACCESS_STATIC_ADMIN_RESOURCES"),
        "{body}"
    );
    let (code, body) = with_token(
        global.http_port,
        "GET",
        "/meshes/default/secrets/s",
        None,
        &viewer,
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = with_token(
        global.http_port,
        "GET",
        "/globalsecrets/user-token-signing-key-1",
        None,
        &viewer,
    );
    assert_eq!(
        code, 403,
        "signing keys are never readable without the permission: {body}"
    );
    // The admin reads them; an anonymous caller on loopback is anonymous here.
    assert_eq!(
        with_token(
            global.http_port,
            "GET",
            "/meshes/default/secrets/s",
            None,
            &admin
        )
        .0,
        200
    );
    let (code, _) =
        http_request(global.http_port, "GET", "/meshes/default/secrets/s", None).unwrap();
    assert_eq!(code, 401);
}

#[test]
fn pinned_client_certificates_act_as_admins_on_the_https_api() {
    let certs = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    for (dir, name) in [(&certs, "ops"), (&other, "stranger")] {
        let cert = dir.path().join(format!("{name}.crt"));
        let key = dir.path().join(format!("{name}.key"));
        atollctl(
            &[
                "generate",
                "tls-certificate",
                "--type=client",
                &format!("--hostname={name}"),
                &format!("--cert-file={}", cert.display()),
                &format!("--key-file={}", key.display()),
            ],
            "",
        )
        .unwrap()
        .ok();
    }
    // Only ops.crt is pinned; its key lives elsewhere.
    let ops_key = certs.path().join("ops.key");
    let key_dir = tempfile::tempdir().unwrap();
    let moved_key = key_dir.path().join("ops.key");
    std::fs::rename(&ops_key, &moved_key).unwrap();
    let mut env = strict();
    env.insert(
        "KUMA_API_SERVER_AUTH_CLIENT_CERTS_DIR".into(),
        certs.path().display().to_string(),
    );
    let global = Global::start(GlobalOptions {
        env,
        ..Default::default()
    })
    .unwrap();
    let ca = global.work_dir().join("api-server-ca.crt");
    let curl = |cert: Option<(&std::path::Path, &std::path::Path)>| {
        let mut command = Command::new("curl");
        command.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &ca.display().to_string(),
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            MESH,
        ]);
        if let Some((cert, key)) = cert {
            command.args([
                "--cert",
                &cert.display().to_string(),
                "--key",
                &key.display().to_string(),
            ]);
        }
        command.arg(format!(
            "https://localhost:{}/meshes/default",
            global.https_port
        ));
        let out = command.output().expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(None), "401", "no certificate: anonymous");
    let stranger = (
        other.path().join("stranger.crt"),
        other.path().join("stranger.key"),
    );
    assert_ne!(
        curl(Some((&stranger.0, &stranger.1))),
        "201",
        "an unpinned certificate is refused"
    );
    assert_eq!(
        curl(Some((&certs.path().join("ops.crt"), &moved_key))),
        "201"
    );
}
