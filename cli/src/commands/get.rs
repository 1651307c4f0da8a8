//! `atollctl get TYPE [NAME] [-m MESH] [-o yaml|json|table]`.

use std::process::ExitCode;

use anyhow::Context;
use atoll_model::{Kind, Scope};
use serde_json::Value;

use crate::client::{ApiArgs, describe_error};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Resource type: name or plural, any case (e.g. `meshgateways`, `MeshGateway`).
    #[arg(value_name = "TYPE")]
    kind: String,
    name: Option<String>,
    /// Mesh of mesh-scoped types; listing without it shows every mesh.
    #[arg(short, long)]
    mesh: Option<String>,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn resolve_kind(text: &str) -> anyhow::Result<Kind> {
    Kind::lookup(text).with_context(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        format!("unknown type {text:?}; known: {}", known.join(", "))
    })
}

/// The mesh of a single mesh-scoped resource: `-m`, or `default` as in Kuma.
pub fn mesh_for(kind: Kind, mesh: &Option<String>) -> Option<String> {
    match kind.scope() {
        Scope::Mesh => Some(mesh.clone().unwrap_or_else(|| "default".into())),
        Scope::Global => None,
    }
}

pub fn run(api: &ApiArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let kind = resolve_kind(&args.kind)?;
    let client = api.connect()?;
    let path = match &args.name {
        Some(name) => kind.api_path(mesh_for(kind, &args.mesh).as_deref(), name),
        None => kind.api_list_path(args.mesh.as_deref()),
    };
    let mut items = Vec::new();
    let mut next = Some(path);
    while let Some(path) = next.take() {
        let response = client.get(&path)?;
        if !response.status().is_success() {
            eprintln!("Error: {}", describe_error(response));
            return Ok(ExitCode::FAILURE);
        }
        let body: Value = response.json().context("reading the response")?;
        if args.name.is_some() {
            items.push(body);
        } else {
            items.extend(body["items"].as_array().cloned().unwrap_or_default());
            next = body["next"].as_str().map(str::to_string);
        }
    }
    let single = args.name.is_some();
    match args.output {
        Output::Json if single => println!("{}", serde_json::to_string_pretty(&items[0])?),
        Output::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        Output::Yaml => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    println!("---");
                }
                print!("{}", serde_norway::to_string(item)?);
            }
        }
        Output::Table => print_table(kind, &items),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(kind: Kind, items: &[Value]) {
    let with_mesh = kind.scope() == Scope::Mesh;
    let rows: Vec<[String; 3]> = items
        .iter()
        .map(|item| {
            let field = |k: &str| item[k].as_str().unwrap_or("-").to_string();
            [field("mesh"), field("name"), field("modificationTime")]
        })
        .collect();
    let width = |i: usize, title: &str| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let (mw, nw) = (width(0, "MESH"), width(1, "NAME"));
    if with_mesh {
        println!("{:mw$}  {:nw$}  MODIFIED", "MESH", "NAME");
    } else {
        println!("{:nw$}  MODIFIED", "NAME");
    }
    for [mesh, name, modified] in rows {
        if with_mesh {
            println!("{mesh:mw$}  {name:nw$}  {modified}");
        } else {
            println!("{name:nw$}  {modified}");
        }
    }
}
