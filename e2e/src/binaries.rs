//! Finding the workspace's binaries for tests, building them once per test process if needed.
//!
//! Integration tests only get `CARGO_BIN_EXE_*` for their own crate's binaries; the harness
//! serves every crate, so it builds the workspace's binaries itself (a no-op when they are
//! current) and runs them from the shared target directory — in the profile the harness itself
//! was built with, so a release benchmark measures release processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The path of a workspace binary (`atoll-global`, `atoll-zone`, `atoll-dp`, `atollctl`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)?;
    let path = target_dir().join(profile()).join(name);
    if !path.exists() {
        bail!(
            "{} does not exist after building the workspace's binaries",
            path.display()
        );
    }
    Ok(path)
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Removes from `command` the variables Cargo sets for a test process about the test's own
/// package. Build scripts that watch them (ring's does) would see a change and rebuild half
/// the tree for a cargo run from a test, and again for the next plain build; a nested cargo
/// gets the outer environment instead.
pub fn without_test_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            );
        if set_for_the_test {
            command.env_remove(name.as_ref());
        }
    }
}

fn build() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release: &[&str] = if cfg!(debug_assertions) {
        &[]
    } else {
        &["--release"]
    };
    let mut command = Command::new(&cargo);
    without_test_env(&mut command);
    let output = command
        .arg("build")
        .args(release)
        // The whole workspace, as `cargo test --workspace` and the quick start build it: the
        // same features, so the dependencies they compiled are reused, not rebuilt.
        .args(["--workspace", "--bins"])
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    if !output.status.success() {
        bail!(
            "building the binaries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
