//! Wiring: the common control-plane servers in zone mode, plus the KDS client.

use atoll_api::Mode;
use atoll_runtime::{Common, start_control_plane};

use crate::config::ZoneConfig;

pub async fn run(common: Common, zone: ZoneConfig) -> anyhow::Result<()> {
    let stop = atoll_runtime::shutdown_signal();
    let mode = Mode::Zone {
        name: zone.name.clone(),
    };
    let Some(started) = start_control_plane(&common, mode, stop.clone()).await? else {
        return Ok(());
    };
    let kds = match zone.kds.clone() {
        Some(kds) => Some(tokio::spawn(crate::kds_client::run(
            zone.name.clone(),
            kds,
            started.store.clone(),
            stop,
        ))),
        None => {
            tracing::warn!(
                "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS is not set: running without a global"
            );
            None
        }
    };
    tracing::info!(zone = %zone.name, http = %common.http, diagnostics = %common.diagnostics, "zone control plane ready");
    for server in started.servers {
        let _ = server.await;
    }
    if let Some(kds) = kds {
        let _ = kds.await;
    }
    Ok(())
}
