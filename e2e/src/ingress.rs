//! A zone ingress as its own process (`atoll-zone ingress`), following a zone's routing table
//! with a zone token the global issued.

use std::collections::BTreeMap;

use tempfile::TempDir;

use crate::global::{Global, READY_DEADLINE};
use crate::process::{Process, Spec, token_file_args};
use crate::zone::Zone;
use crate::{binaries, free_port};

pub struct Ingress {
    pub port: u16,
    pub diagnostics_port: u16,
    pub process: Process,
    _dir: TempDir,
}

impl Ingress {
    /// Starts an ingress for `zone` on free ports, with a zone token from `global`, and waits
    /// until it listens.
    pub fn start(global: &Global, zone: &Zone) -> anyhow::Result<Ingress> {
        Self::start_with(
            zone,
            Some(global.zone_token(&zone.name, "ingress")?),
            "127.0.0.1",
        )
    }

    /// Starts an ingress for `zone` presenting `token` (or none) and advertising `address`,
    /// and waits until it listens.
    pub fn start_with(
        zone: &Zone,
        token: Option<String>,
        address: &str,
    ) -> anyhow::Result<Ingress> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("atoll-ingress-{}-", zone.name))
            .tempdir()?;
        let (port, diagnostics_port) = (free_port()?, free_port()?);
        let mut args: Vec<String> = [
            "ingress",
            "--cp-address",
            &format!("https://127.0.0.1:{}", zone.dp_port),
            "--ca-cert-file",
            &zone.dp_ca().display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--advertised-address",
            address,
            "--diagnostics-port",
            &diagnostics_port.to_string(),
            "--drain-time",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(token_file_args(
            dir.path(),
            "zone-token",
            "--zone-token-file",
            token,
        )?);
        let spec = Spec {
            name: format!("atoll-zone ingress ({})", zone.name),
            program: binaries::binary("atoll-zone")?,
            args,
            env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
        };
        let mut process = Process::start(spec, dir.path().join("ingress.log"))?;
        process.wait_tcp(port, READY_DEADLINE)?;
        process.wait_http_ok(diagnostics_port, "/ready", READY_DEADLINE)?;
        Ok(Ingress {
            port,
            diagnostics_port,
            process,
            _dir: dir,
        })
    }
}
