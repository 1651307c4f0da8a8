//! Data planes on lab hosts, as an operator sets them up: a token issued with `atollctl` on
//! the global's host, the Dataplane file and the zone's DP server CA "copied" to the data
//! plane's host, and `atoll-dp@<name>.service` started there, dialling the zone's address.
//! Shared by the lab test and the lab's fault rows.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use super::Host;
use super::deploy::{DP_SERVER, RUST_LOG, try_atollctl, wait_local_ok};
use super::unit::Install;
use crate::process::Process;
use crate::zone::eventually;

/// The mesh `default` with builtin mTLS (cross-zone traffic needs it); `zone_egress` routes
/// cross-zone calls through the caller's zone egress.
pub fn mesh_yaml(zone_egress: bool) -> String {
    format!(
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\nrouting:\n  zoneEgress: {zone_egress}\n"
    )
}

/// A data plane token issued on the global (as the operator would, with atollctl).
/// Retried while the global answers 503: the mesh's signing key is generated just after the
/// mesh is created.
pub fn token(
    global: &Host,
    (name, service, proxy_type): (&str, &str, &str),
    deadline: Duration,
) -> anyhow::Result<String> {
    let tag = format!("kuma.io/service={service}");
    let args = [
        "generate",
        "dataplane-token",
        "--mesh",
        "default",
        "--name",
        name,
        "--tag",
        &tag,
        "--type",
        proxy_type,
    ];
    let mut outcome = (0, String::new(), String::new());
    let mut failed = None;
    eventually("a data plane token", deadline, || {
        match try_atollctl(global, &args) {
            Ok(answer) => outcome = answer,
            Err(err) => {
                failed = Some(err);
                return true;
            }
        }
        outcome.0 == 0 || !outcome.2.contains("503")
    })
    .map_err(|e| anyhow::anyhow!("{e}: {}", outcome.2))?;
    if let Some(err) = failed {
        return Err(err);
    }
    let (code, stdout, stderr) = outcome;
    if code != 0 {
        bail!("atollctl {args:?} failed:\n{stdout}\n{stderr}");
    }
    Ok(stdout.trim().to_string())
}

/// `atoll-dp@<name>.service` on `dp_host` for the Dataplane `yaml`, connected to the zone on
/// `zone_host`; returns once Envoy is ready on its `admin` port.
pub fn start(
    (global, zone_host, dp_host): (&Host, &Host, &Host),
    dir: &Path,
    identity: (&str, &str, &str),
    yaml: &str,
    admin: u16,
    deadline: Duration,
) -> anyhow::Result<Process> {
    let name = identity.0;
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, token(global, identity, deadline)?)
        .with_context(|| token_file.display().to_string())?;
    let dataplane = dir.join(format!("{name}.yaml"));
    std::fs::write(&dataplane, yaml).with_context(|| dataplane.display().to_string())?;
    let ca = zone_host.dir.join("var/lib/atoll-zone/dp-server-ca.crt");
    let mut process = Install {
        unit: "atoll-dp@.service",
        instance: Some(name),
        fill: &[(
            "KUMA_CONTROL_PLANE_URL",
            format!("https://{}:{DP_SERVER}", zone_host.address),
        )],
        credentials: &[
            ("token", token_file),
            ("dataplane.yaml", dataplane),
            ("dp-server-ca.crt", ca),
        ],
        extra_args: &[],
        extra_env: &[RUST_LOG],
    }
    .start(dp_host)?;
    wait_local_ok(dp_host, &mut process, admin, "/ready", deadline)?;
    Ok(process)
}

/// A sidecar's Dataplane: `service` on `address`, its app on the host's loopback at `app`,
/// and, with `outbound`, the service `backend` reachable at 127.0.0.1:`outbound`.
pub fn sidecar_yaml(
    name: &str,
    service: &str,
    address: Ipv4Addr,
    (admin, inbound, app): (u16, u16, u16),
    outbound: Option<u16>,
) -> String {
    let mut yaml = format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: {address}\n  admin:\n    port: {admin}\n  inbound:\n  - port: {inbound}\n    servicePort: {app}\n    tags:\n      kuma.io/service: {service}\n      kuma.io/protocol: http\n"
    );
    if let Some(port) = outbound {
        yaml.push_str(&format!(
            "  outbound:\n  - port: {port}\n    tags:\n      kuma.io/service: backend\n"
        ));
    }
    yaml
}
