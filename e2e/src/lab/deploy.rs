//! The lab's control planes, started from the shipped systemd units as an operator would:
//! the global (its store filled into `atoll-global.env`), zone certificates issued with
//! `atollctl` on the global's host and "copied" to the zone's, and zones dialling the global
//! at its lab address. Shared by the lab test and the fault tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::Host;
use super::unit::Install;
use crate::binaries;
use crate::process::Process;
use crate::zone::eventually;

/// Kuma's default ports: every host has its own port space.
pub const API: u16 = 5681;
pub const DIAGNOSTICS: u16 = 5680;
pub const KDS: u16 = 5685;
pub const DP_SERVER: u16 = 5678;
pub const RUST_LOG: (&str, &str) = ("RUST_LOG", "info");

/// Waits until `GET path` on `host`'s loopback at `port` answers 200, failing early with the
/// process's log if it exits.
pub fn wait_local_ok(
    host: &Host,
    process: &mut Process,
    port: u16,
    path: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let mut last = String::new();
    let mut exited = None;
    let waited = eventually(&format!("{path} on {}:{port}", host.name), deadline, || {
        if let Err(err) = process.check_alive() {
            exited = Some(err);
            return true;
        }
        match host.local_get(port, path) {
            Ok((200, _)) => true,
            Ok((code, body)) => {
                last = format!("{code} {body}");
                false
            }
            Err(err) => {
                last = format!("{err:#}");
                false
            }
        }
    });
    if let Some(err) = exited {
        return Err(err);
    }
    waited
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{e} (last: {last})\n{}", process.log_tail(80)))
}

/// The global of `atoll-global.service` on `host`, with the store in `store`; returns once
/// its API, KDS port and admin token are there.
pub fn start_global(
    host: &Host,
    store: &[(&str, String)],
    deadline: Duration,
) -> anyhow::Result<Process> {
    let mut fill: Vec<(&str, String)> = store.to_vec();
    // A name no zone dials: zones dial the global's address, which the certificate must name
    // without being told.
    fill.push((
        "KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES",
        "global.lab.example".into(),
    ));
    let mut global = Install {
        unit: "atoll-global.service",
        instance: None,
        fill: &fill,
        credentials: &[],
        extra_args: &[],
        extra_env: &[RUST_LOG],
    }
    .start(host)?;
    wait_local_ok(host, &mut global, DIAGNOSTICS, "/ready", deadline)?;
    wait_local_ok(host, &mut global, API, "/", deadline)?;
    // KDS opens and the admin token is written once the KDS CA and secrets exist.
    let token = host.dir.join("var/lib/atoll-global/admin-token");
    let kds = SocketAddr::from((host.address, KDS));
    eventually("the global's KDS port and admin token", deadline, || {
        token.exists() && host.connect(kds).is_ok()
    })
    .map_err(|e| anyhow::anyhow!("{e}\n{}", global.log_tail(60)))?;
    Ok(global)
}

pub fn admin_token(global: &Host) -> anyhow::Result<String> {
    let path = global.dir.join("var/lib/atoll-global/admin-token");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| path.display().to_string())?
        .trim()
        .to_string())
}

/// `atollctl args…` run by the operator on the global's host, against its local API:
/// (exit code, stdout, stderr).
pub fn try_atollctl(global: &Host, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let token = admin_token(global)?;
    let api = format!("http://127.0.0.1:{API}");
    let mut all = vec!["--api-address", &api];
    all.extend_from_slice(args);
    let program = binaries::binary("atollctl")?;
    global.run(&program, &all, &[("ATOLL_API_TOKEN", &token)])
}

/// [`try_atollctl`], failing unless it exits 0; returns its stdout.
pub fn atollctl(global: &Host, args: &[&str]) -> anyhow::Result<String> {
    let (code, stdout, stderr) = try_atollctl(global, args)?;
    if code != 0 {
        bail!("atollctl {args:?} failed:\n{stdout}\n{stderr}");
    }
    Ok(stdout)
}

/// `atollctl apply` of `yaml` (saved as `<dir>/<name>.yaml`) on the global's host.
pub fn apply(global: &Host, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<()> {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml)?;
    atollctl(global, &["apply", "-f", &file.display().to_string()]).map(drop)
}

/// The zone's KDS files, issued on the global's host and "copied" to the zone's.
pub fn zone_credentials(
    global: &Host,
    dir: &Path,
    zone: &str,
) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let files = [
        ("kds-ca.crt", dir.join(format!("{zone}-kds-ca.crt"))),
        ("zone.crt", dir.join(format!("{zone}.crt"))),
        ("zone.key", dir.join(format!("{zone}.key"))),
    ];
    atollctl(
        global,
        &[
            "generate",
            "zone-certificate",
            "--zone",
            zone,
            "--cert-file",
            &files[1].1.display().to_string(),
            "--key-file",
            &files[2].1.display().to_string(),
            "--ca-file",
            &files[0].1.display().to_string(),
        ],
    )?;
    Ok(files.to_vec())
}

/// `atoll-zone.service` on `host`, dialling the global's KDS at `global_kds` (its address
/// and [`KDS`], or a proxy's), with its ingress and egress interfaces set to `interface` and
/// `extra_args` appended (a drop-in).
pub fn zone_unit(
    host: &Host,
    name: &str,
    global_kds: SocketAddr,
    interface: Ipv4Addr,
    credentials: &[(&str, PathBuf)],
    extra_args: &[&str],
) -> anyhow::Result<Process> {
    Install {
        unit: "atoll-zone.service",
        instance: None,
        fill: &[
            ("KUMA_MULTIZONE_ZONE_NAME", name.to_string()),
            (
                "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS",
                format!("grpcs://{global_kds}"),
            ),
            ("KUMA_ZONE_INGRESS_INTERFACE", interface.to_string()),
            ("KUMA_ZONE_EGRESS_INTERFACE", interface.to_string()),
        ],
        credentials,
        extra_args,
        extra_env: &[RUST_LOG],
    }
    .start(host)
}
