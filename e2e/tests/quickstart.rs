//! The README's run command, as a new user runs it: `./deploy/quickstart.sh --self-check`.

use std::process::Command;

#[test]
fn quickstart_self_check_passes_the_gateway_and_cross_zone_calls() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new("bash");
    // As a user runs it: without the variables Cargo sets for this test, which would make the
    // script's `cargo build` rebuild what the test build just built.
    atoll_e2e::binaries::without_test_env(&mut command);
    let output = command
        .arg(root.join("deploy/quickstart.sh"))
        .arg("--self-check")
        .current_dir(&root)
        .output()
        .expect("running deploy/quickstart.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quickstart --self-check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("self-check: gateway call ok"),
        "no gateway call in:\n{stdout}"
    );
    assert!(
        stdout.contains("self-check: cross-zone call ok"),
        "no cross-zone call in:\n{stdout}"
    );
}

#[test]
fn quickstart_runs_the_binary_from_cargo_target_dir() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A stand-in cargo (the build is not what is tested) and a stand-in quickstart binary in
    // a target directory of its own, which the script must run with its arguments.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let debug = dir.path().join("target/debug");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&debug).unwrap();
    for (path, script) in [
        (bin.join("cargo"), "#!/bin/sh\nexit 0\n"),
        (
            debug.join("quickstart"),
            "#!/bin/sh\necho \"quickstart from CARGO_TARGET_DIR: $*\"\n",
        ),
    ] {
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .arg(root.join("deploy/quickstart.sh"))
        .arg("--self-check")
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .expect("running deploy/quickstart.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && stdout.contains("quickstart from CARGO_TARGET_DIR: --self-check"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
