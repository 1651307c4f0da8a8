//! `atollctl inspect dataplane NAME -m MESH`: the zone's `_rules` answer for one Dataplane,
//! as a table of policy type, direction, destination or caller, origins and configuration.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::get::Output;
use super::inspect::align;
use crate::client::{ApiArgs, describe_error};

pub fn run(api: &ApiArgs, mesh: &str, name: &str, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/meshes/{}/dataplanes/{}/_rules",
        segment(mesh),
        segment(name)
    );
    let response = api.connect()?.get(&path)?;
    if !response.status().is_success() {
        eprintln!("Error: {}", describe_error(response));
        return Ok(ExitCode::FAILURE);
    }
    let body: Value = response.json().context("reading the response")?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        Output::Yaml => print!("{}", serde_norway::to_string(&body)?),
        Output::Table => print!("{}", table(&body)),
    }
    Ok(ExitCode::SUCCESS)
}

/// A path segment with the characters a URL path cannot carry escaped.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn table(body: &Value) -> String {
    let mut rows = vec![["TYPE", "DIRECTION", "TARGET", "ORIGINS", "CONF"].map(String::from)];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for rule in list(&body["rules"]) {
        let kind = text(&rule["type"]);
        let sections = [
            ("to", "toRules"),
            ("from", "fromRules"),
            ("gateway", "gatewayRules"),
        ];
        for (direction, field) in sections {
            for entry in list(&rule[field]) {
                let target = match direction {
                    "to" => text(&entry["destination"]),
                    "from" => text(&entry["caller"]),
                    _ => format!(
                        "{} on {}",
                        text(&entry["route"]),
                        text(&entry["virtualHost"])
                    ),
                };
                let origins: Vec<String> = list(&entry["origins"])
                    .iter()
                    .map(|o| text(&o["name"]))
                    .collect();
                rows.push([
                    kind.clone(),
                    direction.to_string(),
                    target,
                    origins.join(","),
                    serde_json::to_string(&entry["conf"]).unwrap_or_default(),
                ]);
            }
        }
    }
    if rows.len() == 1 {
        return "no policy applies to this Dataplane\n".into();
    }
    align(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_row_per_destination_caller_and_gateway_route() {
        let body = json!({
            "resource": {"type": "Dataplane", "mesh": "default", "name": "web-1"},
            "rules": [
                {"type": "MeshTimeout",
                 "toRules": [{"destination": "api", "conf": {"http": {"requestTimeout": "2s"}},
                              "origins": [{"name": "mesh-wide"}, {"name": "to-api"}]}],
                 "fromRules": [{"caller": "Mesh", "conf": {"idleTimeout": "2h"},
                                "origins": [{"name": "mesh-wide"}]}],
                 "gatewayRules": [{"virtualHost": "default:edge:8080:*", "route": "slow",
                                   "conf": {"http": {"requestTimeout": "500ms"}},
                                   "origins": [{"name": "slow-route"}]}]}
            ]
        });
        let out = table(&body);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("TYPE"), "{out}");
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[1].contains("to")
                && lines[1].contains("api")
                && lines[1].contains("mesh-wide,to-api")
                && lines[1].ends_with(r#"{"http":{"requestTimeout":"2s"}}"#),
            "{out}"
        );
        assert!(
            lines[2].contains("from") && lines[2].contains("Mesh"),
            "{out}"
        );
        assert!(
            lines[3].contains("slow on default:edge:8080:*") && lines[3].contains("slow-route"),
            "{out}"
        );
        assert_eq!(
            table(&json!({"rules": []})),
            "no policy applies to this Dataplane\n"
        );
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
