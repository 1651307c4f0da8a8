//! A throwaway PostgreSQL cluster for tests: its own data directory, port and socket directory.
//!
//! Uses the PostgreSQL 15 server binaries (`/usr/lib/postgresql/15/bin`, or `ATOLL_PG_BIN`).
//! `initdb` refuses to run as root, so as root every server command runs as the `postgres`
//! user. Durability is switched off (`fsync`, `synchronous_commit`): the data never outlives
//! the test, and it makes starting and writing fast.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::free_port;

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How often a start is retried on a fresh port when another process took the chosen one.
const PORT_ATTEMPTS: usize = 3;

/// A running (or, after [`TempPostgres::stop`], stopped) PostgreSQL cluster, removed on drop.
///
/// The superuser is `postgres`, authenticated by `trust`: any password is accepted.
pub struct TempPostgres {
    pub(crate) dir: TempDir,
    pub(crate) port: u16,
    pub(crate) bin: PathBuf,
    pub(crate) as_postgres_user: bool,
    pub(crate) running: bool,
    pub(crate) durable: bool,
    /// The network namespace the server runs in (a lab host), or the test's own.
    pub(crate) netns: Option<String>,
    pub(crate) listen: std::net::Ipv4Addr,
}

impl TempPostgres {
    /// Creates a cluster in a new temporary directory and starts it on a free loopback port.
    pub fn start() -> anyhow::Result<TempPostgres> {
        Self::start_with(false)
    }

    /// [`TempPostgres::start`] with PostgreSQL's default durability (`fsync`,
    /// `synchronous_commit`, full-page writes on): for benchmarks of the write path, whose
    /// figures must hold on a real server.
    pub fn start_durable() -> anyhow::Result<TempPostgres> {
        Self::start_with(true)
    }

    /// Starts the server inside network namespace `netns` (a lab host), listening on
    /// `address:5432` only, PostgreSQL's default port, as on a machine of its own.
    pub fn start_in_netns(
        netns: &str,
        address: std::net::Ipv4Addr,
    ) -> anyhow::Result<TempPostgres> {
        let mut pg = Self::create(false)?;
        // initdb trusts loopback only; the lab's clients come from its network.
        let hba = pg.data_dir().join("pg_hba.conf");
        let mut rules =
            fs::read_to_string(&hba).with_context(|| format!("reading {}", hba.display()))?;
        rules.push_str(&format!("host all all {address}/24 trust\n"));
        fs::write(&hba, rules).with_context(|| format!("writing {}", hba.display()))?;
        pg.netns = Some(netns.to_string());
        pg.listen = address;
        pg.port = 5432;
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn start_with(durable: bool) -> anyhow::Result<TempPostgres> {
        let mut pg = Self::create(durable)?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            pg.port = free_port()?;
            match pg.pg_ctl_start() {
                Ok(()) => return Ok(pg),
                // Another test may have bound the port between free_port() and the server's bind.
                Err(err) if pg.log().contains("could not bind") => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    /// A new cluster, initialised and not started.
    pub(crate) fn create(durable: bool) -> anyhow::Result<TempPostgres> {
        let bin = std::env::var_os("ATOLL_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
        if !bin.join("initdb").exists() {
            bail!(
                "PostgreSQL server binaries not found in {} (install them with \
                 `apt-get install -y postgresql`, or set ATOLL_PG_BIN)",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("atoll-pg-")
            .tempdir()
            .context("creating a temporary directory for PostgreSQL")?;
        let as_postgres_user = running_as_root()?;
        if as_postgres_user {
            // The server runs as `postgres` and writes its data, log and socket here.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))
            .context("handing the temporary directory to the postgres user")?;
        }
        let pg = TempPostgres {
            dir,
            port: 0,
            bin,
            as_postgres_user,
            running: false,
            durable,
            netns: None,
            listen: std::net::Ipv4Addr::LOCALHOST,
        };
        pg.initdb()?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (the listening address in a lab).
    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:{}/postgres", self.listen, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (empty if it has none yet).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `sql` with `psql` and returns what it printed, unaligned and without headers
    /// (one row per line, columns split by `|`).
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        let mut cmd = self.server_command("psql");
        cmd.args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &self.url(),
            "-c",
            sql,
        ]);
        let output = crate::process::stdout_of(&mut cmd, &format!("psql {sql:?}"))?;
        Ok(output.trim().to_string())
    }

    /// Stops the server (fast shutdown: open sessions are terminated), keeping its data.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.running {
            self.pg_ctl_stop("fast")?;
        }
        Ok(())
    }

    /// Starts the server again after [`TempPostgres::stop`], on the same port and data.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if !self.running {
            self.pg_ctl_start()?;
        }
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"]);
        run(&mut cmd).context("initdb failed")
    }

    pub(crate) fn pg_ctl_start(&mut self) -> anyhow::Result<()> {
        let durability = if self.durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-p {port} -k '{socket_dir}' -c listen_addresses={listen}{durability}",
            port = self.port,
            listen = self.listen,
            socket_dir = self.dir.path().display(),
        );
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        match run(&mut cmd) {
            Ok(()) => {
                self.running = true;
                Ok(())
            }
            Err(err) => Err(err.context(format!(
                "PostgreSQL did not start on {}:{}; server log:\n{}",
                self.listen,
                self.port,
                self.log()
            ))),
        }
    }

    pub(crate) fn pg_ctl_stop(&mut self, mode: &str) -> anyhow::Result<()> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "30", "stop"]);
        let result = run(&mut cmd);
        // A failed stop most likely means the server is already gone; don't stop it twice.
        self.running = false;
        result.with_context(|| format!("stopping PostgreSQL; server log:\n{}", self.log()))
    }

    pub(crate) fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        // The server inherits the namespace pg_ctl runs in.
        let mut words: Vec<std::ffi::OsString> = Vec::new();
        if let Some(netns) = &self.netns {
            words.extend(["ip", "netns", "exec", netns.as_str()].map(Into::into));
        }
        if self.as_postgres_user {
            words.extend(["runuser", "-u", "postgres", "--"].map(Into::into));
        }
        words.push(path.into_os_string());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway. TempDir removes the files afterwards.
        if self.running
            && let Err(err) = self.pg_ctl_stop("immediate")
        {
            eprintln!("atoll-e2e: could not stop the temporary PostgreSQL: {err:#}");
        }
    }
}

pub(crate) fn running_as_root() -> anyhow::Result<bool> {
    // /proc/self belongs to the process's effective user.
    let meta = fs::metadata(Path::new("/proc/self")).context("reading /proc/self")?;
    Ok(meta.uid() == 0)
}

pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let output: Output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{cmd:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn starts_stops_starts_again_and_cleans_up() {
        let mut pg = TempPostgres::start().expect("start");
        let dir = pg.dir.path().to_path_buf();
        assert!(pg.url().ends_with(&format!(":{}/postgres", pg.port())));
        TcpStream::connect(("127.0.0.1", pg.port())).expect("server accepts connections");

        pg.stop().expect("stop");
        assert!(TcpStream::connect(("127.0.0.1", pg.port())).is_err());
        pg.start_again().expect("start again");
        TcpStream::connect(("127.0.0.1", pg.port())).expect("accepts connections again");
        assert!(pg.log().contains("ready to accept connections"));

        drop(pg);
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
