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
    Run {
        #[command(flatten)]
        flags: atoll_runtime::Flags,
        /// Also run the zone-ingress SNI router in this process (KUMA_ZONE_INGRESS_*).
        #[arg(long)]
        ingress: bool,
        /// Also run a zone egress in this process (KUMA_ZONE_EGRESS_*), for meshes that route
        /// cross-zone traffic through it (`routing.zoneEgress: true`).
        #[arg(long)]
        egress: bool,
    },
    /// Run the zone-ingress SNI router on its own, fed by a zone control plane.
    Ingress(atoll_zone::crosszone::process::IngressArgs),
    /// Print the configuration reference (every option and its environment variable).
    Options {
        /// The options of `atoll-zone ingress` instead.
        #[arg(long)]
        ingress: bool,
    },
}

fn main() -> ExitCode {
    // One TLS provider for every client in the process (reqwest is built without a default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Options { ingress } => {
            if ingress {
                print!(
                    "{}",
                    config::flags_table::<atoll_zone::crosszone::process::IngressArgs>()
                );
            } else {
                print!("{}", atoll_config::markdown_table(&config::options()));
            }
            ExitCode::SUCCESS
        }
        Command::Ingress(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(err) => {
                    eprintln!("Error: starting the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            // Spawned, not run by block_on: the accept loop then runs on the runtime's workers
            // like every connection, and the main thread only waits. With
            // TOKIO_WORKER_THREADS=1 the router is exactly one thread busy.
            let outcome = runtime.block_on(async {
                let router = tokio::spawn(async move {
                    let _telemetry = atoll_telemetry::init(
                        "atoll-zone-ingress",
                        atoll_telemetry::LogFormat::from_env(),
                    )?;
                    atoll_zone::crosszone::process::run(args).await
                });
                router
                    .await
                    .unwrap_or_else(|err| Err(anyhow::anyhow!("the zone ingress stopped: {err}")))
            });
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("Error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            flags,
            ingress,
            egress,
        } => atoll_runtime::run_command("atoll-zone", &flags, &config::options(), |settings| {
            let common = atoll_runtime::Common::from_settings(settings)?;
            let zone = config::ZoneConfig::from_settings(settings)?;
            atoll_runtime::block_on(runtime::run(common, zone, ingress, egress))
        }),
    }
}
