//! The PostgreSQL change feed: a background task that LISTENs on the channel the `resources`
//! trigger notifies, and turns notifications into [`Event`]s on the store's broadcast channel.
//!
//! The task owns one connection outside the pool. When it is lost, the task reconnects with
//! backoff and then sends [`Event::Resync`]: notifications sent while it was away are gone, and
//! a consumer that re-lists after the Resync sees everything committed before it, while every
//! later commit arrives as an event (the LISTEN is active before the Resync is sent).
//!
//! A connection can also die without a word (a partition drops packets; no FIN ever comes).
//! So after a quiet period the task sends a probe notification to itself over a separate
//! connection; when the probe does not come back on the listening connection in time, that
//! connection is treated as lost.

use std::str::FromStr;
use std::time::Duration;

use atoll_model::Kind;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::error::Target;
use crate::{Event, Key, StoreError};

/// The channel `notify_resource_change()` (migration 0001) notifies.
const CHANNEL: &str = "atoll_resources";
/// Each feed's own probe channel is this plus a per-process suffix.
const PROBE_CHANNEL: &str = "atoll_feed_probe";
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts listening, and returns once the LISTEN is active so that every write committed after
/// `connect()` returns reaches the feed.
pub(crate) async fn start(
    options: PgConnectOptions,
    acquire_timeout: Duration,
    probe_interval: Duration,
    target: Target,
    events: broadcast::Sender<Event>,
) -> Result<JoinHandle<()>, StoreError> {
    static FEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let probe_channel = format!(
        "{PROBE_CHANNEL}_{}_{}",
        std::process::id(),
        FEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let listener = listen(&options, acquire_timeout, &probe_channel)
        .await
        .map_err(|err| target.error(err, None))?;
    let probes = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options.clone());
    let feed = Feed {
        options,
        timeout: acquire_timeout,
        probe_interval,
        probe_channel,
        probes,
        target,
        events,
    };
    Ok(tokio::spawn(feed.run(listener)))
}

/// What the background task needs to reconnect and deliver.
struct Feed {
    options: PgConnectOptions,
    timeout: Duration,
    probe_interval: Duration,
    probe_channel: String,
    /// Probes travel over a connection of their own, never the one under test.
    probes: sqlx::PgPool,
    target: Target,
    events: broadcast::Sender<Event>,
}

async fn listen(
    options: &PgConnectOptions,
    timeout: Duration,
    probe_channel: &str,
) -> Result<PgListener, sqlx::Error> {
    // A pool of its own, so the listener never takes a slot of the bounded operations pool;
    // a fresh one per connection, so nothing of a broken connection is reused.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // Report a lost connection to us instead of reconnecting silently: we must send Resync.
    listener.eager_reconnect(false);
    listener.listen_all([CHANNEL, probe_channel]).await?;
    Ok(listener)
}

impl Feed {
    async fn run(self, mut listener: PgListener) {
        let mut probe_sent: Option<tokio::time::Instant> = None;
        loop {
            let received = match tokio::time::timeout(self.probe_interval, listener.try_recv())
                .await
            {
                Ok(received) => received,
                Err(_quiet) => {
                    match probe_sent {
                        Some(sent) if sent.elapsed() >= self.probe_interval * 2 => {
                            tracing::warn!(
                                address = self.target.address(),
                                "change feed heard nothing, not even its own probe: its connection is presumed dead"
                            );
                            probe_sent = None;
                            listener = self.replace(listener).await;
                        }
                        Some(_) => {}
                        None => {
                            probe_sent = Some(tokio::time::Instant::now());
                            self.send_probe();
                        }
                    }
                    continue;
                }
            };
            match received {
                Ok(Some(notification)) => {
                    probe_sent = None;
                    if notification.channel() == self.probe_channel {
                        continue;
                    }
                    if let Some(event) = parse(notification.payload()) {
                        // No receivers is fine: nobody is watching.
                        let _ = self.events.send(event);
                    }
                    continue;
                }
                Ok(None) => tracing::warn!(
                    address = self.target.address(),
                    "change feed lost its PostgreSQL connection"
                ),
                Err(err) => tracing::warn!(
                    address = self.target.address(),
                    error = %self.target.error(err, None),
                    "change feed lost its PostgreSQL connection"
                ),
            }
            probe_sent = None;
            listener = self.replace(listener).await;
        }
    }

    /// Drops a lost listener, connects a new one and tells watchers to re-list.
    async fn replace(&self, lost: PgListener) -> PgListener {
        drop(lost);
        let listener = self.reconnect().await;
        tracing::warn!(
            address = self.target.address(),
            "change feed reconnected to PostgreSQL; sending Resync"
        );
        let _ = self.events.send(Event::Resync);
        listener
    }

    /// Sends a probe without waiting: a dead network must not stall the feed loop.
    fn send_probe(&self) {
        let (pool, channel, timeout) = (
            self.probes.clone(),
            self.probe_channel.clone(),
            self.timeout,
        );
        tokio::spawn(async move {
            let probe = sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel)
                .execute(&pool);
            if let Ok(Err(err)) = tokio::time::timeout(timeout, probe).await {
                tracing::debug!(%err, "change feed probe not sent");
            }
        });
    }

    async fn reconnect(&self) -> PgListener {
        let mut backoff = atoll_retry::Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut attempt = 1u32;
        loop {
            tokio::time::sleep(backoff.next_delay()).await;
            match listen(&self.options, self.timeout, &self.probe_channel).await {
                Ok(listener) => return listener,
                Err(err) => tracing::warn!(
                    attempt,
                    error = %self.target.error(err, None),
                    retry_in = ?backoff.upcoming(),
                    "change feed cannot reconnect to PostgreSQL"
                ),
            }
            attempt += 1;
        }
    }
}

#[derive(serde::Deserialize)]
struct Notice {
    op: Op,
    #[serde(rename = "type")]
    kind: String,
    mesh: String,
    name: String,
    version: u64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Put,
    Delete,
}

fn parse(payload: &str) -> Option<Event> {
    let notice: Notice = match serde_json::from_str(payload) {
        Ok(notice) => notice,
        Err(err) => {
            // Written by a trigger this build does not know: consumers must re-list.
            tracing::warn!(%payload, error = %err, "unreadable change notification");
            return Some(Event::Resync);
        }
    };
    let Ok(kind) = Kind::from_str(&notice.kind) else {
        // A type added by a newer replica; this build cannot read it anyway.
        tracing::debug!(kind = %notice.kind, "change notification for an unknown type");
        return None;
    };
    let mesh = (!notice.mesh.is_empty()).then_some(notice.mesh.as_str());
    let key = Key::new(kind, mesh, &notice.name);
    Some(match notice.op {
        Op::Put => Event::Put {
            key,
            version: notice.version,
        },
        Op::Delete => Event::Deleted {
            key,
            version: notice.version,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trigger_payloads() {
        assert_eq!(
            parse(r#"{"op":"put","type":"Secret","mesh":"default","name":"s","version":7}"#),
            Some(Event::Put {
                key: Key::new(Kind::Secret, Some("default"), "s"),
                version: 7
            })
        );
        assert_eq!(
            parse(r#"{"op":"delete","type":"Zone","mesh":"","name":"z","version":8}"#),
            Some(Event::Deleted {
                key: Key::new(Kind::Zone, None, "z"),
                version: 8
            })
        );
        assert_eq!(
            parse(r#"{"op":"put","type":"Future","mesh":"","name":"z","version":9}"#),
            None
        );
        assert_eq!(parse("garbage"), Some(Event::Resync));
    }
}
