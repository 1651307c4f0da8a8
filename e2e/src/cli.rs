//! Running `atollctl` as a user would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::binaries;

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with everything the command printed unless it exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "atollctl failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `atollctl args…` with `stdin` as standard input.
pub fn atollctl(args: &[&str], stdin: &str) -> anyhow::Result<Run> {
    run(None, args, stdin)
}

/// Runs `atollctl args…` in directory `cwd`, e.g. to check the files it writes by default.
pub fn atollctl_in(cwd: &Path, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
    run(Some(cwd), args, stdin)
}

fn run(cwd: Option<&Path>, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
    let mut command = Command::new(binaries::binary("atollctl")?);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .args(args)
        .env_remove("ATOLL_API_ADDRESS")
        .env_remove("ATOLL_API_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
