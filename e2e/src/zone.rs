//! An `atoll-zone` process on free loopback ports, connected to a global's KDS with a zone
//! certificate the global issued.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::cli::atollctl;
use crate::global::{Global, READY_DEADLINE};
use crate::process::{Process, Spec};
use crate::{binaries, free_port};

pub struct Zone {
    pub name: String,
    pub http_port: u16,
    /// The DP server (ADS, bootstrap).
    pub dp_port: u16,
    /// MADS, for Prometheus.
    pub mads_port: u16,
    /// The in-process zone ingress, when started with one.
    pub ingress_port: Option<u16>,
    /// The in-process zone egress, when started with one.
    pub egress_port: Option<u16>,
    pub diagnostics_port: u16,
    pub process: Process,
    dir: TempDir,
}

/// What to start a zone with.
#[derive(Debug, Clone, Default)]
pub struct ZoneOptions {
    /// Connect to the global's KDS at this port instead of the global's own (e.g. a proxy).
    pub kds_port: Option<u16>,
    /// Trust this CA file for the global instead of the one the global handed out.
    pub root_ca: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Present a certificate issued for this zone name instead of its own.
    pub certificate_zone: Option<String>,
    /// Do not wait for readiness (for zones expected to fail).
    pub no_wait: bool,
    /// Run the zone ingress in-process (`atoll-zone run --ingress`) on a free port.
    pub ingress: bool,
    /// Run a zone egress in-process (`atoll-zone run --egress`) on a free port.
    pub egress: bool,
    /// Connect with these files instead of a certificate issued through `atollctl` (e.g. the
    /// one Terraform's `atoll_zone` holds).
    pub certificate: Option<ZoneCertificate>,
}

