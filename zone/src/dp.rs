//! `atoll-dp run`: registers a Dataplane (a sidecar or built-in gateway) or a ZoneEgress with
//! the zone, fetches its bootstrap, runs Envoy and restarts it if it dies, relays access-log
//! records to TCP backends; on SIGTERM or Ctrl-C it drains Envoy's listeners, stops it and
//! deregisters. It holds no mesh logic: the zone computes everything Envoy receives.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How often a running data plane registers again.
const REREGISTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The zone's DP server, `https://HOST:5678`.
    #[arg(long, env = "KUMA_CONTROL_PLANE_URL")]
    pub cp_address: String,
    /// The Dataplane resource (YAML or JSON).
    #[arg(long, env = "KUMA_DATAPLANE_RESOURCE_FILE")]
    pub dataplane_file: PathBuf,
    /// CA that signed the DP server's certificate (the zone's `dp-server-ca.crt`).
    #[arg(long, env = "KUMA_CONTROL_PLANE_CA_CERT_FILE")]
    pub ca_cert_file: Option<PathBuf>,
    /// File holding the data plane token (`atollctl generate dataplane-token`); read again at
    /// every registration, so replacing the file rotates the token.
    #[arg(
        long,
        env = "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
        conflicts_with = "dataplane_token"
    )]
    pub dataplane_token_file: Option<PathBuf>,
    /// The data plane token itself (prefer --dataplane-token-file: arguments are visible to
    /// other users of the host).
    #[arg(long, env = "KUMA_DATAPLANE_RUNTIME_TOKEN", hide_env_values = true)]
    pub dataplane_token: Option<String>,
    /// The Envoy binary.
    #[arg(
        long,
        env = "KUMA_DATAPLANE_RUNTIME_BINARY_PATH",
        default_value = "envoy"
    )]
    pub binary_path: PathBuf,
    /// Where the bootstrap is written (a temporary directory by default).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Use delta xDS instead of state of the world.
    #[arg(long)]
    pub delta: bool,
    /// How long Envoy drains connections on shutdown.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_time: Duration,
    /// Envoy worker threads.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Loopback UDP port on which Envoy answers DNS for MeshExternalService hostnames with
    /// their VIPs; unset leaves the DNS listener out (several proxies share a host in tests).
    #[arg(long, env = "KUMA_DNS_ENVOY_DNS_PORT")]
    pub dns_port: Option<u16>,
    /// The system CA bundle Envoy verifies external services against when they have no
    /// `caCert`; found among the usual locations when unset.
    #[arg(long, env = "KUMA_DATAPLANE_RUNTIME_DYNAMIC_SYSTEM_CA_PATH")]
    pub system_ca_path: Option<PathBuf>,
}

