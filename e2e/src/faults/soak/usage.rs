//! What a control-plane process holds, read from `/proc`: resident memory (`VmRSS`) and open
//! file descriptors, the two figures a leak shows in first.

use std::time::Duration;

use anyhow::Context;

/// One process's resident set and open descriptors at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: usize,
}

/// Reads `pid`'s usage: RSS from `/proc/<pid>/status`, descriptors by listing
/// `/proc/<pid>/fd`, leaving out TCP connections to `pool_port` (the database): a
/// connection pool is bounded and, after the database restarts, reopens as many connections
/// as the load of that moment asks for, which is not a leak.
pub fn read(pid: u32, pool_port: Option<u16>) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let rss_kib = vm_rss_kib(&status).with_context(|| format!("no VmRSS for {pid}"))?;
    let pooled = pool_port
        .map(|port| sockets_to(pid, port))
        .unwrap_or_default();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .filter_map(Result::ok)
        .filter(|fd| {
            let link = std::fs::read_link(fd.path()).unwrap_or_default();
            let inode = link
                .to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            !inode.is_some_and(|i| pooled.contains(&i))
        })
        .count();
    Ok(Usage { rss_kib, fds })
}

/// Socket inodes of `pid`'s network namespace whose TCP peer port is `port`
/// (`/proc/<pid>/net/tcp` and `tcp6`: the peer is `ADDR:PORT` in hex, the inode is the tenth
/// field).
fn sockets_to(pid: u32, port: u16) -> std::collections::BTreeSet<u64> {
    let mut inodes = std::collections::BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let peer_port = fields
                .get(2)
                .and_then(|peer| peer.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if peer_port == Some(port)
                && let Some(inode) = fields.get(9).and_then(|i| i.parse().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// [`read`] `samples` times `every` apart, keeping the fewest descriptors and the last RSS:
/// a connection a prober opened for one request is not a leak, and the minimum leaves it out.
pub fn settled(
    pid: u32,
    pool_port: Option<u16>,
    samples: usize,
    every: Duration,
) -> anyhow::Result<Usage> {
    let mut best = read(pid, pool_port)?;
    for _ in 1..samples {
        std::thread::sleep(every);
        let now = read(pid, pool_port)?;
        best = Usage {
            rss_kib: now.rss_kib,
            fds: best.fds.min(now.fds),
        };
    }
    Ok(best)
}

/// `VmRSS:   12345 kB` in a `/proc/<pid>/status` text.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_the_status_text() {
        let status = "Name:\tatoll-global\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_kib(status), Some(51234));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let usage = read(std::process::id(), None).unwrap();
        assert!(usage.rss_kib > 0 && usage.fds >= 3, "{usage:?}");
    }

    /// The dialled end of a connection to the pool's port is found (and so left out of the
    /// count); the accepted end, whose peer is an ephemeral port, is not.
    #[test]
    fn connections_to_the_pool_port_are_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pid = std::process::id();
        assert!(sockets_to(pid, port).is_empty());
        let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let found = sockets_to(pid, port);
        assert_eq!(found.len(), 1, "{found:?}");
        let ours = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| {
                found
                    .iter()
                    .any(|i| link.to_string_lossy() == format!("socket:[{i}]"))
            });
        assert!(ours, "the socket is one of this process's descriptors");
    }
}
