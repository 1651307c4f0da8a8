//! `atollctl validate` as a user runs it: exit status and output, from a file and from stdin.

use std::io::Write;
use std::process::{Command, Stdio};

const GATEWAY: &str = "type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
    hostname: foo.example.com
";

fn atollctl(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atollctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("atollctl starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_file_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, GATEWAY).unwrap();
    let (code, out, _) = atollctl(&["validate", "-f", file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(":1: MeshGateway/edge-gateway (mesh default): valid"),
        "{out}"
    );
}

#[test]
fn invalid_stdin_exits_one_with_every_violation() {
    let broken = GATEWAY
        .replace("port: 8080", "port: 70000")
        .replace("HTTP", "HTTPS")
        + "    typo: 1\n";
    let input = format!("{GATEWAY}---\n{broken}");
    let (code, out, _) = atollctl(&["validate", "-f", "-"], &input);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("<stdin>:13: MeshGateway/edge-gateway: 3 violation(s)"),
        "{out}"
    );
    assert!(
        out.contains("  conf.listeners[0].typo: unknown field"),
        "{out}"
    );
    assert!(
        out.contains("  conf.listeners[0].port: must be in the range 1-65535"),
        "{out}"
    );
    assert!(
        out.contains("  conf.listeners[0].tls: must be set for protocol HTTPS"),
        "{out}"
    );
}

#[test]
fn missing_file_exits_two() {
    let (code, _, err) = atollctl(&["validate", "-f", "/nonexistent/x.yaml"], "");
    assert_eq!(code, 2);
    assert!(err.contains("reading /nonexistent/x.yaml"), "{err}");
}

#[test]
fn shipped_examples_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let (code, out, err) = atollctl(&["validate", "-f", path.to_str().unwrap()], "");
        assert_eq!(code, 0, "{}:\n{out}{err}", path.display());
        checked += 1;
    }
    assert!(checked >= 4, "expected the example files, found {checked}");
}

#[test]
fn tls_certificate_is_generated_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let (code, out, err) = atollctl(
        &[
            "generate",
            "tls-certificate",
            "--type=server",
            "--hostname=foo.example.com",
            &format!("--cert-file={}", cert.display()),
            &format!("--key-file={}", key.display()),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::read_to_string(&cert)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, out, _) = atollctl(
        &[
            "generate",
            "tls-certificate",
            "--type=client",
            "--hostname=x",
            "--cert-file=-",
            "--key-file=-",
        ],
        "",
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("BEGIN CERTIFICATE") && out.contains("PRIVATE KEY"),
        "{out}"
    );
}
