//! Starting a control plane's common servers: diagnostics first (so "not ready" is visible while
//! the store comes up), then the store, the credentials (signing keys followed from the store),
//! and the REST API over HTTP and HTTPS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use atoll_api::diagnostics::{self, ReadinessCheck};
use atoll_api::{ApiAuth, ApiState, IssuerSlot, Mode};
use atoll_auth::Credentials;
use atoll_store::{Event, Store};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;

use crate::Common;

/// What a started control plane hands to its side-specific parts.
pub struct Started {
    pub store: Arc<dyn Store>,
    /// The signing keys and revocations, kept current from the store.
    pub credentials: Credentials,
    /// The CA clients verify the HTTPS API with, when the certificate was generated.
    pub api_ca: Option<PathBuf>,
    /// Serving tasks; they end after shutdown has drained them.
    pub servers: Vec<JoinHandle<()>>,
    /// Where the global installs its zone-certificate issuer once the KDS CA is ready.
    pub zone_certificates: IssuerSlot,
}

/// Starts diagnostics, opens the store and serves the REST API in `mode`. `Ok(None)` when
/// shutdown was requested before the store could be opened.
pub async fn start_control_plane(
    common: &Common,
    mode: Mode,
    extra_routes: axum::Router,
    status: Option<atoll_api::rest::StatusFn>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Started>> {
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
    let diag = bind(common.diagnostics, "diagnostics server").await?;
    let mut servers = vec![tokio::spawn(atoll_api::serve(
        diag,
        None,
        diagnostics::router(metrics, ready),
        stop.clone(),
        common.limits("diagnostics"),
    ))];

    let Some(store) = crate::store::open(&common.store, stop.clone()).await else {
        return Ok(None);
    };
    let _ = store_cell.set(store.clone());
    tokio::spawn(observe_feed(store.clone(), stop.clone()));

    let credentials = Credentials::follow(store.clone(), stop.clone());
    // Remote clients (atollctl from another machine, a zone fetching its certificate) dial
    // this host's address or name: the certificate names them too.
    let hosts = crate::host::certificate_names(&[]);
    let configured = common
        .https_cert
        .as_ref()
        .map(|(c, k)| (c.as_path(), k.as_path()));
    let identity =
        atoll_tls::ensure_server_identity(&common.work_dir, "api-server", &hosts, configured)
            .context("preparing the HTTPS API certificate")?;
    let source = identity.cert_file.display().to_string();
    let tls = match &common.auth.client_certs_dir {
        None => atoll_tls::server_config(&identity.cert_pem, &identity.key_pem, &source)?,
        Some(dir) => {
            let pinned = atoll_tls::load_client_certificates(dir).with_context(|| {
                format!(
                    "reading KUMA_API_SERVER_AUTH_CLIENT_CERTS_DIR={}",
                    dir.display()
                )
            })?;
            tracing::info!(dir = %dir.display(), certificates = pinned.len(), "HTTPS API accepts these client certificates as admins");
            atoll_tls::server_config_with_client_certs(
                &identity.cert_pem,
                &identity.key_pem,
                &source,
                pinned,
            )?
        }
    };
    if common.auth.localhost_is_admin {
        tracing::info!(
            "plain HTTP from this machine acts as the admin (KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=true)"
        );
    }

    let zone_certificates = IssuerSlot::default();
    let state = ApiState {
        store: store.clone(),
        mode,
        auth: ApiAuth {
            credentials: credentials.clone(),
            access: common.auth.access.clone(),
            localhost_is_admin: common.auth.localhost_is_admin,
        },
        zone_certificates: zone_certificates.clone(),
        status,
    };
    // The extra routes are API reads too: the same authentication (a refused token is 401).
    let extra_routes = extra_routes.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        atoll_api::auth::authenticate,
    ));
    let router = atoll_api::router(state).merge(extra_routes);
    let http = bind(common.http, "HTTP API").await?;
    let https = bind(common.https, "HTTPS API").await?;
    servers.push(tokio::spawn(atoll_api::serve(
        http,
        None,
        router.clone(),
        stop.clone(),
        common.limits("api-http"),
    )));
    servers.push(tokio::spawn(atoll_api::serve(
        https,
        Some(tls),
        router,
        stop.clone(),
        common.limits("api-https"),
    )));
    Ok(Some(Started {
        store,
        credentials,
        api_ca: identity.ca_file,
        servers,
        zone_certificates,
    }))
}

pub(crate) async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} on {addr}"))
}

/// Exposes the change feed's progress as metrics: the newest revision seen and event counts,
/// so an operator (and the replica tests) can see that this process hears every write.
async fn observe_feed(store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
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
