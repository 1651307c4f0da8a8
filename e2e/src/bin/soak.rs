//! The 10-minute soak (issue 17, docs/reliability.md): `cargo run --release -p atoll-e2e
//! --bin soak`, its length in seconds from `ATOLL_SOAK_SECS` (600 by default). Prints
//! progress lines as it goes and a table of figures at the end; exits non-zero when a
//! control plane's RSS grew more than 10 % past warm-up, its descriptors grew, or an invariant
//! was violated.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use atoll_e2e::faults::soak::{self, SoakOptions};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("the soak could not run: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let secs: u64 = match std::env::var("ATOLL_SOAK_SECS") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("ATOLL_SOAK_SECS={value:?} is not a number of seconds"))?,
        Err(_) => 600,
    };
    anyhow::ensure!(secs >= 30, "ATOLL_SOAK_SECS must be at least 30");
    let report = soak::run(&SoakOptions::full(Duration::from_secs(secs)))?;
    print!("{}", report.table());
    let failures = report.failures();
    for failure in &failures {
        eprintln!("SOAK FAILED: {failure}");
    }
    if failures.is_empty() {
        println!("SOAK PASSED");
    }
    Ok(failures.is_empty())
}
