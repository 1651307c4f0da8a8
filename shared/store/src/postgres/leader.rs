//! Leadership through PostgreSQL session advisory locks: `pg_try_advisory_lock(hashtext(name))`
//! on a connection of its own, held for as long as the [`LeaderGuard`] lives. The database
//! frees the lock when the session ends, so a crashed leader cannot block the others.
//!
//! Distinct names whose `hashtext` collides share one lock; names are few and fixed in code.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::error::Target;
use crate::StoreError;
use crate::leader::{LeaderGuard, Lease};

pub(crate) async fn try_lead(
    options: &PgConnectOptions,
    timeout: Duration,
    target: &Target,
    name: &str,
) -> Result<Option<LeaderGuard>, StoreError> {
    // Not from the pool: the lock lives as long as this session, and a pooled connection
    // would carry it back into the pool.
    let mut conn = match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return Err(target.error(err, None)),
        Err(_) => return Err(target.unreachable()),
    };
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .map_err(|err| target.error(err, None))?;
    if !locked {
        tracing::debug!(name, "leadership is held elsewhere");
        // Closing politely only saves the server a moment; the answer stands either way.
        let _ = conn.close().await;
        return Ok(None);
    }
    tracing::debug!(name, "leading");
    let lease = AdvisoryLease {
        conn: Some(conn),
        name: name.to_string(),
    };
    Ok(Some(LeaderGuard::new(name, Lease::Postgres(lease))))
}

/// The session that holds the lock.
pub(crate) struct AdvisoryLease {
    conn: Option<PgConnection>,
    name: String,
}

impl AdvisoryLease {
    /// A live session still holds its advisory locks: they end only by unlock or session end.
    pub(crate) async fn is_alive(&mut self) -> bool {
        match &mut self.conn {
            Some(conn) => conn.ping().await.is_ok(),
            None => false,
        }
    }

    pub(crate) async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Unlocking explicitly means others can lead as soon as this returns; ending the
        // session alone frees the lock too, but only once the server has noticed.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&self.name)
            .execute(&mut conn)
            .await;
        if let Err(err) = unlocked {
            tracing::debug!(name = %self.name, error = %err, "unlocking leadership");
        }
        let _ = conn.close().await;
    }
}

impl Drop for AdvisoryLease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A graceful close needs the runtime; without one, dropping the socket ends the
        // session too, just a little later on the server's side.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}
