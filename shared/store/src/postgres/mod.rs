//! The PostgreSQL store, shared by several control-plane replicas: connection pool, reads and
//! writes of the `resources` table, and wiring of the change feed ([`feed`]), leadership
//! ([`leader`]) and schema ([`migrations`]).
//!
//! Writes take no store-wide lock. A put first reads the row without locking it: an unchanged
//! write (the common case: every proxy re-registers every few seconds) ends there, having
//! written nothing. A change is then one statement (`UPDATE`, with `AND version = <read>` for
//! a conditional write, or `INSERT ... ON CONFLICT DO NOTHING`); a writer whose premise no
//! longer holds reads again. Writes to different resources commit in parallel and share WAL
//! flushes.
//!
//! Order: the change feed (NOTIFY) delivers changes in commit order, and the revisions of one
//! resource increase with each change (row locks order writers of one row). Revisions of
//! different resources are unique but, with concurrent writers, may commit out of revision
//! order; nothing compares them across resources.

mod batch;
mod config;
mod error;
mod feed;
pub(crate) mod leader;
mod migrations;
mod rows;

use std::sync::Arc;
use std::time::Duration;

use atoll_model::Resource;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::instrument;

pub use config::PostgresConfig;
use error::Target;
use rows::{PageRow, ResourceRow};

use crate::leader::{LeaderGuard, Leadership};
use crate::rules::{check, incoming, not_found, stamped, timestamp};
use crate::{
    Event, FEED_CAPACITY, Key, ListQuery, Page, Precondition, PutOutcome, Store, StoreError, Stored,
};

/// How often a write reads again after losing a race for the same resource before it gives
/// up as unavailable: each lost race means another writer succeeded, so this is only reached
/// under a storm of writes to one resource.
const MAX_WRITE_ATTEMPTS: usize = 16;

const COLUMNS: &str =
    "type, mesh, name, spec, labels, version, creation_time, modification_time, trace_context";

/// A [`Store`] on PostgreSQL. Clones share the pool and the change feed.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl PostgresStore {
    /// The connection pool now: (open connections, idle among them, the maximum).
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        let pool = &self.inner.pool;
        (
            pool.size(),
            pool.num_idle(),
            pool.options().get_max_connections(),
        )
    }
}

struct Inner {
    pool: PgPool,
    options: PgConnectOptions,
    acquire_timeout: Duration,
    target: Target,
    events: broadcast::Sender<Event>,
    feed: JoinHandle<()>,
    batcher: batch::Batcher,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.feed.abort();
    }
}

