//! Wiring: the common control-plane servers in global mode, the KDS CA, and the KDS server,
//! run until a signal.

use std::sync::Arc;

use anyhow::Context;
use atoll_api::Mode;
use atoll_kds::receiver::ReceiverConfig;
use atoll_kds::sender::SenderConfig;
use atoll_runtime::{Common, start_control_plane};

use crate::config::KdsConfig;
use crate::kds::{Insights, KdsServer, ZoneAccess};
use crate::kds_ca::{self, ZoneIssuer};

pub async fn run(common: Common, kds: KdsConfig) -> anyhow::Result<()> {
    let stop = atoll_runtime::shutdown_signal();
    let Some(started) = start_control_plane(
        &common,
        Mode::Global,
        axum::Router::new(),
        None,
        stop.clone(),
    )
    .await?
    else {
        return Ok(());
    };
    let Some(ca) = kds_ca::ensure_kds_ca(started.store.as_ref(), stop.clone()).await? else {
        return Ok(());
    };
    let ca = Arc::new(ca);
    if !crate::secrets::ensure_at_start(started.store.as_ref(), &common.work_dir, stop.clone())
        .await
    {
        return Ok(());
    }
    tokio::spawn(crate::secrets::run(
        started.store.clone(),
        common.work_dir.clone(),
        stop.clone(),
    ));
    let _ = started
        .zone_certificates
        .set(Arc::new(ZoneIssuer(ca.clone())));

    let identity = match &kds.tls_files {
        Some((cert, key)) => (
            std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?,
            std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?,
        ),
        None => ca
            .issue_server(&atoll_runtime::host::certificate_names(&kds.hostnames))
            .context("issuing the KDS server certificate")?,
    };
    let client_ca = match &kds.client_ca_file {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        None => ca.cert_pem().to_string(),
    };
    let instance = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "global".into()),
        std::process::id()
    );
    let server = KdsServer {
        store: started.store.clone(),
        reads: atoll_kds::shared_reads::SharedReads::new(started.store.clone()),
        insights: Insights::new(started.store.clone(), instance),
        access: ZoneAccess::new(started.store.clone(), started.credentials.clone()),
        sender: SenderConfig {
            max_message_bytes: kds.max_message_bytes,
            heartbeat: kds.heartbeat,
            hold: None,
        },
        receiver: ReceiverConfig::default(),
        stop: stop.clone(),
    };
    let kds_server = tokio::spawn(crate::kds::serve(
        kds.addr,
        server,
        identity,
        client_ca,
        common.limits("kds"),
    ));
    tracing::info!(
        http = %common.http,
        https = %common.https,
        kds = %kds.addr,
        diagnostics = %common.diagnostics,
        work_dir = %common.work_dir.display(),
        "global control plane ready"
    );
    match kds_server.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(err.context(format!("KDS server on {}", kds.addr))),
        Err(err) => anyhow::bail!("KDS server task failed: {err}"),
    }
    for server in started.servers {
        let _ = server.await;
    }
    Ok(())
}