/// Where Linux distributions and macOS keep the system CA bundle, most common first.
const SYSTEM_CA_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system CA bundle: the configured one (which must exist), or the first usual location
/// that does.
fn system_ca_path(configured: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    match configured {
        Some(path) => {
            std::fs::metadata(path).with_context(|| {
                format!(
                    "KUMA_DATAPLANE_RUNTIME_DYNAMIC_SYSTEM_CA_PATH {}: cannot read it",
                    path.display()
                )
            })?;
            Ok(Some(path.display().to_string()))
        }
        None => Ok(SYSTEM_CA_PATHS
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
            .map(|p| p.to_string())),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    atoll_model::duration::parse(text).map_err(|e| e.to_string())
}

/// What the launcher learnt from the Dataplane file.
struct Identity {
    mesh: String,
    name: String,
    admin_port: u32,
}

fn identity(text: &str, file: &str) -> anyhow::Result<Identity> {
    let doc = atoll_model::parse_documents(text)
        .into_iter()
        .next()
        .with_context(|| format!("{file}: no resource in it"))?;
    let resource = doc.outcome.map_err(|e| {
        let causes: Vec<String> = e
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        anyhow::anyhow!("{file}: invalid Dataplane: {}", causes.join("; "))
    })?;
    let admin = match &resource.spec {
        atoll_model::Spec::Dataplane(dp) => dp.networking.as_ref().and_then(|n| n.admin.as_ref()),
        atoll_model::Spec::ZoneEgress(egress) => {
            egress.networking.as_ref().and_then(|n| n.admin.as_ref())
        }
        _ => bail!(
            "{file}: type must be Dataplane or ZoneEgress, not {}",
            resource.kind()
        ),
    };
    Ok(Identity {
        mesh: resource.meta.mesh.clone().unwrap_or_default(),
        name: resource.meta.name.clone(),
        admin_port: atoll_model::types::AdminConf::port_of(admin),
    })
}

/// A token from a file (preferred) or given as is; `None` when neither is set.
pub fn token_from(
    file: Option<&std::path::Path>,
    value: Option<&str>,
) -> anyhow::Result<Option<String>> {
    match (file, value) {
        (Some(file), _) => {
            let token = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            Ok(Some(token.trim().to_string()))
        }
        (None, Some(token)) => Ok(Some(token.trim().to_string())),
        (None, None) => Ok(None),
    }
}

/// `https://host:port` split into its parts.
fn host_port(address: &str) -> anyhow::Result<(String, u16)> {
    let rest = address.trim_end_matches('/').strip_prefix("https://").with_context(|| {
        format!("--cp-address {address:?}: must be https://HOST:PORT (the DP server always uses TLS)")
    })?;
    let (host, port) = rest
        .rsplit_once(':')
        .with_context(|| format!("--cp-address {address:?}: no port"))?;
    let port = port
        .parse()
        .with_context(|| format!("--cp-address {address:?}: {port:?} is not a port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

struct Launcher {
    args: RunArgs,
    client: reqwest::Client,
    base: String,
    identity: Identity,
    bootstrap_file: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Why a registration did not succeed.
#[derive(Debug, thiserror::Error)]
enum RegisterError {
    /// The zone answered with a refusal that retrying will not change.
    #[error("the zone refused the Dataplane ({status}): {body}")]
    Refused {
        status: reqwest::StatusCode,
        body: String,
    },
    /// The zone cannot be reached or is not ready yet.
    #[error(transparent)]
    Retry(#[from] anyhow::Error),
}

/// The body of an error answer: its `details` and causes when it is the API's JSON.
fn describe(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(body) if body["details"].is_string() => {
            let mut out = body["details"].as_str().unwrap_or_default().to_string();
            for cause in body["causes"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "; {}: {}",
                    cause["field"].as_str().unwrap_or_default(),
                    cause["message"].as_str().unwrap_or_default()
                ));
            }
            out
        }
        _ => text.into_owned(),
    }
}

impl Launcher {
    /// The token to present, read afresh so a rotated token file takes effect.
    fn token(&self) -> anyhow::Result<Option<String>> {
        token_from(
            self.args.dataplane_token_file.as_deref(),
            self.args.dataplane_token.as_deref(),
        )
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(match self.token()? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }

    async fn register(&self, body: &serde_json::Value) -> Result<(), RegisterError> {
        let request = self
            .authed(
                self.client
                    .post(format!("{}/bootstrap", self.base))
                    .json(body),
            )
            .map_err(|e| RegisterError::Refused {
                status: reqwest::StatusCode::UNAUTHORIZED,
                body: format!("{e:#}"),
            })?;
        let response = request
            .send()
            .await
            .with_context(|| format!("registering with {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the bootstrap")?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(RegisterError::Retry(anyhow::anyhow!(
                "the zone is not ready: {}",
                describe(&bytes)
            )));
        }
        if !status.is_success() {
            return Err(RegisterError::Refused {
                status,
                body: describe(&bytes),
            });
        }
        // The bootstrap carries the token: readable by this user only.
        atoll_tls::write_atomic(&self.bootstrap_file, &bytes, 0o600)
            .with_context(|| format!("writing {}", self.bootstrap_file.display()))?;
        Ok(())
    }

    fn spawn_envoy(&self) -> anyhow::Result<Child> {
        let mut command = Command::new(&self.args.binary_path);
        command
            .arg("-c")
            .arg(&self.bootstrap_file)
            .args(["--use-dynamic-base-id", "--log-level", "info"])
            .arg("--concurrency")
            .arg(self.args.concurrency.to_string())
            .arg("--drain-time-s")
            .arg(self.args.drain_time.as_secs().max(1).to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command.spawn().with_context(|| {
            format!(
                "starting Envoy ({}); set --binary-path",
                self.args.binary_path.display()
            )
        })
    }

    async fn drain_and_stop(&self, mut envoy: Child) {
        let admin = format!(
            "http://127.0.0.1:{}/drain_listeners?graceful&inboundonly",
            self.identity.admin_port
        );
        let plain = reqwest::Client::new();
        match plain.post(&admin).send().await {
            Ok(_) => {
                tracing::info!(drain = ?self.args.drain_time, "draining Envoy's listeners");
                tokio::select! {
                    _ = tokio::time::sleep(self.args.drain_time) => {}
                    _ = envoy.wait() => {}
                }
            }
            Err(err) => tracing::warn!(%err, "cannot reach Envoy's admin to drain it"),
        }
        let _ = envoy.start_kill();
        let _ = envoy.wait().await;
    }

    async fn deregister(&self) {
        // A zone egress is in no mesh.
        let url = if self.identity.mesh.is_empty() {
            format!("{}/zoneegresses/{}", self.base, self.identity.name)
        } else {
            format!(
                "{}/dataplanes/{}/{}",
                self.base, self.identity.mesh, self.identity.name
            )
        };
        let request = match self.authed(self.client.delete(&url)) {
            Ok(request) => request,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot deregister");
                return;
            }
        };
        match request.send().await {
            Ok(r) if r.status().is_success() => tracing::info!("Dataplane deregistered"),
            Ok(r) => tracing::warn!(status = %r.status(), "deregistration refused"),
            Err(err) => tracing::warn!(%err, "cannot deregister"),
        }
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let file = args.dataplane_file.display().to_string();
    let text =
        std::fs::read_to_string(&args.dataplane_file).with_context(|| format!("reading {file}"))?;
    let identity = identity(&text, &file)?;
    let (host, port) = host_port(&args.cp_address)?;
    let ca_file = args.ca_cert_file.clone().with_context(|| {
        "--ca-cert-file is required: the CA that signed the DP server certificate (the zone's dp-server-ca.crt)"
    })?;
    let ca = std::fs::read(&ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
    let tls = atoll_tls::client_config(&ca, &ca_file.display().to_string())?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        // Well inside the DP server's idle limit, so a re-registration never reuses a
        // connection the server is closing.
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .context("setting up the HTTPS client")?;
    let (dir, work_dir) = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (None, d.clone())
        }
        None => {
            let d = tempfile::tempdir().context("creating a work directory")?;
            let path = d.path().to_path_buf();
            (Some(d), path)
        }
    };
    let launcher = Launcher {
        base: args.cp_address.trim_end_matches('/').to_string(),
        bootstrap_file: work_dir.join(format!("bootstrap-{}.pb", identity.name)),
        identity,
        client,
        args,
        _dir: dir,
    };
    // Records for MeshAccessLog TCP backends come through this pipe (see `log_relay`).
    let pipe = work_dir.join(format!("access-logs-{}.pipe", launcher.identity.name));
    crate::log_relay::create_pipe(&pipe)
        .and_then(|()| crate::log_relay::start(&pipe))
        .with_context(|| format!("setting up the access-log pipe {}", pipe.display()))?;
    let body = serde_json::json!({
        "dataplane": text,
        "xdsHost": host,
        "xdsPort": port,
        "caCert": String::from_utf8_lossy(&ca),
        "delta": launcher.args.delta,
        "dnsPort": launcher.args.dns_port,
        "systemCaPath": system_ca_path(launcher.args.system_ca_path.as_deref())?,
        "accessLogPipe": pipe,
    });
    let mut stop = atoll_runtime::shutdown_signal();
    // The zone may still be starting: retry registration with a capped backoff.
    let mut backoff = atoll_retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match launcher.register(&body).await {
            Ok(()) => break,
            Err(err @ RegisterError::Refused { .. }) => return Err(err.into()),
            Err(RegisterError::Retry(err)) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot register yet; retrying")
            }
        }
        if !backoff.wait(&mut stop).await {
            return Ok(());
        }
    }
    tracing::info!(mesh = %launcher.identity.mesh, name = %launcher.identity.name, "registered; starting Envoy");
    let mut restarts = 0u32;
    loop {
        let mut envoy = launcher.spawn_envoy()?;
        let started = std::time::Instant::now();
        // Re-registering now and then puts the Dataplane back if the zone lost it (a zone on
        // the memory store restarted): otherwise its endpoints would vanish from every other
        // proxy while this Envoy keeps running on its last configuration. An unchanged
        // Dataplane is not rewritten, so this costs the zone nothing.
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + REREGISTER, REREGISTER);
        let exited = loop {
            tokio::select! {
                status = envoy.wait() => break Some(status.context("waiting for Envoy")?),
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break None,
                _ = refresh.tick() => {
                    if let Err(err) = launcher.register(&body).await {
                        tracing::debug!(error = %format!("{err:#}"), "re-registering failed; retrying later");
                    }
                }
            }
        };
        let Some(status) = exited else {
            launcher.drain_and_stop(envoy).await;
            break;
        };
        // A crash loop backs off; an Envoy that ran a while restarts at once.
        restarts = if started.elapsed() > Duration::from_secs(30) {
            0
        } else {
            restarts + 1
        };
        let pause = Duration::from_millis(200 * u64::from(restarts.min(25)));
        tracing::warn!(%status, restarts, ?pause, "Envoy exited; restarting it");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
        // Re-register: the zone may have lost the Dataplane (e.g. a memory store restart).
        if let Err(err) = launcher.register(&body).await {
            tracing::warn!(error = %format!("{err:#}"), "re-registering failed; keeping the last bootstrap");
        }
    }
    launcher.deregister().await;
    Ok(())
}
