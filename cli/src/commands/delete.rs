//! `atollctl delete TYPE NAME [-m MESH]`.

use std::process::ExitCode;

use super::get::{mesh_for, resolve_kind};
use crate::client::{ApiArgs, describe_error};

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "TYPE")]
    kind: String,
    name: String,
    /// Mesh of a mesh-scoped type (default `default`).
    #[arg(short, long)]
    mesh: Option<String>,
}

pub fn run(api: &ApiArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let kind = resolve_kind(&args.kind)?;
    let mesh = mesh_for(kind, &args.mesh);
    let response = api
        .connect()?
        .delete(&kind.api_path(mesh.as_deref(), &args.name))?;
    if response.status().is_success() {
        println!("deleted {kind} {:?}", args.name);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("Error: {}", describe_error(response));
        Ok(ExitCode::FAILURE)
    }
}
