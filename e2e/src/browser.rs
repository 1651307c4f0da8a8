//! A real browser for GUI tests: Debian's `chromium`, headless, driven over the DevTools
//! protocol (a WebSocket this module speaks itself: one text frame out, frames in until the
//! answer with the same id). It loads a page, evaluates expressions in it while the page keeps
//! running (so a test sees it update without a reload), and takes screenshots.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::free_port;
use crate::process::{Process, Spec};

pub struct Browser {
    pub process: Process,
    socket: TcpStream,
    next_id: u64,
    _dir: TempDir,
}

/// The chromium binary: `CHROMIUM_BIN`, or Debian's.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: install Debian's chromium package (apt-get install chromium)",
        path.display()
    );
    Ok(path)
}

impl Browser {
    /// Starts headless chromium on `url` (a window of `width`×`height`) and connects to the
    /// page's DevTools socket.
    pub fn open(url: &str, (width, height): (u32, u32)) -> anyhow::Result<Browser> {
        let dir = tempfile::Builder::new()
            .prefix("atoll-chromium-")
            .tempdir()?;
        let port = free_port()?;
        let spec = Spec {
            name: "chromium".into(),
            program: binary()?,
            args: vec![
                "--headless=new".into(),
                "--no-sandbox".into(),
                "--disable-gpu".into(),
                "--disable-dev-shm-usage".into(),
                "--no-first-run".into(),
                "--hide-scrollbars".into(),
                format!("--user-data-dir={}", dir.path().join("profile").display()),
                format!("--remote-debugging-port={port}"),
                format!("--window-size={width},{height}"),
                url.to_string(),
            ],
            env: Default::default(),
        };
        let process = Process::start(spec, dir.path().join("chromium.log"))?;
        let until = std::time::Instant::now() + Duration::from_secs(60);
        let pages: Value = loop {
            match devtools_get(port, "/json/list") {
                Ok(list) => break serde_json::from_str(&list)?,
                Err(e) if std::time::Instant::now() > until => {
                    anyhow::bail!(
                        "chromium's DevTools did not answer: {e}\n{}",
                        process.log_tail(20)
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let socket_url = pages
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["type"] == "page")
            .and_then(|p| p["webSocketDebuggerUrl"].as_str())
            .context("chromium lists no page")?
            .to_string();
        let path = socket_url
            .split_once("//")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(_, path)| format!("/{path}"))
            .context("an odd DevTools URL")?;
        let socket = connect(port, &path)?;
        Ok(Browser {
            process,
            socket,
            next_id: 1,
            _dir: dir,
        })
    }

    /// Calls a DevTools method and returns its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        send_frame(&mut self.socket, message.as_bytes())?;
        loop {
            let frame = read_frame(&mut self.socket)?;
            let answer: Value = serde_json::from_slice(&frame)?;
            if answer["id"] == id {
                if let Some(error) = answer.get("error") {
                    anyhow::bail!("{method}: {error}");
                }
                return Ok(answer["result"].clone());
            }
        }
    }

    /// The value of a JavaScript expression in the page, as text.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )?;
        Ok(match &result["result"]["value"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText").unwrap_or_default()
    }

    /// Goes to another URL of the same page (a `#fragment` keeps the page running).
    pub fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        self.eval(&format!("location.href = {}", json!(url)))?;
        Ok(())
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let result = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = result["data"].as_str().context("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

/// A GET on the DevTools HTTP server, which keeps connections open: the body is read by its
/// `Content-Length`.
fn devtools_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut status = String::new();
    reader.read_line(&mut status)?;
    anyhow::ensure!(status.contains(" 200 "), "GET {path}: {status:?}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The WebSocket opening handshake on 127.0.0.1:`port` for `path`.
fn connect(port: u16, path: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let key = base64::engine::general_purpose::STANDARD.encode(websocket_key());
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    anyhow::ensure!(
        status.contains(" 101 "),
        "the DevTools socket answered {status:?}"
    );
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    Ok(stream)
}

fn websocket_key() -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    nanos.to_le_bytes()
}

/// One masked text frame (clients must mask).
fn send_frame(stream: &mut TcpStream, payload: &[u8]) -> anyhow::Result<()> {
    let mut frame = vec![0x81u8];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame)?;
    Ok(())
}

/// The payload of the next complete message (continuation frames joined).
fn read_frame(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head)?;
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0f;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            len = u64::from_be_bytes(b);
        }
        anyhow::ensure!(len < 64 << 20, "a DevTools frame of {len} bytes");
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload)?;
        if opcode == 0x8 {
            anyhow::bail!("the DevTools socket closed");
        }
        if opcode == 0x9 || opcode == 0xA {
            continue;
        }
        message.extend(payload);
        if fin {
            return Ok(message);
        }
    }
}
