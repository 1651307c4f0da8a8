//! A lab of machines on one machine: each host a network namespace with its own loopback and
//! one interface (`eth0`) on a bridge of the lab's own, addressed in [`SUBNET`]. Nothing in the
//! test's namespace routes there, so the only way between hosts is the lab's network, as
//! between real machines; loopback is each host's own.
//!
//! Everything is created by [`Lab::new`] and [`Lab::host`] and removed when the lab is
//! dropped, after a panic too: the processes running on its hosts are killed, then the
//! namespaces and the bridge deleted. Names carry the test process's PID, so parallel tests
//! never collide and the leftovers of a run that was killed outright are removed by the next.
//!
//! Faults between hosts (issue 17): a host's link to the bridge going down and up
//! ([`Host::link_down`], [`Host::link_up`]), packets to one peer dropped inside a host
//! ([`Host::nft_drop_to`]), a slow and lossy link through a proxy on a host
//! ([`Host::link_proxy`]); `e2e/tests/lab_faults.rs` runs the fault rows on them.

pub mod dataplane;
pub mod deploy;
pub mod host;
pub mod ip;
pub mod unit;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use tempfile::TempDir;

pub use host::Host;
use ip::{LINK_PREFIX, NETNS_PREFIX, ip};

/// The lab's addresses: `10.213.0.2` and up, one per host in the order they are added.
pub const SUBNET: &str = "10.213.0.0/24";

pub struct Lab {
    id: String,
    bridge: String,
    hosts: Vec<Host>,
    dir: TempDir,
}

impl Lab {
    /// Creates the lab's bridge; fails, saying why, when this machine cannot make network
    /// namespaces (not root, or no CAP_NET_ADMIN / CAP_SYS_ADMIN).
    pub fn new() -> anyhow::Result<Lab> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        ip::remove_leftovers();
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let bridge = format!("{LINK_PREFIX}{id}");
        let dir = tempfile::Builder::new().prefix("atoll-lab-").tempdir()?;
        ip(&["link", "add", &bridge, "type", "bridge"]).context(
            "the lab needs to create network namespaces, veth pairs and a bridge: run the tests as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN)",
        )?;
        let lab = Lab {
            id,
            bridge,
            hosts: Vec::new(),
            dir,
        };
        // No address at all on the test's side, not even an IPv6 link-local one: the test's
        // namespace must not be a host of the lab.
        let no_ipv6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", lab.bridge);
        if std::path::Path::new(&no_ipv6).exists() {
            std::fs::write(&no_ipv6, "1").with_context(|| format!("writing {no_ipv6}"))?;
        }
        ip(&["link", "set", &lab.bridge, "up"])?;
        Ok(lab)
    }

    /// Adds a host called `name` with the next address of [`SUBNET`].
    pub fn host(&mut self, name: &str) -> anyhow::Result<Host> {
        let index = self.hosts.len();
        anyhow::ensure!(index < 250, "a lab has at most 250 hosts");
        let netns = format!("{NETNS_PREFIX}{}-{name}", self.id);
        let link = format!("{LINK_PREFIX}{}h{index}", self.id);
        let address = Ipv4Addr::new(10, 213, 0, 2 + index as u8);
        ip(&["netns", "add", &netns]).with_context(|| {
            format!("creating the network namespace {netns} (the lab needs root)")
        })?;
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let host = Host {
            name: name.to_string(),
            netns: netns.clone(),
            address,
            link: link.clone(),
            dir,
        };
        // Recorded before it is wired, so a failure half-way is still torn down.
        self.hosts.push(host.clone());
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        ip(&["link", "set", &link, "master", &self.bridge])?;
        ip(&["link", "set", &link, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        Ok(host)
    }

    /// The bridge's name (in the test's own namespace).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Where the lab keeps files that belong to no host (e.g. what an operator copies
    /// between machines).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            ip::kill_all_in(&host.netns);
            if let Err(err) = ip(&["netns", "del", &host.netns]) {
                eprintln!("atoll-e2e lab: {err:#}");
            }
        }
        if let Err(err) = ip(&["link", "del", &self.bridge]) {
            eprintln!("atoll-e2e lab: {err:#}");
        }
    }
}
