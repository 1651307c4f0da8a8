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
/// `/proc/<pid>/fd`.
pub fn read(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let rss_kib = vm_rss_kib(&status).with_context(|| format!("no VmRSS for {pid}"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count();
    Ok(Usage { rss_kib, fds })
}

/// [`read`] `samples` times `every` apart, keeping the fewest descriptors and the last RSS:
/// a connection a prober opened for one request is not a leak, and the minimum leaves it out.
pub fn settled(pid: u32, samples: usize, every: Duration) -> anyhow::Result<Usage> {
    let mut best = read(pid)?;
    for _ in 1..samples {
        std::thread::sleep(every);
        let now = read(pid)?;
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
        let usage = read(std::process::id()).unwrap();
        assert!(usage.rss_kib > 0 && usage.fds >= 3, "{usage:?}");
    }
}