/// Certificate, key and CA files for a zone, issued by the global through `atollctl`.
#[derive(Debug, Clone)]
pub struct ZoneCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Global {
    /// Issues a zone certificate into `dir`.
    pub fn zone_certificate(
        &self,
        zone: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<ZoneCertificate> {
        let files = ZoneCertificate {
            cert: dir.join(format!("{zone}.crt")),
            key: dir.join(format!("{zone}.key")),
            ca: dir.join("kds-ca.crt"),
        };
        let run = atollctl(
            &[
                "--api-address",
                &self.api(),
                "generate",
                "zone-certificate",
                "--zone",
                zone,
                "--cert-file",
                &files.cert.display().to_string(),
                "--key-file",
                &files.key.display().to_string(),
                "--ca-file",
                &files.ca.display().to_string(),
            ],
            "",
        )?;
        if run.code != 0 {
            bail!(
                "atollctl generate zone-certificate failed: {}{}",
                run.stdout,
                run.stderr
            );
        }
        Ok(files)
    }
}

impl Zone {
    /// Starts zone `name` connected to `global` and waits until its API answers.
    pub fn start(name: &str, global: &Global, options: ZoneOptions) -> anyhow::Result<Zone> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("atoll-{name}-"))
            .tempdir()?;
        let cert_zone = options.certificate_zone.as_deref().unwrap_or(name);
        let certs = match &options.certificate {
            Some(given) => given.clone(),
            None => global
                .zone_certificate(cert_zone, dir.path())
                .context("issuing the zone certificate")?,
        };
        let (http_port, https_port, diagnostics_port) = (free_port()?, free_port()?, free_port()?);
        let (dp_port, mads_port) = (free_port()?, free_port()?);
        let kds_port = options.kds_port.unwrap_or(global.kds_port);
        let root_ca = options.root_ca.clone().unwrap_or(certs.ca.clone());
        let mut env: BTreeMap<String, String> = [
            ("KUMA_MULTIZONE_ZONE_NAME", name.to_string()),
            (
                "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS",
                format!("grpcs://127.0.0.1:{kds_port}"),
            ),
            (
                "KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE",
                root_ca.display().to_string(),
            ),
            (
                "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE",
                certs.cert.display().to_string(),
            ),
            (
                "KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE",
                certs.key.display().to_string(),
            ),
            (
                "KUMA_GENERAL_WORK_DIR",
                dir.path().join("work").display().to_string(),
            ),
            ("KUMA_API_SERVER_HTTP_PORT", http_port.to_string()),
            ("KUMA_API_SERVER_HTTP_INTERFACE", "127.0.0.1".into()),
            ("KUMA_API_SERVER_HTTPS_PORT", https_port.to_string()),
            ("KUMA_API_SERVER_HTTPS_INTERFACE", "127.0.0.1".into()),
            ("KUMA_DIAGNOSTICS_SERVER_PORT", diagnostics_port.to_string()),
            ("KUMA_DIAGNOSTICS_SERVER_INTERFACE", "127.0.0.1".into()),
            ("KUMA_DP_SERVER_PORT", dp_port.to_string()),
            ("KUMA_DP_SERVER_INTERFACE", "127.0.0.1".into()),
            (
                "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT",
                mads_port.to_string(),
            ),
            (
                "KUMA_MONITORING_ASSIGNMENT_SERVER_INTERFACE",
                "127.0.0.1".into(),
            ),
            ("RUST_LOG", "info,atoll_kds=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut args = vec!["run".to_string()];
        let ingress_port = if options.ingress {
            let port = free_port()?;
            env.insert("KUMA_ZONE_INGRESS_PORT".into(), port.to_string());
            env.insert("KUMA_ZONE_INGRESS_INTERFACE".into(), "127.0.0.1".into());
            env.insert(
                "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS".into(),
                "127.0.0.1".into(),
            );
            args.push("--ingress".into());
            Some(port)
        } else {
            None
        };
        let egress_port = if options.egress {
            let port = free_port()?;
            env.insert("KUMA_ZONE_EGRESS_PORT".into(), port.to_string());
            env.insert("KUMA_ZONE_EGRESS_INTERFACE".into(), "127.0.0.1".into());
            env.insert(
                "KUMA_ZONE_EGRESS_ADVERTISED_ADDRESS".into(),
                "127.0.0.1".into(),
            );
            args.push("--egress".into());
            Some(port)
        } else {
            None
        };
        env.extend(options.env.clone());
        let spec = Spec {
            name: format!("atoll-zone {name}"),
            program: binaries::binary("atoll-zone")?,
            args,
            env,
        };
        let mut process = Process::start(spec, dir.path().join("zone.log"))?;
        if !options.no_wait {
            process.wait_http_ok(diagnostics_port, "/ready", READY_DEADLINE)?;
            process.wait_http_ok(http_port, "/", READY_DEADLINE)?;
            process.wait_tcp(dp_port, READY_DEADLINE)?;
        }
        Ok(Zone {
            name: name.to_string(),
            http_port,
            dp_port,
            mads_port,
            ingress_port,
            egress_port,
            diagnostics_port,
            process,
            dir,
        })
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The CA that signed the DP server's certificate (what `atoll-dp --ca-cert-file` takes).
    pub fn dp_ca(&self) -> std::path::PathBuf {
        self.dir.path().join("work").join("dp-server-ca.crt")
    }

    /// Waits until the zone's API answers 200 for `path` (e.g. a resource synced from the
    /// global); an error carries the zone's log.
    pub fn wait_for(&self, path: &str, deadline: Duration) -> anyhow::Result<Duration> {
        eventually(&format!("{path} in {}", self.name), deadline, || {
            crate::process::http_get(self.http_port, path).is_ok_and(|(code, _)| code == 200)
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        self.process.log_tail(400)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Kills with SIGKILL and starts again with the same store settings.
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.process
            .wait_http_ok(self.diagnostics_port, "/ready", READY_DEADLINE)
    }
}

impl Zone {
    /// A data plane token from this zone's API (as the local admin), waiting while the mesh or
    /// its signing key has not arrived from the global yet. `tags` are (key, allowed value)
    /// pairs.
    pub fn dataplane_token(
        &self,
        mesh: &str,
        name: Option<&str>,
        tags: &[(&str, &str)],
        proxy_type: &str,
    ) -> anyhow::Result<String> {
        let mut by_tag: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (key, value) in tags {
            by_tag.entry(key).or_default().push(value);
        }
        let mut body = serde_json::json!({"mesh": mesh, "tags": by_tag, "type": proxy_type});
        if let Some(name) = name {
            body["name"] = name.into();
        }
        // The mesh reaches the zone from the global; until it has, the zone rightly says the
        // mesh does not exist.
        eventually(
            &format!("mesh {mesh} in {}", self.name),
            READY_DEADLINE,
            || {
                crate::process::http_get(self.http_port, &format!("/meshes/{mesh}"))
                    .is_ok_and(|(code, _)| code == 200)
            },
        )?;
        issue_token(self.http_port, "/tokens/dataplane", &body.to_string())
    }
}

/// POSTs a token request to the API on `port` (as the local admin) until it is answered, for
/// up to [`READY_DEADLINE`] while the answer is 503 (keys still on their way).
pub fn issue_token(port: u16, path: &str, body: &str) -> anyhow::Result<String> {
    let until = std::time::Instant::now() + READY_DEADLINE;
    loop {
        let (status, text) = crate::process::http_request(port, "POST", path, Some(body))?;
        match status {
            200 => return Ok(text.trim().to_string()),
            503 if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => bail!("POST {path} answered {status}: {text}"),
        }
    }
}

/// Polls `check` every 20 ms until it returns true or `deadline` passes; returns the time taken.
pub fn eventually(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    while !check() {
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(started.elapsed())
}
