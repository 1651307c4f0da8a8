//! `atoll-zone ingress`: the SNI router as its own process, fed by a zone control plane's
//! table stream. It can run as several replicas behind one advertised address and keeps
//! routing on its last table while the zone control plane restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::registry::Advertisement;
use super::table::Table;

#[derive(Debug, Clone, clap::Args)]
pub struct IngressArgs {
    /// The zone's DP server, `https://HOST:5678`.
    #[arg(
        long,
        env = "KUMA_CONTROL_PLANE_URL",
        required_unless_present = "routes_file"
    )]
    pub cp_address: Option<String>,
    /// CA that signed the DP server's certificate (the zone's `dp-server-ca.crt`).
    #[arg(
        long,
        env = "KUMA_CONTROL_PLANE_CA_CERT_FILE",
        required_unless_present = "routes_file"
    )]
    pub ca_cert_file: Option<PathBuf>,
    /// A fixed table instead of a zone's (`{"<sni>": ["ip:port", ...]}`), for tests and
    /// benchmarks.
    #[arg(long, conflicts_with = "cp_address")]
    pub routes_file: Option<PathBuf>,
    /// Where the ingress listens.
    #[arg(
        long,
        env = "KUMA_ZONE_INGRESS_LISTEN",
        default_value = "0.0.0.0:10001"
    )]
    pub listen: SocketAddr,
    /// Address other zones use to reach this ingress.
    #[arg(
        long,
        env = "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
        default_value = "127.0.0.1"
    )]
    pub advertised_address: String,
    /// Port other zones use; defaults to the listening port.
    #[arg(long, env = "KUMA_ZONE_INGRESS_ADVERTISED_PORT")]
    pub advertised_port: Option<u16>,
    /// Serves `/metrics` and `/ready` here when set.
    #[arg(long, env = "KUMA_DIAGNOSTICS_SERVER_PORT")]
    pub diagnostics_port: Option<u16>,
    /// How long open connections may finish after SIGTERM.
    #[arg(long, default_value = "10s", value_parser = |t: &str| atoll_model::duration::parse(t).map_err(|e| e.to_string()))]
    pub drain_time: Duration,
}

pub async fn run(args: IngressArgs) -> anyhow::Result<()> {
    let stop = atoll_runtime::shutdown_signal();
    let (tables_tx, tables) = watch::channel(Arc::new(Table::new()));
    match (&args.routes_file, &args.cp_address, &args.ca_cert_file) {
        (Some(file), _, _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let table: Table = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: expected {{\"<sni>\": [\"ip:port\", ...]}}",
                    file.display()
                )
            })?;
            tables_tx.send_replace(Arc::new(table));
        }
        (None, Some(cp), Some(ca_file)) => {
            let ca =
                std::fs::read(ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
            let tls = atoll_tls::client_config(&ca, &ca_file.display().to_string())?;
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .context("setting up the HTTPS client")?;
            let advertised = Advertisement {
                address: args.advertised_address.clone(),
                port: u32::from(args.advertised_port.unwrap_or(args.listen.port())),
            };
            tokio::spawn(super::stream::follow(
                client,
                cp.trim_end_matches('/').to_string(),
                advertised,
                tables_tx,
                stop.clone(),
            ));
        }
        _ => anyhow::bail!("--cp-address and --ca-cert-file are required (or --routes-file)"),
    }
    if let Some(port) = args.diagnostics_port {
        let metrics = atoll_api::diagnostics::install_metrics();
        let ready: atoll_api::diagnostics::ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("binding the diagnostics server on {port}"))?;
        tokio::spawn(atoll_api::serve(
            listener,
            None,
            atoll_api::diagnostics::router(metrics, ready),
            stop.clone(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the zone ingress on {}", args.listen))?;
    tracing::info!(listen = %args.listen, cp = ?args.cp_address, "zone ingress running");
    let config = crate::ingress::IngressConfig {
        drain_timeout: args.drain_time,
        ..Default::default()
    };
    crate::ingress::serve(
        listener,
        config,
        tables,
        stop,
        Arc::new(crate::ingress::Stats::default()),
    )
    .await;
    Ok(())
}
