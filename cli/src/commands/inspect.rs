//! `atollctl inspect zones`: each zone's KDS status from the global; `atollctl inspect
//! dataplanes -m MESH`: a mesh's data planes and whether they are online (on the global,
//! every zone's); `atollctl inspect dataplane NAME -m MESH`: the policies applied to a proxy,
//! from its zone.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::get::Output;
use crate::client::{ApiArgs, describe_error};

#[derive(clap::Subcommand)]
pub enum What {
    /// Zones with their connection state, last ACKs and last NACK.
    Zones {
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Data planes of a mesh with their status (on the global: every zone's).
    Dataplanes {
        #[arg(short, long, default_value = "default")]
        mesh: String,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Meshes with their mTLS backend and how many data planes are online.
    Meshes {
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// MeshGateways with their listeners and attached MeshHTTPRoutes.
    Gateways {
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Zone ingresses with their addresses and the services they offer.
    Zoneingresses {
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Zone egresses with their addresses.
    Zoneegresses {
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The policies applied to a Dataplane (asks its zone control plane).
    Dataplane {
        name: String,
        #[arg(short, long, default_value = "default")]
        mesh: String,
        #[arg(short, long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

pub fn run(api: &ApiArgs, what: &What) -> anyhow::Result<ExitCode> {
    match what {
        What::Zones { output } => list(api, "/zones/_overview", *output, table),
        What::Dataplane { name, mesh, output } => {
            super::inspect_dataplane::run(api, mesh, name, *output)
        }
        What::Meshes { output } => super::inspect_mesh::meshes(api, *output),
        What::Gateways { output } => super::inspect_mesh::gateways(api, *output),
        What::Zoneingresses { output } => {
            super::inspect_mesh::zone_proxies(api, "zoneingresses", *output)
        }
        What::Zoneegresses { output } => {
            super::inspect_mesh::zone_proxies(api, "zoneegresses", *output)
        }
        What::Dataplanes { mesh, output } => list(
            api,
            &format!("/meshes/{mesh}/dataplanes+insights"),
            *output,
            dataplane_table,
        ),
    }
}

/// The `items` of a list at `path`, printed as `output` (`table` makes the table).
fn list(
    api: &ApiArgs,
    path: &str,
    output: Output,
    table: fn(&[Value]) -> String,
) -> anyhow::Result<ExitCode> {
    let response = api.connect()?.get(path)?;
    if !response.status().is_success() {
        eprintln!("Error: {}", describe_error(response));
        return Ok(ExitCode::FAILURE);
    }
    let body: Value = response.json().context("reading the response")?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        Output::Yaml => print!("{}", serde_norway::to_string(&items)?),
        Output::Table => print!("{}", table(&items)),
    }
    Ok(ExitCode::SUCCESS)
}

fn table(items: &[Value]) -> String {
    let mut rows = vec![
        [
            "NAME",
            "STATUS",
            "ENABLED",
            "CONNECTED SINCE",
            "LAST SEEN",
            "LAST NACK",
        ]
        .map(String::from),
    ];
    for item in items {
        let insight = &item["insight"];
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        let nack = match &insight["lastNack"] {
            Value::Object(n) => format!(
                "{}: {}",
                text(&n["type"].clone()),
                text(&n["reason"].clone())
            ),
            _ => "-".into(),
        };
        rows.push([
            text(&item["name"]),
            if item["online"].as_bool() == Some(true) {
                "Online".into()
            } else {
                "Offline".into()
            },
            item["enabled"].as_bool().unwrap_or(true).to_string(),
            text(&insight["connectTime"]),
            text(&insight["lastSeen"]),
            nack,
        ]);
    }
    align(&rows)
}

fn dataplane_table(items: &[Value]) -> String {
    let mut rows = vec![
        [
            "NAME", "ZONE", "SERVICE", "STATUS", "SINCE", "SENT", "REJECTED", "PROBLEMS",
        ]
        .map(String::from),
    ];
    for item in items {
        let insight = &item["dataplaneInsight"];
        let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
        let networking = &item["dataplane"]["networking"];
        let service = networking["inbound"][0]["tags"]["kuma.io/service"]
            .as_str()
            .or_else(|| networking["gateway"]["tags"]["kuma.io/service"].as_str())
            .unwrap_or("-");
        let online = item["online"].as_bool() == Some(true);
        rows.push([
            text(&item["name"]),
            text(&item["labels"]["kuma.io/zone"]),
            service.to_string(),
            if online { "Online" } else { "Offline" }.to_string(),
            text(if online {
                &insight["connectTime"]
            } else {
                &insight["disconnectTime"]
            }),
            insight["responsesSent"].as_u64().unwrap_or(0).to_string(),
            insight["responsesRejected"]
                .as_u64()
                .unwrap_or(0)
                .to_string(),
            insight["problems"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ]);
    }
    align(&rows)
}

/// Rows as columns padded to their widest cell.
pub(super) fn align<R: AsRef<[String]>>(rows: &[R]) -> String {
    let columns = rows.first().map_or(0, |r| r.as_ref().len());
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.as_ref()[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let row = row.as_ref();
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:w$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_status_and_nack() {
        let items = serde_json::json!([
            {"name": "zone-1", "enabled": true, "online": true,
             "insight": {"connectTime": "2026-11-22T10:00:00Z", "lastSeen": "2026-11-22T10:05:00Z",
                         "lastNack": {"type": "MeshGateway", "reason": "huge.default: too large"}}},
            {"name": "zone-2", "enabled": false, "online": false, "insight": null}
        ]);
        let out = table(items.as_array().unwrap());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].contains("Online")
                && lines[1].contains("MeshGateway: huge.default: too large"),
            "{out}"
        );
        assert!(
            lines[2].contains("Offline") && lines[2].contains("false"),
            "{out}"
        );
    }
}
