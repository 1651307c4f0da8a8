//! `atoll-zone`: the zone control plane and the zone-ingress SNI router.
//!
//! Will own the zone's wiring: the KDS client to the global, the zone store, the index from
//! resources to the proxies that depend on them, the Envoy xDS server and the ingress. The
//! global's REST API and store are reused from the shared crates; nothing here talks to the
//! global's database.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "atoll-zone", version, about = "Atoll zone control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the zone control plane (`--ingress` also runs the zone ingress in-process).
    Run {
        #[arg(long)]
        ingress: bool,
    },
    /// Run the zone-ingress SNI router on its own, fed by a zone control plane.
    Ingress,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let what = match cli.command {
        Command::Run { .. } => "the zone control plane",
        Command::Ingress => "the zone ingress",
    };
    eprintln!(
        "Error: {what} is not implemented in this build yet (see docs/README.md, \"What works today\")"
    );
    ExitCode::from(2)
}
