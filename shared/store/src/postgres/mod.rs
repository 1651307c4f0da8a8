//! The PostgreSQL store, shared by several control-plane replicas: connection pool, reads and
//! writes of the `resources` table, and wiring of the change feed ([`feed`]), leadership
//! ([`leader`]) and schema ([`migrations`]).
//!
//! Every write runs in a transaction that first takes one store-wide transaction-level advisory
//! lock. Writes therefore commit one at a time, so the revisions they take from the
//! `resource_versions` sequence increase in commit order, which is the order the change feed
//! delivers them in (with concurrent writers a sequence alone only orders by start). Control
//! planes write little; a consistent revision order is worth more than parallel writes.

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
use sqlx::Transaction;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
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

/// The two-int advisory lock key every write holds until it commits ("ATOL", 1). Two-int keys
/// are a separate key space from the one-bigint keys leadership uses.
const WRITE_LOCK: (i32, i32) = (0x4154_4f4c, 1);

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
        Ok(PostgresStore {
            inner: Arc::new(Inner {
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

    /// A transaction holding the store-wide write lock (see the module docs).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.inner.pool.begin().await.map_err(|e| self.error(e))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(WRITE_LOCK.0)
            .bind(WRITE_LOCK.1)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        Ok(tx)
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

        let mut tx = self.begin_write().await?;
        let existing: Option<(i64, bool, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT version, spec = $4 AND labels = $5, creation_time, modification_time \
             FROM resources WHERE type = $1 AND mesh = $2 AND name = $3 FOR UPDATE",
        )
        .bind(kind)
        .bind(mesh)
        .bind(name)
        .bind(Json(&spec))
        .bind(labels)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let existing_version = existing.map(|row| version(row.0)).transpose()?;
        // On refusal the transaction is dropped, which rolls it back.
        check(&key, existing_version, expect)?;

        if let Some((stored_version, true, created, modified)) = existing {
            // Nothing to write; ending the transaction only releases the write lock.
            let _ = tx.rollback().await;
            tracing::debug!(version = stored_version, "unchanged");
            return Ok(PutOutcome::Unchanged(Stored {
                resource: stamped(resource, timestamp(created), timestamp(modified)),
                version: version(stored_version)?,
            }));
        }

        let statement = if existing.is_some() {
            "UPDATE resources \
             SET spec = $4, labels = $5, version = nextval('resource_versions'), \
                 modification_time = clock_timestamp(), trace_context = $6 \
             WHERE type = $1 AND mesh = $2 AND name = $3 \
             RETURNING version, creation_time, modification_time"
        } else {
            "INSERT INTO resources \
                 (type, mesh, name, spec, labels, version, creation_time, modification_time, \
                  trace_context) \
             SELECT $1, $2, $3, $4, $5, nextval('resource_versions'), stamp.at, stamp.at, $6 \
             FROM clock_timestamp() AS stamp(at) \
             RETURNING version, creation_time, modification_time"
        };
        let (new_version, created, modified): (i64, DateTime<Utc>, DateTime<Utc>) =
            sqlx::query_as(statement)
                .bind(kind)
                .bind(mesh)
                .bind(name)
                .bind(Json(&spec))
                .bind(labels)
                .bind(resource.meta.trace.as_deref())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;

        let stored = Stored {
            resource: stamped(resource, timestamp(created), timestamp(modified)),
            version: version(new_version)?,
        };
        tracing::debug!(
            version = stored.version,
            update = existing.is_some(),
            "stored"
        );
        Ok(if existing.is_some() {
            PutOutcome::Updated(stored)
        } else {
            PutOutcome::Created(stored)
        })
    }

    #[instrument(level = "debug", skip_all, fields(kind = %key.kind, mesh = ?key.mesh, name = %key.name, ?expect))]
    async fn delete(&self, key: &Key, expect: Option<u64>) -> Result<Stored, StoreError> {
        let (kind, mesh, name) = columns(key);
        let mut tx = self.begin_write().await?;
        let row: Option<ResourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM resources \
             WHERE type = $1 AND mesh = $2 AND name = $3 FOR UPDATE"
        )))
        .bind(kind)
        .bind(mesh)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let Some(row) = row else {
            return Err(not_found(key));
        };
        // Decoded before deleting: a row this build cannot read is refused, not half-deleted.
        let stored = row.into_stored()?;
        check(
            key,
            Some(stored.version),
            expect.map_or(Precondition::Any, Precondition::Version),
        )?;
        sqlx::query("DELETE FROM resources WHERE type = $1 AND mesh = $2 AND name = $3")
            .bind(kind)
            .bind(mesh)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        tracing::debug!(version = stored.version, "deleted");
        Ok(stored)
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
