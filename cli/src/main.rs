//! `atollctl`: the command-line client for Atoll control planes.
//!
//! Owns argument parsing and presentation. It talks to control planes only through their
//! public REST API and never reads a store directly.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod commands;

#[derive(Parser)]
#[command(name = "atollctl", version, about = "Manage Atoll control planes")]
struct Cli {
    #[command(flatten)]
    api: client::ApiArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check resource documents offline: every violation, with its field path.
    Validate(commands::validate::Args),
    /// Create or update the resources in a file (idempotent).
    Apply(commands::apply::Args),
    /// Show one resource or list a type.
    Get(commands::get::Args),
    /// Delete one resource.
    Delete(commands::delete::Args),
    /// Generate certificates, tokens and signing keys.
    #[command(subcommand)]
    Generate(commands::generate::What),
    /// Show what the control plane knows about its peers.
    #[command(subcommand)]
    Inspect(commands::inspect::What),
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Validate(args) => Ok(commands::validate::run(args)),
        Command::Apply(args) => commands::apply::run(&cli.api, args),
        Command::Get(args) => commands::get::run(&cli.api, args),
        Command::Delete(args) => commands::delete::run(&cli.api, args),
        Command::Inspect(what) => commands::inspect::run(&cli.api, what),
        Command::Generate(what) => commands::generate::run(&cli.api, what),
    };
    result.unwrap_or_else(|err| {
        eprintln!("Error: {err:#}");
        ExitCode::from(2)
    })
}
