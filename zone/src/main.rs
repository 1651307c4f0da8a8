//! `atoll-zone`: the zone control plane and the zone-ingress SNI router.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use atoll_zone::{config, runtime};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atoll-zone", version, about = "Atoll zone control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the zone control plane.
    Run(atoll_runtime::Flags),
    /// Run the zone-ingress SNI router on its own, fed by a zone control plane.
    Ingress,
    /// Print the configuration reference (every option and its environment variable).
    Options,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Options => {
            print!("{}", atoll_config::markdown_table(&config::options()));
            ExitCode::SUCCESS
        }
        Command::Ingress => {
            eprintln!(
                "Error: the zone ingress is not implemented in this build yet (see docs/README.md)"
            );
            ExitCode::from(2)
        }
        Command::Run(flags) => {
            atoll_runtime::run_command("atoll-zone", &flags, &config::options(), |settings| {
                let common = atoll_runtime::Common::from_settings(settings)?;
                let zone = config::ZoneConfig::from_settings(settings)?;
                atoll_runtime::block_on(runtime::run(common, zone))
            })
        }
    }
}
