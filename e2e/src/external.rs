//! Services outside the mesh, for MeshExternalService tests: a test CA with server and client
//! certificates, Python `ssl` servers (TCP echo or HTTP, optionally TLS with a required client
//! certificate and TLS version bounds, on a loopback port or a unix socket), and in-process
//! HTTP/2-only and gRPC servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tempfile::TempDir;

use crate::process::{Process, Spec};

const SCRIPT: &str = include_str!("external_server.py");

/// A CA and files for the certificates a test hands to servers.
pub struct TestPki {
    pub dir: TempDir,
    authority: atoll_tls::Authority,
}

impl TestPki {
    pub fn new(name: &str) -> anyhow::Result<TestPki> {
        Ok(TestPki {
            dir: tempfile::tempdir()?,
            authority: atoll_tls::Authority::generate(name)?,
        })
    }

    pub fn ca_pem(&self) -> &str {
        self.authority.cert_pem()
    }

    /// The CA certificate in a file.
    pub fn ca_file(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("ca.pem");
        std::fs::write(&path, self.ca_pem())?;
        Ok(path)
    }

    /// A server certificate for `hosts`, written as `<label>.crt` and `<label>.key`.
    pub fn server(&self, label: &str, hosts: &[&str]) -> anyhow::Result<(PathBuf, PathBuf)> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let (cert, key) = self.authority.issue_server(&hosts)?;
        let (c, k) = (
            self.dir.path().join(format!("{label}.crt")),
            self.dir.path().join(format!("{label}.key")),
        );
        std::fs::write(&c, cert)?;
        std::fs::write(&k, key)?;
        Ok((c, k))
    }

    /// A client certificate: (PEM chain, PEM key).
    pub fn client(&self) -> anyhow::Result<(String, String)> {
        Ok(self.authority.issue_client("client")?)
    }
}

/// What an external server does.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `echo` or `http`.
    pub mode: &'static str,
    pub name: String,
    /// Listen on this unix socket instead of a TCP port.
    pub unix: Option<PathBuf>,
    /// Certificate and key files: serve TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require a client certificate from this CA file.
    pub client_ca: Option<PathBuf>,
    /// `1.2` or `1.3`.
    pub max_tls: Option<&'static str>,
    /// `http`: wait this long before answering.
    pub delay_ms: Option<u64>,
}

/// A Python server; stopped on drop.
pub struct ExternalServer {
    pub port: u16,
    pub process: Process,
    _dir: TempDir,
}

impl ExternalServer {
    pub fn start(options: ServerOptions) -> anyhow::Result<ExternalServer> {
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("server.py");
        std::fs::write(&script, SCRIPT)?;
        let port = crate::free_port()?;
        let mut args = vec![
            script.display().to_string(),
            "--mode".into(),
            options.mode.into(),
            "--name".into(),
            options.name.clone(),
        ];
        match &options.unix {
            Some(path) => args.extend(["--unix".into(), path.display().to_string()]),
            None => args.extend(["--port".into(), port.to_string()]),
        }
        if let Some((cert, key)) = &options.tls {
            args.extend([
                "--cert".into(),
                cert.display().to_string(),
                "--key".into(),
                key.display().to_string(),
            ]);
        }
        if let Some(ca) = &options.client_ca {
            args.extend(["--client-ca".into(), ca.display().to_string()]);
        }
        if let Some(max) = options.max_tls {
            args.extend(["--max-tls".into(), max.into()]);
        }
        if let Some(delay) = options.delay_ms {
            args.extend(["--delay-ms".into(), delay.to_string()]);
        }
        let mut process = Process::start(
            Spec {
                name: format!("external server {}", options.name),
                program: "python3".into(),
                args,
                env: Default::default(),
            },
            dir.path().join("server.log"),
        )?;
        match &options.unix {
            Some(path) => wait_for_socket(&mut process, path)?,
            None => process.wait_tcp(port, Duration::from_secs(10))?,
        }
        Ok(ExternalServer {
            port,
            process,
            _dir: dir,
        })
    }
}

fn wait_for_socket(process: &mut Process, path: &Path) -> anyhow::Result<()> {
    crate::zone::eventually("the unix socket server", Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(path).is_ok()
    })
    .with_context(|| process.log_tail(20))
    .map(|_| ())
}

/// Sends `line` over plain TCP to `port` and returns what comes back (up to `line`'s length).
pub fn echo(port: u16, line: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(line.as_bytes())?;
    let mut got = vec![0u8; line.len()];
    let mut read = 0;
    while read < got.len() {
        let n = stream.read(&mut got[read..])?;
        if n == 0 {
            anyhow::bail!("closed after {read} bytes");
        }
        read += n;
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}
