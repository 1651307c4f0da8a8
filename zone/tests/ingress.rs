//! The zone-ingress SNI router on loopback with real TLS: a rustls backend holding the only
//! key, rustls clients connecting through the ingress by SNI, and misbehaving peers next to a
//! healthy connection that must not notice them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atoll_e2e::tls::client_hello;
use atoll_zone::ingress::{IngressConfig, Stats, Table, serve};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// The longest any test waits for something that should happen.
const DEADLINE: Duration = Duration::from_secs(10);

type Client = BufReader<tokio_rustls::client::TlsStream<TcpStream>>;

// --- the backend: a TLS server answering lines ---

struct Backend {
    addr: SocketAddr,
    ca_pem: String,
    /// The leaf certificate it serves (DER).
    cert: Vec<u8>,
}

/// A TLS server for `host` that answers each line with `<name>: <line>` and, when the client
/// is done sending, with `<name>: bye` before closing.
async fn tls_backend(name: &'static str, host: &str) -> Backend {
    let ca = atoll_tls::Authority::generate("ingress test backend CA").expect("CA");
    tls_backend_of(&ca, name, host).await
}

/// Like [`tls_backend`], with a certificate issued by `ca`.
async fn tls_backend_of(ca: &atoll_tls::Authority, name: &'static str, host: &str) -> Backend {
    let (cert_pem, key_pem) = ca.issue_server(&[host.to_string()]).expect("server cert");
    let cert = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec();
    let config = atoll_tls::server_config(&cert_pem, &key_pem, "test").expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut tls = BufReader::new(tls);
                let mut line = String::new();
                loop {
                    line.clear();
                    match tls.read_line(&mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let answer = format!("{name}: {}\n", line.trim_end());
                            if tls.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                            let _ = tls.flush().await;
                        }
                    }
                }
                let _ = tls.write_all(format!("{name}: bye\n").as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Backend {
        addr,
        ca_pem: ca.cert_pem().to_string(),
        cert,
    }
}

// --- the ingress under test ---

