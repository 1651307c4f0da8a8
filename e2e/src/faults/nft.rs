//! Packets dropped without a reset, with nftables (`nft`, Debian's `nftables`): the peers are
//! not told, so their connections stay open and go quiet, as behind a dead link or a
//! firewall that blackholes. Each rule set is a table of its own, named after the test
//! process, and deleted on drop.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// Table names start with this, then the PID of the test process that made them.
const TABLE_PREFIX: &str = "atollfault";

/// A table of drop rules, in the test's own network namespace or a lab host's.
pub struct NftDrop {
    table: String,
    netns: Option<String>,
}

impl NftDrop {
    /// Drops every TCP segment to or from `port` on loopback-addressed traffic of this
    /// namespace (both directions: neither end sees anything, neither gets a reset).
    pub fn tcp_port(port: u16) -> anyhow::Result<NftDrop> {
        Self::install(
            None,
            &[
                format!("tcp dport {port} drop"),
                format!("tcp sport {port} drop"),
            ],
        )
    }

    /// [`NftDrop::tcp_port`] for each of `ports`, all in place until the result is dropped.
    pub fn tcp_ports(ports: impl IntoIterator<Item = u16>) -> anyhow::Result<Vec<NftDrop>> {
        ports.into_iter().map(Self::tcp_port).collect()
    }

    /// Blackholes `ports` for `duration`, then lets traffic through again.
    pub fn blackhole(
        ports: impl IntoIterator<Item = u16>,
        duration: Duration,
    ) -> anyhow::Result<()> {
        let drops = Self::tcp_ports(ports)?;
        std::thread::sleep(duration);
        drop(drops);
        Ok(())
    }

    /// Drops TCP to or from `port` inside lab host namespace `netns`.
    pub fn tcp_port_in(netns: &str, port: u16) -> anyhow::Result<NftDrop> {
        Self::install(
            Some(netns),
            &[
                format!("tcp dport {port} drop"),
                format!("tcp sport {port} drop"),
            ],
        )
    }

    /// Drops TCP between lab host namespace `netns` and `peer` (its address and port), both
    /// ways: the host's other traffic, to the same peer's other ports too, still flows.
    pub fn tcp_peer_in(netns: &str, peer: SocketAddr) -> anyhow::Result<NftDrop> {
        let (address, port) = (peer.ip(), peer.port());
        let family = if address.is_ipv4() { "ip" } else { "ip6" };
        Self::install(
            Some(netns),
            &[
                format!("{family} daddr {address} tcp dport {port} drop"),
                format!("{family} saddr {address} tcp sport {port} drop"),
            ],
        )
    }

    /// `rules` (nft rule statements) in input and output hooks of a new table.
    pub fn install(netns: Option<&str>, rules: &[String]) -> anyhow::Result<NftDrop> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        remove_leftovers();
        let table = format!(
            "{TABLE_PREFIX}{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let body = rules
            .iter()
            .map(|r| format!("    {r}\n"))
            .collect::<String>();
        let script = format!(
            "table inet {table} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n{body}  }}\n  chain output {{\n    type filter hook output priority -10; policy accept;\n{body}  }}\n}}\n"
        );
        nft(
            netns.map(str::to_string).as_deref(),
            &["-f", "-"],
            Some(&script),
        )
        .context("installing nft drop rules (package nftables; the fault tests need root)")?;
        Ok(NftDrop {
            table,
            netns: netns.map(str::to_string),
        })
    }

    /// The table's name (for `nft list table inet …` when debugging).
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl Drop for NftDrop {
    fn drop(&mut self) {
        if let Err(err) = nft(
            self.netns.as_deref(),
            &["delete", "table", "inet", &self.table],
            None,
        ) {
            eprintln!("atoll-e2e faults: {err:#}");
        }
    }
}

/// Deletes fault tables of test processes that no longer run (a run killed before its drops).
fn remove_leftovers() {
    let Ok(list) = nft(None, &["list", "tables"], None) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.strip_prefix("table inet ") else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(TABLE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = nft(None, &["delete", "table", "inet", name], None);
        }
    }
}

fn nft(netns: Option<&str>, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, "nft"]);
            cmd
        }
        None => Command::new("nft"),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("running nft(8) (package nftables)")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
