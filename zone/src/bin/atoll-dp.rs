//! `atoll-dp`: registers a Dataplane with its zone and runs Envoy with a bootstrap from the
//! zone control plane.
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
    Run(Box<atoll_zone::dp::RunArgs>),
    /// Print the configuration reference (every flag that an environment variable sets).
    Options,
}

fn main() -> ExitCode {
    let args = match Cli::parse().command {
        Command::Run(args) => *args,
        Command::Options => {
            print!(
                "{}",
                atoll_zone::config::flags_table::<atoll_zone::dp::RunArgs>()
            );
            return ExitCode::SUCCESS;
        }
    };
    // One TLS provider for every client in the process (reqwest is built without a default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("Error: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let _telemetry = atoll_telemetry::init("atoll-dp", atoll_telemetry::LogFormat::from_env())?;
        atoll_zone::dp::run(args).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
