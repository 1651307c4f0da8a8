//! A real Prometheus (Debian's `prometheus` package, `/usr/bin/prometheus`) for observability
//! tests: started with a config the test writes, on a free loopback port with its own data
//! directory, and asked through its HTTP API which targets it scrapes and what they said.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tempfile::TempDir;

use crate::free_port;
use crate::process::{Process, Spec, http_get};

const READY_DEADLINE: Duration = Duration::from_secs(60);

pub struct Prometheus {
    pub port: u16,
    pub process: Process,
    _dir: TempDir,
}

/// The Prometheus binary: `PROMETHEUS_BIN`, or Debian's.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: install Debian's prometheus package (apt-get install prometheus)",
        path.display()
    );
    Ok(path)
}

/// A `scrape_configs` entry scraping every second what the MADS at `server` lists, read
/// through its HTTP service discovery form (`GET` on the MADS path): Debian builds
/// Prometheus without xDS discovery, so without `kuma_sd_configs`.
pub fn http_sd_job(job: &str, server: &str, tls: Option<&std::path::Path>) -> String {
    let tls = tls
        .map(|ca| format!("\n    tls_config:\n      ca_file: {}", ca.display()))
        .unwrap_or_default();
    format!(
        "- job_name: {job}\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  http_sd_configs:\n  - url: {server}/v3/discovery:monitoringassignments\n    refresh_interval: 1s{tls}\n"
    )
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (YAML list items) and waits until it is ready.
    pub fn start(scrape_configs: &str) -> anyhow::Result<Prometheus> {
        let dir = tempfile::Builder::new()
            .prefix("atoll-prometheus-")
            .tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n{scrape_configs}"),
        )?;
        let port = free_port()?;
        let spec = Spec {
            name: "prometheus".into(),
            program: binary()?,
            args: vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            env: BTreeMap::new(),
        };
        let mut process = Process::start(spec, dir.path().join("prometheus.log"))?;
        process
            .wait_http_ok(port, "/-/ready", READY_DEADLINE)
            .context("waiting for Prometheus to be ready")?;
        Ok(Prometheus {
            port,
            process,
            _dir: dir,
        })
    }

    fn api(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = http_get(self.port, path)?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// The active targets: (instance label, health, last error).
    pub fn targets(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        let answer = self.api("/api/v1/targets?state=active")?;
        Ok(answer["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    text(&t["labels"]["instance"]),
                    text(&t["health"]),
                    text(&t["lastError"]),
                )
            })
            .collect())
    }

    /// The value of an instant PromQL query that yields one number, if it yields one.
    pub fn scalar(&self, query: &str) -> anyhow::Result<Option<f64>> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = self.api(&format!("/api/v1/query?query={encoded}"))?;
        Ok(answer["data"]["result"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse().ok()))
    }
}
