//! Servers under abuse, with real processes: a slow client on every server is cut within the
//! server's timeout while other clients are served, and a zone with 20 connected Envoys exits
//! on SIGTERM within its drain time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use atoll_e2e::dataplane::{Credential, Dataplane, sidecar_yaml};
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::{http_get, http_request};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use atoll_e2e::{backend::Backend, free_port};

const HANDSHAKE: Duration = Duration::from_secs(1);

/// The tests here measure times: they run one at a time, so twenty Envoys starting in one do
/// not slow the other's well-behaved client down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const HEADER: Duration = Duration::from_secs(2);

fn tight() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "KUMA_GENERAL_TLS_HANDSHAKE_TIMEOUT".to_string(),
            "1s".to_string(),
        ),
        (
            "KUMA_GENERAL_REQUEST_HEADER_TIMEOUT".to_string(),
            "2s".to_string(),
        ),
    ])
}

/// Connects to `port`, sends `prefix`, then one byte of `trickle` every 300 ms (cycling), and
/// returns how long the server took to close the connection.
fn slow_client(port: u16, prefix: &'static [u8], trickle: &'static [u8]) -> Duration {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    stream.write_all(prefix).unwrap();
    let mut buf = [0u8; 4096];
    for byte in trickle.iter().cycle() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "port {port}: a slow client was never cut off"
        );
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            // An error answer before the close is fine; keep reading until the close.
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return started.elapsed(),
        }
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return started.elapsed();
        }
    }
    unreachable!("cycle never ends")
}

/// A server to hold a slow client on: (name, port, first bytes, bytes to trickle, its limit).
type SlowTarget = (&'static str, u16, &'static [u8], &'static [u8], Duration);

#[test]
fn slow_clients_are_cut_within_the_timeouts_and_others_are_served() {
    let _alone = alone();
    let global = Global::start(GlobalOptions {
        env: tight(),
        ..Default::default()
    })
    .unwrap();
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            env: tight(),
            ingress: true,
            ..Default::default()
        },
    )
    .unwrap();
    const PARTIAL_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n";
    const HEADER_BYTES: &[u8] = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
    // A TLS record header announcing a ClientHello, then its body a byte at a time.
    const RECORD: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    let servers: Vec<SlowTarget> = vec![
        (
            "global HTTP API",
            global.http_port,
            PARTIAL_REQUEST,
            HEADER_BYTES,
            HEADER,
        ),
        (
            "global HTTPS API",
            global.https_port,
            RECORD,
            b"\x00",
            HANDSHAKE,
        ),
        (
            "global diagnostics",
            global.diagnostics_port,
            PARTIAL_REQUEST,
            HEADER_BYTES,
            HEADER,
        ),
        ("global KDS", global.kds_port, RECORD, b"\x00", HANDSHAKE),
        (
            "zone HTTP API",
            zone.http_port,
            PARTIAL_REQUEST,
            HEADER_BYTES,
            HEADER,
        ),
        ("zone DP server", zone.dp_port, RECORD, b"\x00", HANDSHAKE),
        (
            "zone diagnostics",
            zone.diagnostics_port,
            PARTIAL_REQUEST,
            HEADER_BYTES,
            HEADER,
        ),
        (
            "zone ingress",
            zone.ingress_port.unwrap(),
            RECORD,
            b"\x00",
            HANDSHAKE,
        ),
    ];
    let slow: Vec<_> = servers
        .iter()
        .map(|&(name, port, prefix, trickle, limit)| {
            (
                name,
                limit,
                std::thread::spawn(move || slow_client(port, prefix, trickle)),
            )
        })
        .collect();
    // While every server holds a slow client, the others are served at once.
    std::thread::sleep(Duration::from_millis(300));
    for (port, path) in [
        (global.http_port, "/"),
        (global.diagnostics_port, "/ready"),
        (zone.http_port, "/"),
        (zone.diagnostics_port, "/ready"),
    ] {
        let started = Instant::now();
        assert_eq!(http_get(port, path).unwrap().0, 200);
        assert!(
            started.elapsed() < HANDSHAKE,
            "{path} on {port} took {:?}",
            started.elapsed()
        );
    }
    for (name, limit, client) in slow {
        let took = client.join().unwrap();
        println!("{name}: slow client cut after {took:?} (limit {limit:?})");
        assert!(
            took >= limit.mul_f64(0.8) && took <= limit + Duration::from_secs(2),
            "{name}: cut after {took:?}, its limit is {limit:?}"
        );
    }
}

#[test]
fn a_zone_with_twenty_connected_envoys_exits_within_its_drain_time() {
    let _alone = alone();
    let drain = Duration::from_secs(2);
    let global = Global::start(GlobalOptions::default()).unwrap();
    let (code, body) = http_request(
        global.http_port,
        "PUT",
        "/meshes/default",
        Some(r#"{"type":"Mesh","name":"default"}"#),
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");
    let mut zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            env: BTreeMap::from([("KUMA_GENERAL_DRAIN_TIME".to_string(), "2s".to_string())]),
            ..Default::default()
        },
    )
    .unwrap();
    let app = Backend::start("app").unwrap();
    // Launched together, then awaited: twenty Envoys start in parallel.
    let mut envoys: Vec<(Dataplane, u16)> = (0..20)
        .map(|i| {
            let (admin, inbound) = (free_port().unwrap(), free_port().unwrap());
            let name = format!("app-{i}");
            let yaml = sidecar_yaml("default", &name, "app", (admin, inbound, app.port), &[]);
            let dp = Dataplane::launch(&zone, &name, &yaml, &[], Credential::Issued).unwrap();
            (dp, admin)
        })
        .collect();
    for (dp, admin) in &mut envoys {
        dp.process
            .wait_http_ok(*admin, "/ready", Duration::from_secs(60))
            .unwrap();
    }
    eventually("20 ADS streams", Duration::from_secs(30), || {
        http_get(zone.diagnostics_port, "/metrics")
            .is_ok_and(|(_, m)| m.lines().any(|l| l == "atoll_xds_streams 20"))
    })
    .unwrap();
    let started = Instant::now();
    let exited = zone.process.terminate(drain + Duration::from_secs(8));
    let took = started.elapsed();
    println!("zone with 20 connected Envoys exited {took:?} after SIGTERM (drain time {drain:?})");
    assert!(
        exited,
        "the zone did not exit within {:?}",
        drain + Duration::from_secs(8)
    );
    assert!(
        took <= drain + Duration::from_millis(1500),
        "the zone took {took:?} to exit; its drain time is {drain:?}"
    );
}
