//! Group commit for changes. A durable commit waits for a WAL flush, and PostgreSQL commits
//! transactions that NOTIFY one at a time (the feed's trigger notifies on every change), so
//! one transaction per write caps writes at one flush each. Changes are instead queued and
//! committed by a few batcher tasks, each taking whatever is queued (up to [`MAX_BATCH`]) into
//! one transaction: under load many writes share a flush; alone, a write is committed at once.
//!
//! A batch is one statement per kind of change (all its updates in one `UPDATE ... FROM
//! unnest(...)`, its inserts in one `INSERT ... ON CONFLICT DO NOTHING`, its deletes in one
//! `DELETE ... USING`): round trips, not statements' work, are what a write costs on a small
//! machine. Each row's condition (the revision its writer read) is in the statement, so a row
//! whose premise no longer holds is left alone and its writer reads again. These statements
//! raise no error in normal operation, so a batch fails only when the database does; a failed
//! batch is retried one change at a time, so one bad change cannot fail the others.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::Target;
use crate::StoreError;

/// Most changes in one transaction.
pub(crate) const MAX_BATCH: usize = 64;
/// Transactions in flight at once. One: while it commits, the next batch gathers, so batches
/// grow with the load (measured on 2 cores with 16 writers: 1 batcher 5.0k changes/s, 2 4.6k,
/// 4 3.7k; `cargo bench -p atoll-store --bench writes`).
const BATCHERS: usize = 1;
/// Queued changes before writers wait to queue (back-pressure, not loss).
const QUEUE: usize = 4 * MAX_BATCH;

/// The row a change is about.
pub(crate) struct Row {
    pub(crate) kind: &'static str,
    pub(crate) mesh: String,
    pub(crate) name: String,
}

/// One change, decided by the writer from what it read.
pub(crate) enum Change {
    /// Replace the row's content; only at `version` when given.
    Update {
        row: Row,
        spec: Value,
        labels: Value,
        trace: Option<String>,
        version: Option<i64>,
    },
    /// Create the row unless it exists.
    Insert {
        row: Row,
        spec: Value,
        labels: Value,
        trace: Option<String>,
    },
    /// Delete the row at `version`.
    Delete { row: Row, version: i64 },
}

/// What a change did.
pub(crate) enum Outcome {
    /// Written, with its new revision and times.
    Written {
        version: i64,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
    },
    Deleted,
    /// The row was not as the writer read it (gone, there, or at another revision): nothing
    /// was written; read again.
    Missed,
}

