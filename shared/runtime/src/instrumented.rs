//! A store that times every operation (`atoll_store_operation_seconds{op,outcome}`), so slow
//! or failing storage shows up in the metrics of whichever component waits on it; and, for
//! PostgreSQL, the connection pool's usage (`atoll_store_pool_connections{state}`), refreshed
//! every few seconds whether or not anybody scrapes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_store::{
    Event, Key, LeaderGuard, Leadership, ListQuery, Page, PostgresStore, Precondition, PutOutcome,
    Store, StoreError, Stored,
};
use tokio::sync::{broadcast, watch};

pub struct Instrumented {
    inner: Arc<dyn Store>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Instrumented { inner }
    }
}

fn observe<T>(op: &'static str, started: Instant, result: &Result<T, StoreError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => "refused",
        Err(_) => "error",
    };
    metrics::histogram!("atoll_store_operation_seconds", "op" => op, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

#[async_trait::async_trait]
impl Leadership for Instrumented {
    async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>, StoreError> {
        self.inner.try_lead(name).await
    }
}

#[async_trait::async_trait]
impl Store for Instrumented {
    async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        observe("get", started, &result);
        result
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let started = Instant::now();
        let result = self.inner.list(query).await;
        observe("list", started, &result);
        result
    }

    async fn put(
        &self,
        resource: atoll_model::Resource,
        expect: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        let started = Instant::now();
        let result = self.inner.put(resource, expect).await;
        observe("put", started, &result);
        result
    }

    async fn delete(&self, key: &Key, expect: Option<u64>) -> Result<Stored, StoreError> {
        let started = Instant::now();
        let result = self.inner.delete(key, expect).await;
        observe("delete", started, &result);
        result
    }

    fn watch(&self) -> broadcast::Receiver<Event> {
        self.inner.watch()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.inner.ping().await;
        observe("ping", started, &result);
        result
    }
}

/// Keeps the pool gauges current until shutdown.
pub async fn report_pool(store: PostgresStore, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let (open, idle, max) = store.pool_usage();
        let gauge = |state: &'static str, value: f64| {
            metrics::gauge!("atoll_store_pool_connections", "state" => state).set(value)
        };
        gauge("idle", idle as f64);
        gauge("in_use", f64::from(open).max(idle as f64) - idle as f64);
        gauge("max", f64::from(max));
    }
}
