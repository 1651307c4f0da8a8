//! Running `ip(8)`, and clearing what crashed lab runs left behind.

use std::process::Command;

/// Every lab namespace and bridge starts with this; the PID of the test process that made it
/// follows, so leftovers of dead runs can be told from the live labs of parallel tests.
pub const NETNS_PREFIX: &str = "atlab";
pub const LINK_PREFIX: &str = "ab";

/// `ip args…`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    crate::process::stdout_of(
        Command::new("ip").args(args),
        &format!("ip {} (ip(8), package iproute2)", args.join(" ")),
    )
}

/// The PID in a lab name `<prefix><pid>-…`.
fn owner(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// SIGKILLs every process running in `netns`: those the lab started (and their children,
/// such as the Envoys `atoll-dp` runs), which would otherwise keep the namespace alive.
pub fn kill_all_in(netns: &str) {
    let Ok(pids) = ip(&["netns", "pids", netns]) else {
        return;
    };
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
}

/// Removes namespaces and bridges of lab runs whose process is gone (a run killed before its
/// teardown). Live labs of other test processes are left alone.
pub fn remove_leftovers() {
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if owner(name, NETNS_PREFIX).is_some_and(|pid| !alive(pid)) {
                kill_all_in(name);
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(links) = ip(&["-o", "link", "show", "type", "bridge"]) {
        for line in links.lines() {
            // "7: ab1234-0: <BROADCAST,…"
            let Some(name) = line
                .split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n))
            else {
                continue;
            };
            if owner(name, LINK_PREFIX).is_some_and(|pid| !alive(pid)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(owner("atlab4242-0-zone-1", "atlab"), Some(4242));
        assert_eq!(owner("ab77-3", "ab"), Some(77));
        assert_eq!(owner("eth0", "ab"), None);
        assert_eq!(owner("abc-1", "ab"), None);
    }
}
