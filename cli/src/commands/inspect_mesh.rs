//! `atollctl inspect meshes|gateways|zoneingresses|zoneegresses`: tables an operator reads
//! at a glance, each from the REST API's lists (on the global: every zone's proxies).

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::get::Output;
use super::inspect::align;
use crate::client::{Api, ApiArgs, describe_error};

/// The `items` of a list at `path`; `Err` carries the API's answer.
fn items(api: &Api, path: &str) -> anyhow::Result<Result<Vec<Value>, String>> {
    let response = api.get(path)?;
    if !response.status().is_success() {
        return Ok(Err(describe_error(response)));
    }
    let body: Value = response.json().context("reading the response")?;
    Ok(Ok(body["items"].as_array().cloned().unwrap_or_default()))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints `rows` (the first is the header) or their JSON/YAML form.
fn print(rows: Vec<Vec<String>>, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Table => print!("{}", align(&rows)),
        _ => {
            let header = rows.first().cloned().unwrap_or_default();
            let objects: Vec<Value> = rows
                .iter()
                .skip(1)
                .map(|r| {
                    Value::Object(
                        header
                            .iter()
                            .map(|h| h.to_lowercase())
                            .zip(r.iter().map(|c| Value::String(c.clone())))
                            .collect(),
                    )
                })
                .collect();
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&objects)?);
            } else {
                print!("{}", serde_norway::to_string(&objects)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

macro_rules! or_fail {
    ($result:expr) => {
        match $result? {
            Ok(items) => items,
            Err(why) => {
                eprintln!("Error: {why}");
                return Ok(ExitCode::FAILURE);
            }
        }
    };
}

pub fn meshes(args: &ApiArgs, output: Output) -> anyhow::Result<ExitCode> {
    let api = args.connect()?;
    let mut rows = vec![
        ["NAME", "MTLS", "DATA PLANES ONLINE"]
            .map(String::from)
            .to_vec(),
    ];
    for mesh in or_fail!(items(&api, "/meshes?size=1000")) {
        let name = text(&mesh["name"]);
        let dataplanes = or_fail!(items(&api, &format!("/meshes/{name}/dataplanes+insights")));
        let online = dataplanes.iter().filter(|d| d["online"] == true).count();
        rows.push(vec![
            name,
            mesh["mtls"]["enabledBackend"]
                .as_str()
                .unwrap_or("off")
                .to_string(),
            format!("{online}/{}", dataplanes.len()),
        ]);
    }
    print(rows, output)
}

pub fn gateways(args: &ApiArgs, output: Output) -> anyhow::Result<ExitCode> {
    let api = args.connect()?;
    let mut rows = vec![
        ["MESH", "NAME", "LISTENERS", "ROUTES"]
            .map(String::from)
            .to_vec(),
    ];
    for mesh in or_fail!(items(&api, "/meshes?size=1000")) {
        let mesh = text(&mesh["name"]);
        let routes = or_fail!(items(
            &api,
            &format!("/meshes/{mesh}/meshhttproutes?size=1000")
        ));
        for gateway in or_fail!(items(
            &api,
            &format!("/meshes/{mesh}/meshgateways?size=1000")
        )) {
            let name = text(&gateway["name"]);
            let listeners: Vec<String> = gateway["conf"]["listeners"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    let host = l["hostname"]
                        .as_str()
                        .map(|h| format!(" {h}"))
                        .unwrap_or_default();
                    format!("{}:{}{host}", text(&l["protocol"]), text(&l["port"]))
                })
                .collect();
            let attached: Vec<String> = routes
                .iter()
                .filter(|r| r["spec"]["targetRef"]["name"].as_str() == Some(name.as_str()))
                .map(|r| text(&r["name"]))
                .collect();
            rows.push(vec![
                mesh.clone(),
                name,
                listeners.join(", "),
                if attached.is_empty() {
                    "-".into()
                } else {
                    attached.join(", ")
                },
            ]);
        }
    }
    print(rows, output)
}

pub fn zone_proxies(args: &ApiArgs, plural: &str, output: Output) -> anyhow::Result<ExitCode> {
    let api = args.connect()?;
    let mut rows = vec![
        ["NAME", "ZONE", "ADDRESS", "ADVERTISED", "SERVICES"]
            .map(String::from)
            .to_vec(),
    ];
    for proxy in or_fail!(items(&api, &format!("/{plural}?size=1000"))) {
        let net = &proxy["networking"];
        let at = |address: &Value, port: &Value| {
            if address.is_null() {
                "-".to_string()
            } else {
                format!("{}:{}", text(address), text(port))
            }
        };
        rows.push(vec![
            text(&proxy["name"]),
            text(&proxy["zone"]),
            at(&net["address"], &net["port"]),
            at(&net["advertisedAddress"], &net["advertisedPort"]),
            proxy["availableServices"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ]);
    }
    print(rows, output)
}
