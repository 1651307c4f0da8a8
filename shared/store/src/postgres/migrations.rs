//! The database schema: SQL files in `shared/store/migrations/`, embedded in the binary and
//! applied at connect by sqlx's migrator (built at run time, so the `macros` feature and its
//! second compile of sqlx are not needed).

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::PgPool;

/// Every migration, in order. Append only: an applied migration must never change.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "resources",
        include_str!("../../migrations/0001_resources.sql"),
    ),
    (
        2,
        "trace context",
        include_str!("../../migrations/0002_trace_context.sql"),
    ),
];

/// Brings the schema up to date. Safe to run from several replicas at once: the migrator
/// serialises them with an advisory lock, and skips what is already applied.
pub(crate) async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // During a rolling upgrade a newer replica may already have applied migrations this build
    // does not know; they must only add to the schema, so this build can still run.
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}
