//! Process faults by signal, sent with kill(1) so the harness needs no unsafe code: SIGSTOP
//! (a process frozen mid-flight, its sockets open: a GC pause, a stalled VM) undone on drop.

use std::process::Command;

use anyhow::{Context, bail};

/// Sends `signal` (e.g. `STOP`, `CONT`, `KILL`) to `pid`.
pub fn send(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .context("running kill(1)")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed: {status}");
    }
    Ok(())
}

/// A process stopped with SIGSTOP until this is dropped (SIGCONT).
pub struct Stopped {
    pid: u32,
}

impl Stopped {
    pub fn new(pid: u32) -> anyhow::Result<Stopped> {
        send(pid, "STOP")?;
        Ok(Stopped { pid })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Err(err) = send(self.pid, "CONT") {
            eprintln!("atoll-e2e faults: {err:#}");
        }
    }
}
