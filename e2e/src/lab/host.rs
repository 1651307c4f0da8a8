//! One machine of the lab: a network namespace with `lo` and one interface on the lab's
//! bridge. The test reaches into it the way a program on that machine would: commands run
//! through `ip netns exec`, and the test's own connections (probes, HTTP calls, test
//! backends) are made from a thread that joined the namespace, so "127.0.0.1" means that
//! machine's loopback and nothing leaks through the test's own.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::ip::ip;
use crate::backend::Backend;
use crate::faults::invariants::Get;
use crate::faults::nft::NftDrop;
use crate::faults::proxy::LinkProxy;
use crate::faults::traffic::Dial;
use crate::process::{Process, Spec};

#[derive(Debug, Clone)]
pub struct Host {
    /// The name the test knows it by (`global`, `zone-1`, …).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its only non-loopback address.
    pub address: Ipv4Addr,
    /// The root-namespace end of its link to the bridge: down cuts the host off.
    pub(super) link: String,
    /// Where this machine's files live (`/etc/atoll`, `/var/lib/…` of its units).
    pub dir: PathBuf,
}

impl Host {
    /// Runs `f` on a thread inside this host's network namespace: every socket it opens
    /// belongs to this host, and stays usable from any thread afterwards.
    pub fn within<T: Send>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> anyhow::Result<T> {
        let path = format!("/run/netns/{}", self.netns);
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> anyhow::Result<T> {
                    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).with_context(
                        || format!("joining the network namespace of {}", self.name),
                    )?;
                    Ok(f()?)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("a thread inside {} panicked", self.name))?
        })
    }

    /// A TCP connection from this host to `address`.
    pub fn connect(&self, address: SocketAddr) -> anyhow::Result<TcpStream> {
        self.within(|| TcpStream::connect_timeout(&address, Duration::from_secs(3)))
            .with_context(|| format!("connecting from {} to {address}", self.name))
    }

    /// An HTTP/1.1 request from this host to `address` (see [`crate::process::http_call_with`]).
    pub fn http(
        &self,
        address: SocketAddr,
        host_header: &str,
        method: &str,
        path: &str,
        json: Option<&str>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, String)> {
        let stream = self.connect(address)?;
        crate::process::http_exchange(stream, host_header, method, path, json, headers)
    }

    /// A [`Dial`] to `address` from this host (each connection made inside its namespace).
    pub fn dial(&self, address: SocketAddr) -> Dial {
        let me = self.clone();
        Arc::new(move || me.connect(address).map_err(std::io::Error::other))
    }

    /// A [`Get`] on this host's loopback at `port`, each request carrying `headers`.
    pub fn get(&self, port: u16, headers: &[(&str, &str)]) -> Get {
        let me = self.clone();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(move |path| {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            me.http(local, "127.0.0.1", "GET", path, None, &headers)
        })
    }

    /// `GET path` on this host's own loopback at `port`.
    pub fn local_get(&self, port: u16, path: &str) -> anyhow::Result<(u16, String)> {
        self.http(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            "127.0.0.1",
            "GET",
            path,
            None,
            &[],
        )
    }

    /// A test backend (see [`Backend`]) on this host's loopback, where its sidecar forwards.
    pub fn backend(&self, name: &str) -> anyhow::Result<Backend> {
        let listener = self.within(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
        let port = listener.local_addr()?.port();
        let me = self.clone();
        Backend::serve(
            name,
            listener,
            Box::new(move || {
                let _ = me.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            }),
        )
    }

    /// Starts `spec` on this host (`ip netns exec` execs the program, so the process's PID
    /// is the program's own), logging to `log`.
    pub fn start(&self, spec: Spec, log: &Path) -> anyhow::Result<Process> {
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            self.netns.clone(),
            spec.program.display().to_string(),
        ];
        args.extend(spec.args);
        Process::start(
            Spec {
                name: format!("{} on {}", spec.name, self.name),
                program: "ip".into(),
                args,
                env: spec.env,
            },
            log.to_path_buf(),
        )
    }

    /// Runs a command on this host to completion: (exit code, stdout, stderr).
    pub fn run(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<(i32, String, String)> {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {} on {}", program.display(), self.name))?;
        Ok((
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// Gives the host one more address on its lab interface (e.g. a name its certificates
    /// were not issued for).
    pub fn add_address(&self, address: Ipv4Addr) -> anyhow::Result<()> {
        ip(&[
            "-n",
            &self.netns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])
        .map(drop)
    }

    /// Cuts the host off the lab (its link to the bridge goes down): for partitions.
    pub fn link_down(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.link, "down"]).map(drop)
    }

    /// Drops TCP between this host and `peer` inside the host (nftables, no reset: open
    /// connections go silent, half-open), until the returned handle drops.
    pub fn nft_drop_to(&self, peer: SocketAddr) -> anyhow::Result<NftDrop> {
        NftDrop::tcp_peer_in(&self.netns, peer)
            .with_context(|| format!("dropping {}'s packets to {peer}", self.name))
    }

    /// A [`LinkProxy`] on this host's loopback, forwarding from this host to `targets`
    /// (a slow or lossy link between hosts, which this kernel cannot make with netem).
    pub fn link_proxy(&self, targets: &[SocketAddr]) -> anyhow::Result<LinkProxy> {
        let me = self.clone();
        self.within(|| {
            let wake = move |port| {
                let _ = me.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            };
            LinkProxy::start_woken_by(targets, Box::new(wake)).map_err(std::io::Error::other)
        })
        .with_context(|| format!("starting a link proxy on {}", self.name))
    }

    /// Reconnects the host after [`Host::link_down`].
    pub fn link_up(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.link, "up"]).map(drop)
    }
}
