//! `atoll-dp`'s access-log relay. Envoy has no access logger that sends plain lines over TCP,
//! so for MeshAccessLog TCP backends the zone configures Envoy's file logger to write to a
//! named pipe that `atoll-dp` made, one JSON object a line naming its backend
//! ([`ADDRESS_KEY`]); the relay sends each record on to its backend as one line of text.
//! Envoy does all the formatting: the relay only unwraps. A slow or absent backend costs
//! dropped records (counted and logged), never a blocked Envoy or unbounded memory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The record's backend, `host:port`.
pub const ADDRESS_KEY: &str = "@atoll.address";
/// A plain-format record's text (JSON-format records are the other keys).
pub const LINE_KEY: &str = "@atoll.line";

/// Records waiting per backend before new ones are dropped.
const QUEUE: usize = 4096;
/// Longer lines are dropped (Envoy bounds headers at 60 KiB by default).
const MAX_LINE: usize = 1 << 20;
/// Backends served at once; records for more are dropped.
const MAX_BACKENDS: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning about dropped records per backend in this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A record line as (backend, text to send ending in a newline); `None` when it is not one.
/// A JSON record keeps the order of its keys as Envoy wrote them.
pub fn route(line: &[u8]) -> Option<(String, String)> {
    let mut record: serde_json::Map<String, Value> = serde_json::from_slice(line).ok()?;
    let Value::String(address) = record.shift_remove(ADDRESS_KEY)? else {
        return None;
    };
    let text = match record.shift_remove(LINE_KEY) {
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
        None => Value::Object(record).to_string(),
    };
    Some((address, format!("{}\n", text.trim_end_matches('\n'))))
}

/// Makes a named pipe at `path`, replacing what was there (a previous run's pipe).
pub fn create_pipe(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    nix::unistd::mkfifo(
        path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(io::Error::from)?;
    Ok(())
}

/// Relays the records written to the pipe at `path` on a thread of its own.
pub fn start(path: &Path) -> io::Result<()> {
    // Open for writing too: the pipe then never reads as ended while Envoy restarts, and
    // Envoy's own open never waits for a reader.
    let pipe = OpenOptions::new().read(true).write(true).open(path)?;
    std::thread::Builder::new()
        .name("access-log-relay".into())
        .spawn(move || read_records(pipe))?;
    Ok(())
}

struct Queue {
    sender: SyncSender<String>,
    dropped: u64,
    warned: Option<Instant>,
}

fn read_records(pipe: File) {
    let mut reader = BufReader::new(pipe);
    let mut queues: HashMap<String, Queue> = HashMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) => {
                tracing::error!(%err, "the access-log pipe failed; TCP access-log backends get no more records");
                return;
            }
        }
        if line.len() > MAX_LINE {
            tracing::warn!(
                bytes = line.len(),
                "an access-log record too long to relay was dropped"
            );
            continue;
        }
        let Some((address, text)) = route(&line) else {
            tracing::debug!("a line on the access-log pipe that is not a record was ignored");
            continue;
        };
        if !queues.contains_key(&address) {
            if queues.len() >= MAX_BACKENDS {
                tracing::warn!(%address, "too many access-log backends; records for this one are dropped");
                continue;
            }
            let (sender, receiver) = sync_channel(QUEUE);
            let target = address.clone();
            if let Err(err) = std::thread::Builder::new()
                .name("access-log-sender".into())
                .spawn(move || send_records(&target, receiver))
            {
                tracing::error!(%err, %address, "cannot start an access-log sender");
                continue;
            }
            queues.insert(
                address.clone(),
                Queue {
                    sender,
                    dropped: 0,
                    warned: None,
                },
            );
        }
        let Some(queue) = queues.get_mut(&address) else {
            continue;
        };
        match queue.sender.try_send(text) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                queue.dropped += 1;
                if queue.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(%address, dropped = queue.dropped, "the access-log backend is not keeping up; records dropped");
                    queue.warned = Some(Instant::now());
                }
            }
        }
    }
}

fn connect(address: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                return Ok(stream);
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Sends one backend's records over one connection, reconnecting when it breaks. While the
/// backend cannot be reached, records are dropped rather than held.
fn send_records(address: &str, queue: Receiver<String>) {
    let mut connection: Option<TcpStream> = None;
    let mut lost = 0u64;
    let mut retry_at = Instant::now();
    for text in queue {
        // A record is tried on the open connection, then once on a new one.
        for _ in 0..2 {
            if connection.is_none() {
                if Instant::now() < retry_at {
                    break;
                }
                match connect(address) {
                    Ok(stream) => {
                        if lost > 0 {
                            tracing::info!(%address, lost, "the access-log backend answers again");
                        }
                        lost = 0;
                        connection = Some(stream);
                    }
                    Err(err) => {
                        if lost == 0 {
                            tracing::warn!(%address, %err, "cannot reach the access-log backend; dropping its records until it answers");
                        }
                        retry_at = Instant::now() + Duration::from_secs(1);
                        break;
                    }
                }
            }
            let Some(stream) = connection.as_mut() else {
                break;
            };
            match stream.write_all(text.as_bytes()) {
                Ok(()) => break,
                Err(err) => {
                    tracing::debug!(%address, %err, "the access-log connection broke; reconnecting");
                    connection = None;
                }
            }
        }
        if connection.is_none() {
            lost += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    #[test]
    fn records_unwrap_to_their_text() {
        let plain = br#"{"@atoll.address":"127.0.0.1:5000","@atoll.line":"GET /a 200"}"#;
        assert_eq!(
            route(plain),
            Some(("127.0.0.1:5000".into(), "GET /a 200\n".into()))
        );
        let json = br#"{"@atoll.address":"logs:5000","code":200,"path":"/a"}"#;
        assert_eq!(
            route(json),
            Some((
                "logs:5000".into(),
                "{\"code\":200,\"path\":\"/a\"}\n".into()
            ))
        );
        assert_eq!(route(b"not json"), None);
        assert_eq!(route(br#"{"code":200}"#), None, "no backend");
        assert_eq!(route(br#"{"@atoll.address":5}"#), None);
    }

    #[test]
    fn records_written_to_the_pipe_reach_their_backend_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("access-logs.pipe");
        create_pipe(&pipe).unwrap();
        // Replacing a previous run's pipe works too.
        create_pipe(&pipe).unwrap();
        start(&pipe).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut writer = OpenOptions::new().append(true).open(&pipe).unwrap();
        for i in 0..3 {
            writeln!(
                writer,
                r#"{{"@atoll.address":"{address}","@atoll.line":"record {i}"}}"#
            )
            .unwrap();
        }
        writeln!(writer, "garbage").unwrap();
        writeln!(writer, r#"{{"@atoll.address":"{address}","n":3}}"#).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let lines: Vec<String> = BufReader::new(stream)
            .lines()
            .take(4)
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(lines, ["record 0", "record 1", "record 2", "{\"n\":3}"]);
    }
}
