//! The binary itself, before anything is served: a bad setting stops it at start with a
//! message naming the variable, and the reference it prints lists every option.

use std::process::Command;

fn global() -> Command {
    Command::new(env!("CARGO_BIN_EXE_atoll-global"))
}

#[test]
fn a_bad_setting_stops_the_start_and_names_the_variable() {
    let output = global()
        .arg("run")
        .env("KUMA_API_SERVER_HTTP_PORT", "eighty")
        .env("KUMA_STORE_TYPE", "memory")
        .output()
        .expect("running atoll-global");
    assert!(!output.status.success(), "started with a port of 'eighty'");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("KUMA_API_SERVER_HTTP_PORT") && stderr.contains("eighty"),
        "the error names the variable and its value: {stderr}"
    );
}

#[test]
fn the_options_reference_lists_the_store_and_kds_settings() {
    let output = global()
        .arg("options")
        .output()
        .expect("running atoll-global");
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "KUMA_STORE_TYPE",
        "KUMA_STORE_POSTGRES_HOST",
        "KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT",
        "KUMA_API_SERVER_HTTP_PORT",
    ] {
        assert!(
            table.contains(variable),
            "{variable} missing from:\n{table}"
        );
    }
}
