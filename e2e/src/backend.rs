//! A real HTTP backend for data-plane tests: answers every request with its own name and the
//! path it was asked for (`<name> <path>`), so a test can tell which service answered.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

pub struct Backend {
    pub name: String,
    pub port: u16,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Starts on a free loopback port; stops when dropped.
    pub fn start(name: &str) -> anyhow::Result<Backend> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a backend")?;
        let port = listener.local_addr()?.port();
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, s, st) = (name.to_string(), served.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (n, s) = (n.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &n, &s);
                });
            }
        });
        Ok(Backend {
            name: name.to_string(),
            port,
            served,
            stop,
        })
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Serves keep-alive HTTP/1.1 requests (bodies are not expected) until the peer closes.
fn serve(stream: TcpStream, name: &str, served: &AtomicU64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
        }
        let body = format!("{name} {path}");
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        served.fetch_add(1, Ordering::Relaxed);
    }
}
