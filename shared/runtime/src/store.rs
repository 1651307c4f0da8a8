//! Opening the configured store, retrying until the database answers.

use std::sync::Arc;
use std::time::Duration;

use crate::instrumented::{Instrumented, report_pool};

use atoll_store::Store;
use tokio::sync::watch;

use crate::StoreConfig;

/// Connects, retrying with backoff until the database answers; `None` when shutdown came first.
pub(crate) async fn open(
    config: &StoreConfig,
    mut stop: watch::Receiver<bool>,
) -> Option<Arc<dyn Store>> {
    match config {
        StoreConfig::Memory => {
            tracing::info!("using the memory store: resources are lost when the process exits");
            Some(Arc::new(Instrumented::new(Arc::new(
                atoll_store::MemoryStore::new(),
            ))))
        }
        StoreConfig::Postgres(pg) => {
            let shown = pg.redacted_url();
            let mut backoff =
                atoll_retry::Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
            loop {
                match atoll_store::PostgresStore::connect(pg.clone()).await {
                    Ok(store) => {
                        tracing::info!(store = %shown, "connected to PostgreSQL");
                        tokio::spawn(report_pool(store.clone(), stop.clone()));
                        return Some(Arc::new(Instrumented::new(Arc::new(store))));
                    }
                    Err(err) => {
                        tracing::warn!(store = %shown, %err, retry_in = ?backoff.upcoming(), "PostgreSQL not available yet")
                    }
                }
                if !backoff.wait(&mut stop).await {
                    return None;
                }
            }
        }
    }
}
