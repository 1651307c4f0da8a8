//! `atollctl apply -f FILE|-`: validate every document locally, then create or update each.
//! Re-applying the same file changes nothing.

use std::process::ExitCode;

use atoll_model::{Kind, encode_value, parse_documents};

use super::{input, validate};
use crate::client::{ApiArgs, describe_error};

#[derive(clap::Args)]
pub struct Args {
    /// A YAML or JSON file with one or more resources; `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    file: String,
}

pub fn run(api: &ApiArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let text = input::read(&args.file)?;
    let documents = parse_documents(&text);
    let source = input::display_name(&args.file);
    // Nothing is applied unless everything is valid: half-applied files are hard to reason about.
    if !validate::report_invalid(source, &documents, &mut std::io::stderr()) {
        return Ok(ExitCode::FAILURE);
    }
    let mut resources: Vec<_> = documents
        .into_iter()
        .filter_map(|d| d.outcome.ok())
        .collect();
    // Meshes first: everything else lives in one.
    resources.sort_by_key(|r| r.kind() != Kind::Mesh);
    let client = api.connect()?;
    let mut failed = 0;
    for resource in &resources {
        let path = resource.kind().api_path(resource.mesh(), resource.name());
        let label = match resource.mesh() {
            Some(mesh) => format!("{}/{} (mesh {mesh})", resource.kind(), resource.name()),
            None => format!("{}/{}", resource.kind(), resource.name()),
        };
        let response = client.put_json(&path, &encode_value(resource))?;
        if response.status().is_success() {
            let outcome = response
                .headers()
                .get("x-atoll-outcome")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("applied")
                .to_string();
            println!("{label}: {outcome}");
        } else {
            failed += 1;
            eprintln!("{label}: {}", describe_error(response));
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
