//! A child process with its log in a file: started, probed for readiness with a deadline,
//! signalled, restarted, and killed on drop — printing its log when a test is failing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How a process is started, kept so it can be started again.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

pub struct Process {
    spec: Spec,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `spec`, appending its stdout and stderr to `log`.
    pub fn start(spec: Spec, log: PathBuf) -> anyhow::Result<Process> {
        let mut process = Process {
            spec,
            log,
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let out = File::options().create(true).append(true).open(&self.log)?;
        let err = out.try_clone()?;
        let child = Command::new(&self.spec.program)
            .args(&self.spec.args)
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} ({})",
                    self.spec.name,
                    self.spec.program.display()
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no chance to flush or clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait up to `grace` for a clean exit; true when it exited in time.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts the process again after [`Process::kill`] or [`Process::terminate`] (a no-op
    /// while it runs), e.g. the second half of a rolling restart.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            self.spawn()?;
        }
        Ok(())
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Fails early when the process exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!(
                "{} exited with {status}:\n{}",
                self.spec.name,
                self.log_tail(60)
            );
        }
        Ok(())
    }

    /// Polls `GET path` on `127.0.0.1:port` until it answers 200 or `deadline` passes.
    pub fn wait_http_ok(
        &mut self,
        port: u16,
        path: &str,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        let mut last = String::from("no answer yet");
        while Instant::now() < until {
            self.check_alive()?;
            match http_get(port, path) {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("{status} {body}"),
                Err(err) => last = err.to_string(),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "{} not ready on 127.0.0.1:{port}{path} within {deadline:?} (last: {last}):\n{}",
            self.spec.name,
            self.log_tail(60)
        )
    }

    /// Polls until `127.0.0.1:port` accepts a TCP connection or `deadline` passes.
    pub fn wait_tcp(&mut self, port: u16, deadline: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            self.check_alive()?;
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "{} not listening on 127.0.0.1:{port} within {deadline:?}:\n{}",
            self.spec.name,
            self.log_tail(60)
        )
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} ({}) -----\n{}",
                self.spec.name,
                self.log.display(),
                self.log_tail(200)
            );
        }
        self.kill();
    }
}

/// `[flag, path]` arguments handing `token` over in the file `dir/name` (written here), or
/// none without a token: how the harness gives processes their credentials, never on the
/// command line itself.
pub fn token_file_args(
    dir: &Path,
    name: &str,
    flag: &str,
    token: Option<String>,
) -> anyhow::Result<Vec<String>> {
    let Some(token) = token else {
        return Ok(Vec::new());
    };
    let file = dir.join(name);
    std::fs::write(&file, token).with_context(|| format!("writing {}", file.display()))?;
    Ok(vec![flag.to_string(), file.display().to_string()])
}

/// A minimal HTTP/1.0 GET on loopback, returning the status code and body.
/// Runs `cmd` (described as `what` in errors) to completion: its standard output, or an
/// error carrying its standard error.
pub fn stdout_of(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = cmd.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(port, "GET", path, None)
}

/// A minimal HTTP request on loopback with an optional JSON body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    http_call(port, "127.0.0.1", method, path, json)
}

/// A minimal HTTP/1.1 request on loopback naming `host` in its Host header (one request per
/// connection; Envoy refuses HTTP/1.0 by default).
pub fn http_call(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    http_call_with(port, host, method, path, json, &[])
}

/// [`http_call`] with extra request headers, e.g. `("Authorization", "Bearer …")`.
pub fn http_call_with(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    http_exchange(stream, host, method, path, json, headers)
}

/// One HTTP/1.1 request on an already connected `stream` (closed after the answer), e.g. a
/// connection made from inside another network namespace.
pub fn http_exchange(
    mut stream: TcpStream,
    host: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = json.unwrap_or_default();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {response:?}"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// Joins the chunks of a chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
