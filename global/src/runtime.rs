//! Wiring: store, certificates, token and servers, started in order and stopped on a signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use atoll_api::diagnostics::{self, ReadinessCheck};
use atoll_api::{AdminToken, ApiState, Mode};
use atoll_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{OnceCell, watch};

use crate::config::{GlobalConfig, StoreConfig};

pub fn run_blocking(config: GlobalConfig) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(config))
}

async fn run(config: GlobalConfig) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    // Diagnostics first, so an operator can see "not ready" while the store is still coming up.
    let store_cell: Arc<OnceCell<Arc<dyn Store>>> = Arc::new(OnceCell::new());
    let ready: ReadinessCheck = {
        let cell = store_cell.clone();
        Arc::new(move || {
            let cell = cell.clone();
            Box::pin(async move {
                match cell.get() {
                    None => Err("connecting to the store".to_string()),
                    Some(store) => store.ping().await.map_err(|e| e.to_string()),
                }
            })
        })
    };
    let metrics = diagnostics::install_metrics();
    let diag = bind(config.diagnostics, "diagnostics").await?;
    let mut servers = vec![tokio::spawn(atoll_api::serve(
        diag,
        None,
        diagnostics::router(metrics, ready),
        stop.clone(),
    ))];

    let Some(store) = open_store(&config.store, stop.clone()).await? else {
        return Ok(());
    };
    let _ = store_cell.set(store.clone());
    tokio::spawn(observe_feed(store.clone(), stop.clone()));

    let token =
        AdminToken::load_or_create(&config.work_dir).context("preparing the admin token")?;
    let hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let configured = config
        .https_cert
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    let identity =
        atoll_tls::ensure_server_identity(&config.work_dir, "api-server", &hosts, configured)
            .context("preparing the HTTPS API certificate")?;
    let tls = atoll_tls::server_config(
        &identity.cert_pem,
        &identity.key_pem,
        &identity.cert_file.display().to_string(),
    )?;

    let router = atoll_api::router(ApiState {
        store,
        mode: Mode::Global,
        token,
    });
    let http = bind(config.http, "HTTP API").await?;
    let https = bind(config.https, "HTTPS API").await?;
    servers.push(tokio::spawn(atoll_api::serve(
        http,
        None,
        router.clone(),
        stop.clone(),
    )));
    servers.push(tokio::spawn(atoll_api::serve(
        https,
        Some(tls),
        router,
        stop.clone(),
    )));
    tracing::info!(
        http = %config.http,
        https = %config.https,
        diagnostics = %config.diagnostics,
        work_dir = %config.work_dir.display(),
        ca = ?identity.ca_file,
        "global control plane ready"
    );
    for server in servers {
        let _ = server.await;
    }
    Ok(())
}

/// Exposes the change feed's progress as metrics: the newest revision seen and event counts,
/// so an operator (and the replica tests) can see that this process hears every write.
async fn observe_feed(store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    use atoll_store::Event;
    use tokio::sync::broadcast::error::RecvError;
    let mut feed = store.watch();
    loop {
        let event = tokio::select! {
            event = feed.recv() => event,
            _ = stop.wait_for(|s| *s) => return,
        };
        match event {
            Ok(Event::Put { version, .. }) | Ok(Event::Deleted { version, .. }) => {
                metrics::counter!("atoll_store_feed_events_total", "kind" => "change").increment(1);
                metrics::gauge!("atoll_store_feed_last_version").set(version as f64);
            }
            Ok(Event::Resync) | Err(RecvError::Lagged(_)) => {
                metrics::counter!("atoll_store_feed_events_total", "kind" => "resync").increment(1);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} on {addr}"))
}

/// Connects, retrying until the database answers or shutdown is requested (`Ok(None)`).
async fn open_store(
    config: &StoreConfig,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Arc<dyn Store>>> {
    match config {
        StoreConfig::Memory => {
            tracing::info!("using the memory store: resources are lost when the process exits");
            Ok(Some(Arc::new(atoll_store::MemoryStore::new())))
        }
        StoreConfig::Postgres {
            url,
            display: shown,
            max_connections,
            acquire_timeout,
        } => {
            let pg = atoll_store::PostgresConfig {
                url: url.clone(),
                max_connections: *max_connections,
                acquire_timeout: *acquire_timeout,
            };
            let mut delay = Duration::from_millis(250);
            loop {
                match atoll_store::PostgresStore::connect(pg.clone()).await {
                    Ok(store) => {
                        tracing::info!(store = %shown, "connected to PostgreSQL");
                        return Ok(Some(Arc::new(store)));
                    }
                    Err(err) => {
                        tracing::warn!(store = %shown, %err, retry_in = ?delay, "PostgreSQL not available yet");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(None),
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
