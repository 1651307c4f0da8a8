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
