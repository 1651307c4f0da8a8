//! `atoll-zone ingress`: the SNI router as its own process, fed by a zone control plane's
//! table stream, which it follows with a zone token of its zone (scope `ingress`). It can run
//! as several replicas behind one advertised address and keeps routing on its last table
//! while the zone control plane restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::registry::Advertisement;
use super::stream::Follower;
use super::table::Table;

/// A lazily connecting channel to the zone's DP server at `cp` (`https://HOST:PORT`),
/// verified with the CA in `ca_pem`.
pub fn channel(cp: &str, ca_pem: &str) -> anyhow::Result<tonic::transport::Channel> {
    let cp = cp.trim_end_matches('/');
    let host = cp
        .strip_prefix("https://")
        .with_context(|| {
            format!(
                "--cp-address {cp:?}: must be https://HOST:PORT (the DP server always uses TLS)"
            )
        })?
        .rsplit_once(':')
        .map_or(cp, |(host, _)| host)
        .trim_matches(['[', ']'])
        .to_string();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name(host);
    Ok(tonic::transport::Endpoint::from_shared(cp.to_string())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

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
    /// File holding the zone token (`atollctl generate zone-token --zone Z --scope ingress`).
    #[arg(
        long,
        env = "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
        conflicts_with = "zone_token"
    )]
    pub zone_token_file: Option<PathBuf>,
    /// The zone token itself (prefer --zone-token-file: arguments are visible to other users).
    #[arg(long, env = "KUMA_DATAPLANE_RUNTIME_TOKEN", hide_env_values = true)]
    pub zone_token: Option<String>,
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
    /// Address other zones use to reach this ingress; unset: the listening address (the
    /// host's only non-loopback address for 0.0.0.0). Loopback only when set explicitly.
    #[arg(long, env = "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS")]
    pub advertised_address: Option<String>,
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
            let ca = std::fs::read_to_string(ca_file)
                .with_context(|| format!("reading {}", ca_file.display()))?;
            let token =
                crate::dp::token_from(args.zone_token_file.as_deref(), args.zone_token.as_deref())?;
            if token.is_none() {
                tracing::warn!(
                    "no zone token (--zone-token-file): a zone with zone proxy authentication on will refuse this ingress"
                );
            }
            let channel = channel(cp, &ca)?;
            let address = super::advertise::resolve(
                args.advertised_address.as_deref(),
                args.listen.ip(),
                &atoll_runtime::host::non_loopback_addresses(),
                super::advertise::Audience::OtherZones,
                super::advertise::Variables {
                    advertised: "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
                    listen: "KUMA_ZONE_INGRESS_LISTEN",
                },
            )?;
            let advertised = Advertisement {
                address,
                port: u32::from(args.advertised_port.unwrap_or(args.listen.port())),
            };
            tokio::spawn(super::stream::follow(
                Follower {
                    channel,
                    token,
                    role: "ingress",
                    advertised,
                },
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
            atoll_api::Limits {
                drain_timeout: args.drain_time,
                ..atoll_api::Limits::new("diagnostics")
            },
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