struct Request {
    change: Change,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Hands changes to the batchers.
pub(crate) struct Batcher {
    queue: mpsc::Sender<Request>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Batcher {
    pub(crate) fn start(pool: PgPool, target: Target) -> Batcher {
        let (queue, requests) = mpsc::channel(QUEUE);
        let requests = Arc::new(Mutex::new(requests));
        let tasks = (0..BATCHERS)
            .map(|_| tokio::spawn(run(requests.clone(), pool.clone(), target.clone())))
            .collect();
        Batcher { queue, tasks }
    }

    /// Commits `change` (with whatever else is queued) and says what it did.
    pub(crate) async fn submit(&self, change: Change) -> Result<Outcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Request { change, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?
    }
}

async fn run(requests: Arc<Mutex<mpsc::Receiver<Request>>>, pool: PgPool, target: Target) {
    loop {
        let batch = {
            let mut requests = requests.lock().await;
            let Some(first) = requests.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch
        };
        metrics::histogram!("atoll_store_write_batch_size").record(batch.len() as f64);
        let changes: Vec<&Change> = batch.iter().map(|r| &r.change).collect();
        match commit(&pool, &changes).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(err) if batch.len() > 1 => {
                tracing::warn!(%err, changes = batch.len(), "a batch of changes failed; committing them one by one");
                for request in batch {
                    let outcome = commit(&pool, &[&request.change])
                        .await
                        .map(|o| o.into_iter().next().unwrap_or(Outcome::Missed))
                        .map_err(|e| target.error(e, Some(&pool)));
                    let _ = request.reply.send(outcome);
                }
            }
            Err(err) => {
                let err = target.error(err, Some(&pool));
                for request in batch {
                    let _ = request.reply.send(Err(duplicate(&err)));
                }
            }
        }
    }
}

/// The same error for another waiter (store errors carry no source to share).
fn duplicate(err: &StoreError) -> StoreError {
    match err {
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// A row's identity as the statements return it.
type RowKey = (String, String, String);

fn key_of(row: &Row) -> RowKey {
    (row.kind.to_string(), row.mesh.clone(), row.name.clone())
}

fn row_of(change: &Change) -> &Row {
    match change {
        Change::Update { row, .. } | Change::Insert { row, .. } | Change::Delete { row, .. } => row,
    }
}

/// Applies `changes` with one statement per kind of change (update, insert, delete), in one
/// transaction when there is more than one statement. A row named twice goes in a later round,
/// so each statement touches a row at most once.
async fn commit(pool: &PgPool, changes: &[&Change]) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut outcomes: Vec<Option<Outcome>> = changes.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..changes.len()).collect();
    while !pending.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = pending
            .into_iter()
            .partition(|&i| seen.insert(key_of(row_of(changes[i]))));
        let updates: Vec<&Change> = pick(changes, &round, |c| matches!(c, Change::Update { .. }));
        let inserts: Vec<&Change> = pick(changes, &round, |c| matches!(c, Change::Insert { .. }));
        let deletes: Vec<&Change> = pick(changes, &round, |c| matches!(c, Change::Delete { .. }));
        let statements = [&updates, &inserts, &deletes]
            .iter()
            .filter(|v| !v.is_empty())
            .count();
        let mut done = if statements > 1 {
            let mut tx = pool.begin().await?;
            let done = statements_of(&mut tx, &updates, &inserts, &deletes).await?;
            tx.commit().await?;
            done
        } else {
            let mut conn = pool.acquire().await?;
            statements_of(&mut conn, &updates, &inserts, &deletes).await?
        };
        for i in round {
            outcomes[i] = Some(
                done.remove(&key_of(row_of(changes[i])))
                    .unwrap_or(Outcome::Missed),
            );
        }
        pending = later;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Missed))
        .collect())
}

async fn statements_of(
    conn: &mut PgConnection,
    updates: &[&Change],
    inserts: &[&Change],
    deletes: &[&Change],
) -> Result<std::collections::HashMap<RowKey, Outcome>, sqlx::Error> {
    let mut done = std::collections::HashMap::new();
    if !updates.is_empty() {
        done.extend(write(conn, UPDATE, updates).await?);
    }
    if !inserts.is_empty() {
        done.extend(write(conn, INSERT, inserts).await?);
    }
    if !deletes.is_empty() {
        done.extend(delete(conn, deletes).await?);
    }
    Ok(done)
}

fn pick<'a>(
    changes: &[&'a Change],
    round: &[usize],
    is: impl Fn(&Change) -> bool,
) -> Vec<&'a Change> {
    round
        .iter()
        .map(|&i| changes[i])
        .filter(|c| is(c))
        .collect()
}

/// Column arrays of `changes`, in the order the statements unnest them.
#[derive(Default)]
struct Columns {
    kinds: Vec<String>,
    meshes: Vec<String>,
    names: Vec<String>,
    specs: Vec<String>,
    labels: Vec<String>,
    traces: Vec<Option<String>>,
    versions: Vec<Option<i64>>,
}

