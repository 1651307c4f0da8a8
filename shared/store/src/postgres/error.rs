//! Turning sqlx errors into [`StoreError`]s that say where the database is and what went wrong,
//! without ever showing the password (messages are built from the host and port, not the URL).

use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPool};

use crate::StoreError;

/// Where the database is and how the pool is bounded, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    address: String,
    acquire_timeout: Duration,
    max_connections: u32,
}

impl Target {
    pub(crate) fn new(
        options: &PgConnectOptions,
        acquire_timeout: Duration,
        max_connections: u32,
    ) -> Self {
        let address = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        Target {
            address,
            acquire_timeout,
            max_connections,
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Classifies an error of an operation; `pool` tells an exhausted pool from a dead server.
    pub(crate) fn error(&self, err: sqlx::Error, pool: Option<&PgPool>) -> StoreError {
        let at = &self.address;
        match err {
            sqlx::Error::PoolTimedOut => {
                let exhausted = pool.is_some_and(|pool| {
                    pool.size() >= self.max_connections && pool.num_idle() == 0
                });
                if exhausted {
                    StoreError::Unavailable(format!(
                        "PostgreSQL at {at}: all {} pooled connections stayed busy for {:?}",
                        self.max_connections, self.acquire_timeout
                    ))
                } else {
                    self.unreachable()
                }
            }
            sqlx::Error::Io(err) => {
                StoreError::Unavailable(format!("PostgreSQL at {at} is unreachable: {err}"))
            }
            sqlx::Error::Tls(err) => {
                StoreError::Unavailable(format!("PostgreSQL at {at}: TLS failed: {err}"))
            }
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let what = match code.get(..2) {
                    // connection exception, operator intervention (shutdown, restart),
                    // insufficient resources (too many connections)
                    Some("08" | "57" | "53") => "is unavailable",
                    Some("28") => "refused the login",
                    _ => "failed",
                };
                StoreError::Unavailable(format!(
                    "PostgreSQL at {at} {what}: {} (SQLSTATE {code})",
                    db.message()
                ))
            }
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. } => {
                StoreError::Corrupt(format!("unexpected row from PostgreSQL at {at}: {err}"))
            }
            other => StoreError::Unavailable(format!("PostgreSQL at {at} failed: {other}")),
        }
    }

    /// No connection could be opened within the acquire timeout.
    pub(crate) fn unreachable(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "PostgreSQL at {} is unreachable: no connection could be opened within {:?}",
            self.address, self.acquire_timeout
        ))
    }

    pub(crate) fn migrate_error(&self, err: MigrateError) -> StoreError {
        match err {
            MigrateError::Execute(err) | MigrateError::ExecuteMigration(err, _) => {
                self.error(err, None)
            }
            // The schema is not one this build knows how to use (e.g. an applied migration
            // was edited).
            other => StoreError::Corrupt(format!("database schema at {}: {other}", self.address)),
        }
    }
}
