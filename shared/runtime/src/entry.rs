//! What a control-plane binary's `run` subcommand does around its own wiring: logging set-up,
//! layered settings, and an exit status with the error spelled out.

use std::process::ExitCode;

use atoll_config::{Opt, Settings};

use crate::{Common, Flags};

/// Initialises telemetry for `service`, loads `options` through `flags`, and runs `body`.
pub fn run_command(
    service: &'static str,
    flags: &Flags,
    options: &[Opt],
    body: impl FnOnce(&Settings) -> anyhow::Result<()>,
) -> ExitCode {
    let _telemetry = match atoll_telemetry::init(service, atoll_telemetry::LogFormat::from_env()) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("Error: {err}");
            return ExitCode::from(2);
        }
    };
    match Common::settings(flags, options).and_then(|settings| body(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