impl Columns {
    fn of(changes: &[&Change]) -> Columns {
        let mut c = Columns::default();
        for change in changes {
            let (row, spec, labels, trace, version) = match change {
                Change::Update {
                    row,
                    spec,
                    labels,
                    trace,
                    version,
                } => (row, Some(spec), Some(labels), trace.clone(), *version),
                Change::Insert {
                    row,
                    spec,
                    labels,
                    trace,
                } => (row, Some(spec), Some(labels), trace.clone(), None),
                Change::Delete { row, version } => (row, None, None, None, Some(*version)),
            };
            c.kinds.push(row.kind.to_string());
            c.meshes.push(row.mesh.clone());
            c.names.push(row.name.clone());
            c.specs.push(spec.map(Value::to_string).unwrap_or_default());
            c.labels
                .push(labels.map(Value::to_string).unwrap_or_default());
            c.traces.push(trace);
            c.versions.push(version);
        }
        c
    }
}

type Returned = (String, String, String, i64, DateTime<Utc>, DateTime<Utc>);

fn written(rows: Vec<Returned>) -> impl Iterator<Item = (RowKey, Outcome)> {
    rows.into_iter()
        .map(|(kind, mesh, name, version, created, modified)| {
            (
                (kind, mesh, name),
                Outcome::Written {
                    version,
                    created,
                    modified,
                },
            )
        })
}

/// Every update of a batch in one statement, each row with its own expected revision.
const UPDATE: &str = "UPDATE resources AS r \
     SET spec = v.spec::jsonb, labels = v.labels::jsonb, \
         version = nextval('resource_versions'), modification_time = clock_timestamp(), \
         trace_context = v.trace \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::bigint[]) AS v(type, mesh, name, spec, labels, trace, expect) \
     WHERE r.type = v.type COLLATE \"C\" AND r.mesh = v.mesh COLLATE \"C\" \
       AND r.name = v.name COLLATE \"C\" AND (v.expect IS NULL OR r.version = v.expect) \
     RETURNING r.type, r.mesh, r.name, r.version, r.creation_time, r.modification_time";

/// Every insert of a batch in one statement; a row that exists by now is left alone.
const INSERT: &str = "INSERT INTO resources \
         (type, mesh, name, spec, labels, version, creation_time, modification_time, \
          trace_context) \
     SELECT v.type, v.mesh, v.name, v.spec::jsonb, v.labels::jsonb, \
            nextval('resource_versions'), stamp.at, stamp.at, v.trace \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::bigint[]) AS v(type, mesh, name, spec, labels, trace, expect) \
     CROSS JOIN LATERAL (SELECT clock_timestamp() AS at) AS stamp \
     ON CONFLICT (type, mesh, name) DO NOTHING \
     RETURNING type, mesh, name, version, creation_time, modification_time";

/// Runs `statement` (one of the above) over the columns of `changes`.
async fn write(
    conn: &mut PgConnection,
    statement: &'static str,
    changes: &[&Change],
) -> Result<Vec<(RowKey, Outcome)>, sqlx::Error> {
    let c = Columns::of(changes);
    let rows: Vec<Returned> = sqlx::query_as(statement)
        .bind(&c.kinds)
        .bind(&c.meshes)
        .bind(&c.names)
        .bind(&c.specs)
        .bind(&c.labels)
        .bind(&c.traces)
        .bind(&c.versions)
        .fetch_all(&mut *conn)
        .await?;
    Ok(written(rows).collect())
}

async fn delete(
    conn: &mut PgConnection,
    changes: &[&Change],
) -> Result<Vec<(RowKey, Outcome)>, sqlx::Error> {
    let c = Columns::of(changes);
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "DELETE FROM resources AS r \
         USING unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
               AS v(type, mesh, name, expect) \
         WHERE r.type = v.type COLLATE \"C\" AND r.mesh = v.mesh COLLATE \"C\" \
           AND r.name = v.name COLLATE \"C\" AND r.version = v.expect \
         RETURNING r.type, r.mesh, r.name",
    )
    .bind(&c.kinds)
    .bind(&c.meshes)
    .bind(&c.names)
    .bind(&c.versions)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|k| (k, Outcome::Deleted)).collect())
}
