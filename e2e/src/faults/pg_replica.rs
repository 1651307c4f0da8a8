//! A PostgreSQL primary with a streaming replica made by `pg_basebackup`, and its failover:
//! the primary is killed (immediate shutdown: no checkpoint, sessions dropped, as in a crash)
//! and the replica promoted.
//!
//! Replication is synchronous (`synchronous_standby_names = '*'`, `synchronous_commit = on`):
//! a commit is acknowledged only once the replica has it, which is what "no acknowledged write
//! is lost on failover" needs. With asynchronous replication the last commits before a crash
//! can be lost by design, whatever the control plane does.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::free_port;
use crate::postgres::{TempPostgres, run};

pub struct PgPair {
    pub primary: TempPostgres,
    pub replica: TempPostgres,
}

impl PgPair {
    /// Starts a primary, clones it with `pg_basebackup` and starts the replica streaming from
    /// it; returns once the replica is the primary's synchronous standby.
    pub fn start() -> anyhow::Result<PgPair> {
        let mut primary = TempPostgres::create(true)?;
        append_conf(
            &primary,
            // fsync off: the tests kill processes, never the machine, and the page cache
            // survives a process.
            "synchronous_standby_names = '*'\nsynchronous_commit = on\nfsync = off\nwal_level = replica\n",
        )?;
        start_on_free_port(&mut primary)?;

        let dir = tempfile::Builder::new()
            .prefix("atoll-pg-replica-")
            .tempdir()
            .context("creating a directory for the replica")?;
        if primary.as_postgres_user {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let mut replica = TempPostgres {
            dir,
            port: 0,
            bin: primary.bin.clone(),
            as_postgres_user: primary.as_postgres_user,
            running: false,
            durable: true,
            netns: None,
            listen: std::net::Ipv4Addr::LOCALHOST,
        };
        let mut backup = replica.server_command("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-p", &primary.port().to_string()])
            .args(["-U", "postgres", "-X", "stream", "-R", "--no-sync", "-D"])
            .arg(replica.data_dir());
        run(&mut backup).context("pg_basebackup of the primary")?;
        // Once promoted it has no standby of its own: waiting for one would block every commit.
        append_conf(&replica, "synchronous_standby_names = ''\n")?;
        start_on_free_port(&mut replica)?;
        let pair = PgPair { primary, replica };
        pair.wait(
            &pair.primary,
            "select count(*) from pg_stat_replication where sync_state = 'sync'",
            "1",
        )
        .context("the replica becoming the synchronous standby")?;
        Ok(pair)
    }

    /// Kills the primary and promotes the replica; returns once the replica accepts writes.
    pub fn fail_over(&mut self) -> anyhow::Result<()> {
        self.primary.pg_ctl_stop("immediate")?;
        let mut promote = self.replica.server_command("pg_ctl");
        promote
            .arg("-D")
            .arg(self.replica.data_dir())
            .args(["-w", "-t", "30", "promote"]);
        run(&mut promote).context("promoting the replica")?;
        self.wait(&self.replica, "select pg_is_in_recovery()", "f")
            .context("the promoted replica leaving recovery")
    }

    /// Runs `sql` on `server` with psql until it prints `expected`, for up to 30 s.
    fn wait(&self, server: &TempPostgres, sql: &str, expected: &str) -> anyhow::Result<()> {
        let until = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < until {
            match server.query(sql) {
                Ok(out) if out == expected => return Ok(()),
                Ok(out) => last = out,
                Err(err) => last = format!("{err:#}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("`{sql}` did not print {expected} within 30 s (last: {last})")
    }
}

fn append_conf(pg: &TempPostgres, lines: &str) -> anyhow::Result<()> {
    let path = pg.data_dir().join("postgresql.conf");
    let mut text =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.push_str(lines);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn start_on_free_port(pg: &mut TempPostgres) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..3 {
        pg.port = free_port()?;
        match pg.pg_ctl_start() {
            Ok(()) => return Ok(()),
            Err(err) if pg.log().contains("could not bind") => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
}
