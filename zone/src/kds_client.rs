//! The zone's end of KDS: one connection to the global carrying both streams, re-established
//! with jittered backoff whenever either stream ends or stalls. The zone keeps serving its last
//! state while the global is away.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use atoll_kds::receiver::{Receiver, ReceiverConfig};
use atoll_kds::scope::{ZoneExport, ZoneImport};
use atoll_kds::sender::{Hold, Sender, SenderConfig};

use crate::initial_sync::InitialSync;
use atoll_kds::{NoopObserver, SyncObserver};
use atoll_proto::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, KdsSyncServiceClient};
use atoll_store::Store;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Streaming};
use tracing::Instrument;

use crate::config::KdsClientConfig;

const CHANNEL: usize = 16;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Keeps the zone connected to the global until `stop`.
pub async fn run(
    zone: String,
    config: KdsClientConfig,
    store: Arc<dyn Store>,
    hold_upward: Option<(Arc<InitialSync>, Hold)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = atoll_retry::Backoff::new(MIN_BACKOFF, MAX_BACKOFF).jittered(0.5, 1.5);
    loop {
        let started = tokio::time::Instant::now();
        match connect_once(
            &zone,
            &config,
            store.clone(),
            hold_upward.clone(),
            stop.clone(),
        )
        .await
        {
            Ok(()) => return,
            Err(err) => {
                metrics::counter!("atoll_kds_reconnects_total").increment(1);
                tracing::warn!(global = %config.endpoint, error = %chain(err.as_ref()), "KDS connection to the global lost; reconnecting");
            }
        }
        // A connection that lasted a while resets the backoff.
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        if !backoff.wait(&mut stop).await {
            return;
        }
    }
}

/// An error with its causes, so TLS failures ("invalid peer certificate: UnknownIssuer") are
/// spelled out instead of hidden behind "transport error".
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn channel(config: &KdsClientConfig) -> anyhow::Result<Channel> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&config.root_ca)?))
        .identity(Identity::from_pem(read(&config.cert)?, read(&config.key)?))
        .domain_name(config.host.clone());
    let endpoint = Endpoint::from_shared(config.endpoint.clone())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    endpoint.connect().await.map_err(|e| {
        let text = chain(&e);
        if let Some(advice) = name_advice(&text, &config.host) {
            tracing::error!(global = %config.endpoint, error = %text, "{advice}");
        } else if text.contains("UnknownIssuer") || text.contains("certificate") {
            tracing::error!(global = %config.endpoint, ca = %config.root_ca.display(), error = %text,
                "refusing to connect: the global's certificate is not trusted by KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE");
        }
        anyhow::anyhow!("connecting to {}: {text}", config.endpoint)
    })
}

/// What to tell the operator when the global's certificate does not name the host this zone
/// dials: the fix is on the global, and naming the variable saves a search.
fn name_advice(error: &str, host: &str) -> Option<String> {
    let mismatch = error.contains("NotValidForName") || error.contains("not valid for name");
    mismatch.then(|| {
        format!(
            "the global's KDS certificate does not name {host:?}, the host in KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS: add {host} to KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES on the global and restart it, or dial the global by a name its certificate has"
        )
    })
}

fn with_zone<T>(zone: &str, message: T) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "client-id",
        zone.parse().context("zone name as gRPC metadata")?,
    );
    Ok(request)
}

fn forward<T: Send + 'static>(mut inbound: Streaming<T>) -> mpsc::Receiver<Box<T>> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::spawn(async move {
        while let Ok(Some(message)) = inbound.message().await {
            if tx.send(Box::new(message)).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn unboxed<T: Send + 'static>(rx: mpsc::Receiver<Box<T>>) -> impl Stream<Item = T> + Send {
    ReceiverStream::new(rx).map(|m| *m)
}

/// One connection: both streams until either ends. `Ok` only when stopped.
async fn connect_once(
    zone: &str,
    config: &KdsClientConfig,
    store: Arc<dyn Store>,
    hold_upward: Option<(Arc<InitialSync>, Hold)>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut client = KdsSyncServiceClient::new(channel(config).await?);
    let observer: Arc<dyn SyncObserver> = Arc::new(NoopObserver);
    let (down_observer, hold) = match hold_upward {
        Some((sync, hold)) => (sync as Arc<dyn SyncObserver>, Some(hold)),
        None => (observer.clone(), None),
    };

    // Global to zone: this side subscribes and applies.
    let (requests_tx, requests_rx) = mpsc::channel::<Box<DeltaDiscoveryRequest>>(CHANNEL);
    let downward = client
        .global_to_zone_sync(with_zone(zone, unboxed(requests_rx))?)
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "the global refused the global-to-zone stream: {}",
                status.message()
            )
        })?
        .into_inner();
    let receiver = Receiver::new(
        store.clone(),
        Arc::new(ZoneImport { zone: zone.into() }),
        down_observer,
        ReceiverConfig {
            node_id: zone.into(),
            max_resource_bytes: config.max_resource_bytes,
            liveness: config.liveness,
        },
    );

    // Zone to global: this side serves its own resources.
    let (responses_tx, responses_rx) = mpsc::channel::<Box<DeltaDiscoveryResponse>>(CHANNEL);
    let upward = client
        .zone_to_global_sync(with_zone(zone, unboxed(responses_rx))?)
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "the global refused the zone-to-global stream: {}",
                status.message()
            )
        })?
        .into_inner();
    let sender = Sender::new(
        store,
        Arc::new(ZoneExport { zone: zone.into() }),
        observer,
        SenderConfig {
            hold,
            ..SenderConfig::default()
        },
    );
    tracing::info!(global = %config.endpoint, "connected to the global");

    let down = receiver
        .run(forward(downward), requests_tx, stop.clone())
        .instrument(tracing::info_span!("kds", stream = "global-to-zone"));
    let up = sender
        .run(forward(upward), responses_tx, stop)
        .instrument(tracing::info_span!("kds", stream = "zone-to-global"));
    tokio::select! {
        result = down => result.map_err(|e| anyhow::anyhow!("global-to-zone stream: {e}")),
        result = up => result.map_err(|e| anyhow::anyhow!("zone-to-global stream: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::name_advice;

    #[test]
    fn a_name_mismatch_names_the_host_and_the_variable_to_add_it_to() {
        let error = r#"transport error: invalid peer certificate: certificate not valid for name "10.213.0.9"; certificate is only valid for IpAddress(10.213.0.2)"#;
        let advice = name_advice(error, "10.213.0.9").unwrap();
        assert!(
            advice.contains("add 10.213.0.9 to KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES"),
            "{advice}"
        );
        assert_eq!(
            name_advice("invalid peer certificate: UnknownIssuer", "g"),
            None
        );
    }
}
