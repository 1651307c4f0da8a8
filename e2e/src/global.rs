//! An `atoll-global` process on free loopback ports with its own work directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{Process, Spec};
use crate::{binaries, free_port};

/// How long a control plane may take to become ready.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Global {
    pub http_port: u16,
    pub https_port: u16,
    pub diagnostics_port: u16,
    pub kds_port: u16,
    pub process: Process,
    work_dir: PathBuf,
    _dir: TempDir,
}

/// What to start a global with.
#[derive(Debug, Clone, Default)]
pub struct GlobalOptions {
    /// A PostgreSQL URL; `None` uses the memory store.
    pub postgres_url: Option<String>,
    /// Extra environment, e.g. pool settings.
    pub env: BTreeMap<String, String>,
    /// Share a work directory (and so certificates and admin token) with another global.
    pub work_dir: Option<PathBuf>,
    /// Fixed (HTTP, HTTPS, diagnostics) ports instead of free ones, e.g. Kuma's defaults.
    pub ports: Option<(u16, u16, u16)>,
    /// A fixed KDS port (e.g. to restart a global where zones expect it).
    pub kds_port: Option<u16>,
}

impl Global {
    /// Starts a global and waits until `/ready` answers 200.
    pub fn start(options: GlobalOptions) -> anyhow::Result<Global> {
        let dir = tempfile::Builder::new().prefix("atoll-global-").tempdir()?;
        let work_dir = options
            .work_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("work"));
        let (http_port, https_port, diagnostics_port) = match options.ports {
            Some(ports) => ports,
            None => (free_port()?, free_port()?, free_port()?),
        };
        let kds_port = options.kds_port.unwrap_or(free_port()?);
        let mut env: BTreeMap<String, String> = [
            ("KUMA_GENERAL_WORK_DIR", work_dir.display().to_string()),
            ("KUMA_API_SERVER_HTTP_PORT", http_port.to_string()),
            ("KUMA_API_SERVER_HTTP_INTERFACE", "127.0.0.1".into()),
            ("KUMA_API_SERVER_HTTPS_PORT", https_port.to_string()),
            ("KUMA_API_SERVER_HTTPS_INTERFACE", "127.0.0.1".into()),
            ("KUMA_DIAGNOSTICS_SERVER_PORT", diagnostics_port.to_string()),
            ("KUMA_DIAGNOSTICS_SERVER_INTERFACE", "127.0.0.1".into()),
            ("KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT", kds_port.to_string()),
            ("KUMA_MULTIZONE_GLOBAL_KDS_INTERFACE", "127.0.0.1".into()),
            ("RUST_LOG", "info,atoll_api=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(url) = &options.postgres_url {
            env.insert("KUMA_STORE_TYPE".into(), "postgres".into());
            env.insert("KUMA_STORE_POSTGRES_URL".into(), url.clone());
        }
        env.extend(options.env.clone());
        let spec = Spec {
            name: "atoll-global".into(),
            program: binaries::binary("atoll-global")?,
            args: vec!["run".into()],
            env,
        };
        let process = Process::start(spec, dir.path().join("global.log"))?;
        let mut global = Global {
            http_port,
            https_port,
            kds_port,
            diagnostics_port,
            process,
            work_dir,
            _dir: dir,
        };
        global.wait_ready()?;
        Ok(global)
    }

    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        self.process
            .wait_http_ok(self.diagnostics_port, "/ready", READY_DEADLINE)?;
        // The API listeners open right after the store is ready, KDS once the KDS CA is.
        self.process
            .wait_http_ok(self.http_port, "/", READY_DEADLINE)?;
        self.process.wait_tcp(self.kds_port, READY_DEADLINE)
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `atollctl apply` of `yaml` against this global; an error carries atollctl's output.
    pub fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        let run = crate::cli::atollctl(&["--api-address", &self.api(), "apply", "-f", "-"], yaml)?;
        anyhow::ensure!(run.code == 0, "apply failed: {}{}", run.stdout, run.stderr);
        Ok(())
    }

    pub fn https_api(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.work_dir.clone()
    }

    /// The admin token the global wrote into its work directory.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.work_dir.join("admin-token");
        Ok(std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .trim()
            .to_string())
    }

    /// A zone token for a separate zone proxy of `zone` with `scope` (`ingress`/`egress`).
    pub fn zone_token(&self, zone: &str, scope: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"zone": zone, "scope": [scope]}).to_string();
        crate::zone::issue_token(self.http_port, "/tokens/zone", &body)
    }

    /// Kills with SIGKILL and starts again on the same ports and work directory.
    pub fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }
}
