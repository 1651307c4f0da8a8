//! `atoll-global`: the global control plane.
//!
//! Owns the wiring of the global: configuration, the store (PostgreSQL or memory), the REST
//! API and diagnostics servers, KDS, and the secrets the global keeps (CAs, signing keys, the
//! admin token). Resource rules live in `atoll-model`, persistence in
//! `atoll-store`, HTTP handling in `atoll-api`; this crate only assembles and runs them.
#![forbid(unsafe_code)]

mod config;
mod kds;
mod kds_ca;
mod runtime;
mod secrets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atoll-global", version, about = "Atoll global control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the global control plane.
    Run(atoll_runtime::Flags),
    /// Print the configuration reference (every option and its environment variable).
    Options,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Options => {
            print!("{}", atoll_config::markdown_table(&config::options()));
            ExitCode::SUCCESS
        }
        Command::Run(flags) => {
            atoll_runtime::run_command("atoll-global", &flags, &config::options(), |settings| {
                let common = atoll_runtime::Common::from_settings(settings)?;
                let kds = config::KdsConfig::from_settings(settings)?;
                atoll_runtime::block_on(runtime::run(common, kds))
            })
        }
    }
}
