//! Wiring: the common control-plane servers in global mode, run until a signal.

use atoll_api::Mode;
use atoll_runtime::{Common, start_control_plane};

pub async fn run(common: Common) -> anyhow::Result<()> {
    let stop = atoll_runtime::shutdown_signal();
    let Some(started) = start_control_plane(&common, Mode::Global, stop.clone()).await? else {
        return Ok(());
    };
    tracing::info!(
        http = %common.http,
        https = %common.https,
        diagnostics = %common.diagnostics,
        work_dir = %common.work_dir.display(),
        ca = ?started.api_ca,
        "global control plane ready"
    );
    for server in started.servers {
        let _ = server.await;
    }
    Ok(())
}
