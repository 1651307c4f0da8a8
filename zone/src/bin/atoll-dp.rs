//! `atoll-dp`: registers a Dataplane with its zone and runs Envoy with a bootstrap from the
//! zone control plane. It holds no mesh logic: the zone computes everything Envoy receives.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atoll-dp", version, about = "Atoll data-plane launcher")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a Dataplane and run Envoy for it.
    Run,
}

fn main() -> ExitCode {
    let Cli {
        command: Command::Run,
    } = Cli::parse();
    eprintln!(
        "Error: atoll-dp is not implemented in this build yet (see docs/README.md, \"What works today\")"
    );
    ExitCode::from(2)
}