impl PostgresStore {
    /// Connects, brings the schema up to date, and starts the change feed. Fails with
    /// [`StoreError::Unavailable`] when the server cannot be reached within the acquire timeout.
    #[instrument(level = "debug", skip_all)]
    pub async fn connect(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let options = config.connect_options()?;
        // A pool of zero connections could never serve anything.
        let max_connections = config.max_connections.max(1);
        let target = Target::new(&options, config.acquire_timeout, max_connections);
        tracing::debug!(
            address = target.address(),
            max_connections,
            "connecting to PostgreSQL"
        );
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|err| target.error(err, None))?;
        migrations::run(&pool)
            .await
            .map_err(|err| target.migrate_error(err))?;
        let (events, _) = broadcast::channel(FEED_CAPACITY);
        let feed = feed::start(
            options.clone(),
            config.acquire_timeout,
            config.feed_probe_interval,
            target.clone(),
            events.clone(),
        )
        .await?;
        let batcher = batch::Batcher::start(pool.clone(), target.clone());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                batcher,
                pool,
                options,
                acquire_timeout: config.acquire_timeout,
                target,
                events,
                feed,
            }),
        })
    }

    /// Leads `name` among every user of this database, until the guard is dropped.
    #[instrument(level = "debug", skip(self))]
    pub async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>, StoreError> {
        let inner = &self.inner;
        leader::try_lead(&inner.options, inner.acquire_timeout, &inner.target, name).await
    }

    /// The operations pool, for tests that need to exhaust it.
    #[doc(hidden)]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    fn error(&self, err: sqlx::Error) -> StoreError {
        self.inner.target.error(err, Some(&self.inner.pool))
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    #[instrument(level = "debug", skip_all, fields(kind = %key.kind, mesh = ?key.mesh, name = %key.name))]
    async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError> {
        let (kind, mesh, name) = columns(key);
        let row: Option<ResourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources WHERE type = $1 AND mesh = $2 AND name = $3"
        )))
        .bind(kind)
        .bind(mesh)
        .bind(name)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| self.error(e))?;
        row.map(ResourceRow::into_stored).transpose()
    }

    #[instrument(level = "debug", skip_all, fields(kind = ?query.kind, mesh = ?query.mesh))]
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        // One statement, so the count and the page come from the same snapshot; the page is
        // joined to the count so that an empty page still returns the total.
        let rows: Vec<PageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH matched AS ( \
                 SELECT {COLUMNS} FROM resources \
                 WHERE ($1::text IS NULL OR type = $1) \
                   AND ($2::text IS NULL OR mesh = $2) \
                   AND labels @> $3 \
             ) \
             SELECT counted.total, page.* \
             FROM (SELECT count(*) AS total FROM matched) AS counted \
             LEFT JOIN LATERAL ( \
                 SELECT * FROM matched ORDER BY type, mesh, name OFFSET $4 LIMIT $5 \
             ) AS page ON true"
        )))
        .bind(query.kind.map(|kind| kind.name()))
        .bind(query.mesh.as_deref())
        .bind(Json(&query.labels))
        .bind(i64::try_from(query.offset).unwrap_or(i64::MAX))
        .bind(
            query
                .size
                .map(|size| i64::try_from(size).unwrap_or(i64::MAX)),
        )
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.error(e))?;
        let total = rows
            .first()
            .map_or(0, |row| usize::try_from(row.total).unwrap_or(0));
        let items = rows
            .into_iter()
            .filter_map(|row| row.resource)
            .map(ResourceRow::into_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let end = query.offset.saturating_add(items.len());
        Ok(Page {
            next_offset: (end < total).then_some(end),
            items,
            total,
        })
    }

    #[instrument(level = "debug", skip_all, fields(kind = %resource.kind(), mesh = ?resource.mesh(), name = %resource.name(), ?expect))]
    async fn put(
        &self,
        resource: Resource,
        expect: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        let resource = incoming(resource);
        let key = Key::of(&resource);
        let (kind, mesh, name) = columns(&key);
        let spec = atoll_model::content_document(&resource);
        let labels = Json(&resource.meta.labels);
        let pool = &self.inner.pool;

        for _ in 0..MAX_WRITE_ATTEMPTS {
            // A plain read: an unchanged write (every re-registration of a proxy) takes no lock
            // and writes nothing. It is as if it happened at the moment of this read.
            let existing: Option<(i64, bool, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
                "SELECT version, spec = $4 AND labels = $5, creation_time, modification_time \
                 FROM resources WHERE type = $1 AND mesh = $2 AND name = $3",
            )
            .bind(kind)
            .bind(mesh)
            .bind(name)
            .bind(Json(&spec))
            .bind(labels)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.error(e))?;
            let existing_version = existing.map(|row| version(row.0)).transpose()?;
            check(&key, existing_version, expect)?;
            if let Some((stored_version, true, created, modified)) = existing {
                tracing::debug!(version = stored_version, "unchanged");
                return Ok(PutOutcome::Unchanged(Stored {
                    resource: stamped(resource, timestamp(created), timestamp(modified)),
                    version: version(stored_version)?,
                }));
            }
            let row = batch::Row {
                kind,
                mesh: mesh.to_string(),
                name: name.to_string(),
            };
            let (spec, labels, trace) = (
                spec.clone(),
                serde_json::to_value(&resource.meta.labels).unwrap_or_default(),
                resource.meta.trace.clone(),
            );
            // One statement, committed with whatever other changes are queued. When what was
            // read no longer holds (the row went, came, or moved past the expected version) it
            // writes nothing and the loop reads again, which re-checks the precondition.
            let change = match existing {
                Some((read_version, ..)) => batch::Change::Update {
                    row,
                    spec,
                    labels,
                    trace,
                    // Only a conditional write needs the row as read; an unconditional one
                    // waits for a concurrent writer of the row and then replaces its change,
                    // as writes to one row in commit order do.
                    version: matches!(expect, Precondition::Version(_)).then_some(read_version),
                },
                None => batch::Change::Insert {
                    row,
                    spec,
                    labels,
                    trace,
                },
            };
            let batch::Outcome::Written {
                version: new_version,
                created,
                modified,
            } = self.inner.batcher.submit(change).await?
            else {
                tracing::debug!("written concurrently; reading again");
                continue;
            };
            let stored = Stored {
                resource: stamped(resource, timestamp(created), timestamp(modified)),
                version: version(new_version)?,
            };
            tracing::debug!(
                version = stored.version,
                update = existing.is_some(),
                "stored"
            );
            return Ok(if existing.is_some() {
                PutOutcome::Updated(stored)
            } else {
                PutOutcome::Created(stored)
            });
        }
        Err(contended(&key))
    }

    #[instrument(level = "debug", skip_all, fields(kind = %key.kind, mesh = ?key.mesh, name = %key.name, ?expect))]
    async fn delete(&self, key: &Key, expect: Option<u64>) -> Result<Stored, StoreError> {
        let (kind, mesh, name) = columns(key);
        let pool = &self.inner.pool;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let row: Option<ResourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM resources WHERE type = $1 AND mesh = $2 AND name = $3"
            )))
            .bind(kind)
            .bind(mesh)
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.error(e))?;
            let Some(row) = row else {
                return Err(not_found(key));
            };
            // Decoded before deleting: a row this build cannot read is refused, not deleted.
            let stored = row.into_stored()?;
            check(
                key,
                Some(stored.version),
                expect.map_or(Precondition::Any, Precondition::Version),
            )?;
            let change = batch::Change::Delete {
                row: batch::Row {
                    kind,
                    mesh: mesh.to_string(),
                    name: name.to_string(),
                },
                version: i64::try_from(stored.version).unwrap_or(i64::MAX),
            };
            if let batch::Outcome::Deleted = self.inner.batcher.submit(change).await? {
                tracing::debug!(version = stored.version, "deleted");
                return Ok(stored);
            }
            tracing::debug!("changed concurrently; reading again");
        }
        Err(contended(key))
    }

    /// Changes from every writer to this database, via LISTEN/NOTIFY; see `feed` for how a
    /// lost connection turns into [`Event::Resync`].
    fn watch(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    #[instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Leadership for PostgresStore {
    async fn try_lead(&self, name: &str) -> Result<Option<LeaderGuard>, StoreError> {
        PostgresStore::try_lead(self, name).await
    }
}

/// The primary key columns of `key`.
impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("address", &self.inner.target.address())
            .finish_non_exhaustive()
    }
}

/// A write that kept losing races for one resource: retryable, as the other writers won.
fn contended(key: &Key) -> StoreError {
    StoreError::Unavailable(format!(
        "{} {:?}: written concurrently {MAX_WRITE_ATTEMPTS} times in a row; retry",
        key.kind, key.name
    ))
}

fn columns(key: &Key) -> (&'static str, &str, &str) {
    (
        key.kind.name(),
        key.mesh.as_deref().unwrap_or(""),
        &key.name,
    )
}

/// Revisions come from a sequence starting at 1; anything else is not ours.
fn version(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative version {value}")))
}