struct Ingress {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    table: watch::Sender<Arc<Table>>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

async fn ingress(config: IngressConfig, routes: &[(&str, Vec<SocketAddr>)]) -> Ingress {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let table: Table = routes
        .iter()
        .map(|(sni, eps)| (sni.to_string(), eps.clone()))
        .collect();
    let (table_tx, table_rx) = watch::channel(Arc::new(table));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    let task = tokio::spawn(serve(listener, config, table_rx, stop_rx, stats.clone()));
    Ingress {
        addr,
        stop: stop_tx,
        table: table_tx,
        stats,
        task,
    }
}

fn quick() -> IngressConfig {
    IngressConfig {
        handshake_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        ..IngressConfig::default()
    }
}

// --- clients ---

async fn tls_connect(
    to: SocketAddr,
    server_name: ServerName<'static>,
    ca_pem: &str,
) -> std::io::Result<Client> {
    let config = atoll_tls::client_config(ca_pem.as_bytes(), "test").expect("client config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(to).await?;
    let tls = timeout(DEADLINE, connector.connect(server_name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake hung"))??;
    Ok(BufReader::new(tls))
}

async fn client(ingress: &Ingress, sni: &str, backend: &Backend) -> Client {
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    tls_connect(ingress.addr, name, &backend.ca_pem)
        .await
        .expect("TLS through the ingress")
}

async fn send_line<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
) -> String {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write");
    stream.flush().await.expect("flush");
    read_line(stream).await
}

async fn read_line<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> String {
    let mut answer = String::new();
    timeout(DEADLINE, stream.read_line(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    answer.trim_end().to_string()
}

/// Waits until the peer closes `stream` (EOF or reset), discarding anything it sends.
async fn closed_by_peer<S: AsyncRead + Unpin>(stream: &mut S, what: &str) {
    let mut buf = [0u8; 1024];
    let until = Instant::now() + DEADLINE;
    loop {
        match timeout(
            until.saturating_duration_since(Instant::now()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => panic!("{what}: still open after {DEADLINE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Polls `check` until it holds; panics with `what` at the deadline.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < until, "not in {DEADLINE:?}: {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A loopback address nothing listens on.
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

// --- tests ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_sni_without_terminating_tls() {
    let backend = tls_backend("b1", "x.example").await;
    let ingress = ingress(quick(), &[("x.example", vec![backend.addr])]).await;

    let mut conn = client(&ingress, "x.example", &backend).await;
    // The handshake verified against the backend's CA for x.example, and the certificate seen
    // is the backend's own: the ingress, which holds no key, did not terminate TLS.
    let seen = conn
        .get_ref()
        .get_ref()
        .1
        .peer_certificates()
        .expect("a server certificate");
    assert_eq!(seen[0].as_ref(), backend.cert.as_slice());
    assert_eq!(send_line(&mut conn, "hello").await, "b1: hello");
    assert_eq!(send_line(&mut conn, "again").await, "b1: again");
    // Client done sending: the backend still answers, then closes; both reach the client.
    conn.get_mut().shutdown().await.expect("close_notify");
    assert_eq!(read_line(&mut conn).await, "b1: bye");
    closed_by_peer(&mut conn, "finished connection").await;

    eventually(
        "the connection is counted for x.example with bytes both ways",
        || {
            ingress
                .stats
                .sni("x.example")
                .is_some_and(|s| s.connections == 1 && s.bytes_in > 0 && s.bytes_out > 0)
        },
    )
    .await;
    eventually("the connection is no longer active", || {
        get(&ingress.stats.active) == 0
    })
    .await;
    assert_eq!(get(&ingress.stats.routed), 1);
    assert_eq!(get(&ingress.stats.connections_total), 1);
    assert_eq!(ingress.stats.rejected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_is_matched_case_insensitively() {
    let backend = tls_backend("b1", "x.example").await;
    let ingress = ingress(quick(), &[("x.example", vec![backend.addr])]).await;
    let mut conn = client(&ingress, "X.Example", &backend).await;
    assert_eq!(send_line(&mut conn, "hi").await, "b1: hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_passes_through_both_ways() {
    // A plain TCP endpoint: reads everything until EOF, then reports how much it got.
    let endpoint = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint_addr = endpoint.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut tcp, _) = endpoint.accept().await.expect("accept");
        let mut all = Vec::new();
        tcp.read_to_end(&mut all).await.expect("read to EOF");
        tcp.write_all(format!("{}\n", all.len()).as_bytes())
            .await
            .expect("write");
    });
    let ingress = ingress(quick(), &[("x.example", vec![endpoint_addr])]).await;

    let hello = client_hello("x.example");
    let mut tcp = TcpStream::connect(ingress.addr).await.expect("connect");
    tcp.write_all(&hello).await.expect("hello");
    tcp.write_all(&[0x42; 100_000]).await.expect("payload");
    tcp.shutdown().await.expect("half-close");
    let mut answer = String::new();
    timeout(DEADLINE, tcp.read_to_string(&mut answer))
        .await
        .expect("answer and EOF in time")
        .expect("read");
    assert_eq!(answer.trim(), (hello.len() + 100_000).to_string());
    eventually("bytes counted", || {
        ingress.stats.sni("x.example").is_some_and(|s| {
            s.bytes_in == (hello.len() + 100_000) as u64 && s.bytes_out == answer.len() as u64
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_closed_without_affecting_others() {
    let backend = tls_backend("b1", "x.example").await;
    let ingress = ingress(quick(), &[("x.example", vec![backend.addr])]).await;
    let stats = ingress.stats.clone();
    let mut healthy = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut healthy, "before").await, "b1: before");

    // Garbage.
    let mut garbage = TcpStream::connect(ingress.addr).await.expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x.example\r\n\r\n")
        .await
        .expect("write");
    closed_by_peer(&mut garbage, "garbage").await;
    eventually("garbage counted as malformed", || {
        get(&stats.malformed) == 1
    })
    .await;
    assert_eq!(
        send_line(&mut healthy, "after garbage").await,
        "b1: after garbage"
    );

    // A truncated ClientHello, then EOF.
    let hello = client_hello("x.example");
    let mut truncated = TcpStream::connect(ingress.addr).await.expect("connect");
    truncated
        .write_all(&hello[..hello.len() / 2])
        .await
        .expect("write");
    truncated.shutdown().await.expect("half-close");
    closed_by_peer(&mut truncated, "truncated hello").await;
    eventually("truncated hello counted as malformed", || {
        get(&stats.malformed) == 2
    })
    .await;
    assert_eq!(
        send_line(&mut healthy, "after truncated").await,
        "b1: after truncated"
    );

    // An SNI the table does not hold: the TLS handshake fails, nothing was forwarded.
    let name = ServerName::try_from("unknown.example").expect("name");
    assert!(
        tls_connect(ingress.addr, name, &backend.ca_pem)
            .await
            .is_err()
    );
    eventually("unknown SNI counted", || get(&stats.unknown_sni) == 1).await;
    assert_eq!(
        send_line(&mut healthy, "after unknown").await,
        "b1: after unknown"
    );

    // No SNI at all: rustls sends none for an IP address.
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    assert!(
        tls_connect(ingress.addr, name, &backend.ca_pem)
            .await
            .is_err()
    );
    eventually("missing SNI counted", || get(&stats.no_sni) == 1).await;

    // Slow-loris: one byte of a real ClientHello every 200 ms, closed after the handshake
    // timeout (1 s) while the healthy connection keeps being served.
    let loris = TcpStream::connect(ingress.addr).await.expect("connect");
    let started = Instant::now();
    let (mut loris_read, mut loris_write) = loris.into_split();
    let trickle = tokio::spawn(async move {
        for byte in hello {
            if loris_write.write_all(&[byte]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!(
        send_line(&mut healthy, "during loris").await,
        "b1: during loris"
    );
    closed_by_peer(&mut loris_read, "slow-loris").await;
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(900) && lasted < Duration::from_secs(5),
        "slow-loris closed after {lasted:?}, handshake timeout 1 s"
    );
    trickle.abort();
    eventually("slow-loris counted as a timeout", || {
        get(&stats.timeouts) == 1
    })
    .await;

    assert_eq!(send_line(&mut healthy, "after all").await, "b1: after all");
    assert_eq!(get(&stats.malformed), 2);
    assert_eq!(
        get(&stats.routed),
        1,
        "only the healthy connection was spliced"
    );
    assert_eq!(stats.sni("x.example").map(|s| s.connections), Some(1));
    assert_eq!(
        stats.per_sni().len(),
        1,
        "rejected SNIs get no per-SNI series"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    let backend = tls_backend("b1", "x.example").await;
    let config = IngressConfig {
        max_connections: 2,
        ..quick()
    };
    let ingress = ingress(config, &[("x.example", vec![backend.addr])]).await;
    let mut first = client(&ingress, "x.example", &backend).await;
    let mut second = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut first, "1").await, "b1: 1");
    assert_eq!(send_line(&mut second, "2").await, "b1: 2");

    let mut third = TcpStream::connect(ingress.addr)
        .await
        .expect("the kernel accepts");
    let _ = third.write_all(&client_hello("x.example")).await;
    closed_by_peer(&mut third, "connection over the limit").await;
    assert_eq!(get(&ingress.stats.rejected_over_limit), 1);
    assert_eq!(send_line(&mut first, "still 1").await, "b1: still 1");

    drop(second);
    eventually("a slot frees up", || get(&ingress.stats.active) == 1).await;
    let mut fourth = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut fourth, "4").await, "b1: 4");
    assert_eq!(get(&ingress.stats.rejected_over_limit), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_drain_refuses_new_and_finishes_open_connections() {
    let backend = tls_backend("b1", "x.example").await;
    let config = IngressConfig {
        drain_timeout: Duration::from_secs(30),
        ..quick()
    };
    let ingress = ingress(config, &[("x.example", vec![backend.addr])]).await;
    let mut open = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut open, "before").await, "b1: before");

    ingress.stop.send_replace(true);
    let addr = ingress.addr;
    let until = Instant::now() + DEADLINE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < until, "still accepting after stop");
        sleep(Duration::from_millis(10)).await;
    }
    assert!(!ingress.task.is_finished(), "waits for the open connection");
    assert_eq!(
        send_line(&mut open, "during drain").await,
        "b1: during drain"
    );

    let draining = Instant::now();
    open.get_mut().shutdown().await.expect("close_notify");
    assert_eq!(read_line(&mut open).await, "b1: bye");
    drop(open);
    timeout(DEADLINE, ingress.task)
        .await
        .expect("serve returns once the last connection is done")
        .expect("serve did not panic");
    assert!(
        draining.elapsed() < Duration::from_secs(30),
        "did not wait for the drain timeout"
    );
    assert_eq!(get(&ingress.stats.active), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_cuts_connections_that_do_not_finish() {
    let backend = tls_backend("b1", "x.example").await;
    let config = IngressConfig {
        drain_timeout: Duration::from_millis(300),
        ..quick()
    };
    let ingress = ingress(config, &[("x.example", vec![backend.addr])]).await;
    let mut open = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut open, "hi").await, "b1: hi");
    let stopped = Instant::now();
    ingress.stop.send_replace(true);
    timeout(DEADLINE, ingress.task)
        .await
        .expect("serve returns after the drain timeout")
        .expect("serve did not panic");
    assert!(stopped.elapsed() >= Duration::from_millis(300));
    closed_by_peer(&mut open, "connection cut at the end of the drain").await;
    assert_eq!(get(&ingress.stats.active), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let backend = tls_backend("b1", "x.example").await;
    let config = IngressConfig {
        idle_timeout: Duration::from_millis(300),
        ..quick()
    };
    let ingress = ingress(config, &[("x.example", vec![backend.addr])]).await;
    let mut conn = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut conn, "hi").await, "b1: hi");
    let quiet = Instant::now();
    closed_by_peer(&mut conn, "idle connection").await;
    assert!(quiet.elapsed() >= Duration::from_millis(250));
    assert_eq!(get(&ingress.stats.idle_timeouts), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_and_balances_across_endpoints() {
    let one = tls_backend("b1", "x.example").await;
    let dead = dead_address().await;
    let ingress = ingress(
        quick(),
        &[
            ("x.example", vec![dead, one.addr]),
            ("down.example", vec![dead]),
        ],
    )
    .await;
    for i in 0..4 {
        let mut conn = client(&ingress, "x.example", &one).await;
        assert_eq!(
            send_line(&mut conn, &i.to_string()).await,
            format!("b1: {i}")
        );
    }
    assert_eq!(
        get(&ingress.stats.upstream_failures),
        0,
        "the dead endpoint was skipped"
    );

    let name = ServerName::try_from("down.example").expect("name");
    assert!(tls_connect(ingress.addr, name, &one.ca_pem).await.is_err());
    eventually("no endpoint: counted", || {
        get(&ingress.stats.upstream_failures) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_reaches_every_endpoint() {
    let ca = atoll_tls::Authority::generate("ingress test backend CA").expect("CA");
    let b1 = tls_backend_of(&ca, "b1", "x.example").await;
    let b2 = tls_backend_of(&ca, "b2", "x.example").await;
    let ingress = ingress(quick(), &[("x.example", vec![b1.addr, b2.addr])]).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        let mut conn = client(&ingress, "x.example", &b1).await;
        answers.push(send_line(&mut conn, "who").await);
    }
    assert_eq!(answers, ["b1: who", "b2: who", "b1: who", "b2: who"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_updates_apply_to_new_connections() {
    let backend = tls_backend("b1", "x.example").await;
    let ingress = ingress(quick(), &[]).await;
    let name = ServerName::try_from("x.example").expect("name");
    assert!(
        tls_connect(ingress.addr, name, &backend.ca_pem)
            .await
            .is_err()
    );
    eventually("unknown before the update", || {
        get(&ingress.stats.unknown_sni) == 1
    })
    .await;

    let table: Table = [("x.example".to_string(), vec![backend.addr])].into();
    ingress.table.send_replace(Arc::new(table));
    let mut conn = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut conn, "now").await, "b1: now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_of_a_name_that_leaves_the_table_are_dropped() {
    let backend = tls_backend("b1", "x.example").await;
    let ingress = ingress(quick(), &[("x.example", vec![backend.addr])]).await;
    let mut conn = client(&ingress, "x.example", &backend).await;
    assert_eq!(send_line(&mut conn, "hi").await, "b1: hi");
    assert!(ingress.stats.sni("x.example").is_some());
    // Per-SNI state stays bounded by the table: a name that goes, goes from the counters too.
    ingress.table.send_replace(Arc::new(Table::new()));
    eventually("x.example's counters dropped", || {
        ingress.stats.sni("x.example").is_none()
    })
    .await;
}
