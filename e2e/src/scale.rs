//! A zone control plane at scale, with real processes (`bench-zone-scale` at full size, the
//! `scale` test in CI at a small one): a global and a zone (`atoll-zone`, its own process, so
//! its memory can be read), one mTLS mesh, Dataplanes across services, each calling the next
//! service, and as many ADS clients in this process ([`crate::ads`]), each on its own TLS
//! connection with its own stream, receiving listeners, clusters, endpoints and its workload
//! certificate (SDS over ADS), ACKing all. Data plane tokens are off
//! (`KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none`); their cost is measured by
//! `cargo bench -p atoll-zone --bench xds`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ads::{self, Seen};
use crate::global::{Global, GlobalOptions};
use crate::process::http_call_with;
use crate::zone::{Zone, ZoneOptions, eventually};
use anyhow::{Context, bail, ensure};

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256)
}

fn dataplane(name: &str, address: &str, service: &str, calls: Option<&str>) -> String {
    let outbound = calls
        .map(|c| format!(r#","outbound":[{{"port":10001,"tags":{{"kuma.io/service":"{c}"}}}}]"#))
        .unwrap_or_default();
    format!(
        r#"{{"type":"Dataplane","mesh":"default","name":"{name}","networking":{{"address":"{address}","inbound":[{{"port":8080,"tags":{{"kuma.io/service":"{service}","kuma.io/protocol":"http"}}}}]{outbound}}}}}"#
    )
}

fn put(port: u16, path: &str, body: &str) -> anyhow::Result<()> {
    let (status, reply) = http_call_with(port, "zone", "PUT", path, Some(body), &[])?;
    ensure!(status < 300, "PUT {path}: {status} {reply}");
    Ok(())
}

/// Registers Dataplanes `dp-0..dp-{proxies}` in `zone` on 8 threads, spread over `services`
/// services, each calling the next.
pub fn register(zone: &Zone, proxies: usize, services: usize) -> anyhow::Result<()> {
    let port = zone.http_port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || -> anyhow::Result<()> {
                for i in (t..proxies).step_by(8) {
                    let body = dataplane(
                        &format!("dp-{i}"),
                        &address(i),
                        &format!("svc-{}", i % services),
                        Some(&format!("svc-{}", (i + 1) % services)),
                    );
                    put(port, &format!("/meshes/default/dataplanes/dp-{i}"), &body)?;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a registering thread panicked"))??;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of one run, as printed.
pub struct Report {
    pub proxies: usize,
    pub services: usize,
    pub configured: Duration,
    pub base_kib: u64,
    pub connected_kib: u64,
    pub latencies: Vec<f64>,
    pub others_pushed: u64,
    pub mesh_wide: Duration,
    /// Mean encoded configuration per proxy, in bytes.
    pub config_bytes: u64,
}

impl Report {
    /// Zone memory added per connected proxy, in kB.
    pub fn kb_per_proxy(&self) -> f64 {
        self.connected_kib.saturating_sub(self.base_kib) as f64 * 1024.0
            / self.proxies as f64
            / 1000.0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_proxy = self.kb_per_proxy();
        writeln!(
            f,
            "zone scale: {} proxies (own TLS connection and ADS stream each, mTLS mesh, certificates over SDS) across {} services",
            self.proxies, self.services
        )?;
        writeln!(
            f,
            "  all configured (listeners, endpoints, certificate) {:.1} s after the first connect",
            self.configured.as_secs_f64()
        )?;
        writeln!(
            f,
            "  zone memory: {} MiB with the Dataplanes registered and no proxy, {} MiB with all connected: {per_proxy:.1} kB per connected proxy ({:.1} kB per proxy in total); each proxy's configuration is {:.1} kB encoded",
            self.base_kib / 1024,
            self.connected_kib / 1024,
            self.connected_kib as f64 * 1024.0 / self.proxies as f64 / 1000.0,
            self.config_bytes as f64 / 1000.0
        )?;
        if !self.latencies.is_empty() {
            writeln!(
                f,
                "  one service's new instance to every caller ({} callers), {} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; responses to other proxies: {}",
                self.proxies / self.services,
                self.latencies.len(),
                percentile(&self.latencies, 0.5),
                percentile(&self.latencies, 0.99),
                self.latencies[self.latencies.len() - 1],
                self.others_pushed
            )?;
        }
        write!(
            f,
            "  a Mesh-wide policy to all {} proxies: {:.0} ms",
            self.proxies,
            self.mesh_wide.as_secs_f64() * 1000.0
        )
    }
}

/// Runs the scenario (see the module docs) and returns its figures.
pub fn zone(proxies: usize, services: usize, rounds: usize) -> anyhow::Result<Report> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let global = Global::start(GlobalOptions::default())?;
    global.apply(
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n",
    )?;
    let zone = Zone::start(
        "zone-1",
        &global,
        ZoneOptions {
            env: [
                ("KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", "none"),
                ("RUST_LOG", "warn"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        },
    )?;
    zone.wait_for("/meshes/default", Duration::from_secs(30))?;
    let pid = zone.process.pid().context("the zone is not running")?;
    let started = Instant::now();
    register(&zone, proxies, services)?;
    eprintln!(
        "registered {proxies} Dataplanes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Let the zone settle (insights, KDS up to the global) before the baseline.
    std::thread::sleep(Duration::from_secs(2));
    let base_kib = rss_kib(pid)?;

    let ca = std::fs::read(zone.dp_ca())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let epoch = Instant::now();
    let seen: Vec<Arc<Seen>> = (0..proxies).map(|_| Arc::new(Seen::default())).collect();
    let connect = Instant::now();
    runtime.block_on(async {
        // Connections opened 64 at a time, each client then running on its own.
        let mut handshakes = tokio::task::JoinSet::new();
        for (i, s) in seen.iter().enumerate() {
            if handshakes.len() >= 64 {
                handshakes.join_next().await;
            }
            let (ca, s) = (ca.clone(), s.clone());
            let port = zone.dp_port;
            handshakes.spawn(async move {
                match ads::connect(port, &ca).await {
                    Ok(channel) => {
                        tokio::spawn(ads::run(channel, format!("default.dp-{i}"), None, s, epoch));
                    }
                    Err(err) => {
                        eprintln!("dp-{i}: cannot connect: {err:#}");
                        s.ended.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while handshakes.join_next().await.is_some() {}
    });
    let deadline = connect + Duration::from_secs(180);
    loop {
        let ready = seen.iter().filter(|s| s.configured()).count();
        let ended = seen
            .iter()
            .filter(|s| s.ended.load(Ordering::Relaxed) > 0)
            .count();
        if ready == proxies {
            break;
        }
        if ended > 0 || Instant::now() > deadline {
            bail!(
                "{ready} of {proxies} configured, {ended} streams ended, after {:.0?}\n{}",
                connect.elapsed(),
                zone.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let configured = connect.elapsed();
    eprintln!("all configured in {:.1} s", configured.as_secs_f64());
    // Insight flushes and certificate bookkeeping done: the steady state.
    std::thread::sleep(Duration::from_secs(3));
    let connected_kib = rss_kib(pid)?;
    let config_bytes = seen.iter().map(|s| s.config_size()).sum::<u64>() / proxies as u64;

    let mut latencies = Vec::new();
    let mut others_pushed = 0;
    for round in 0..rounds {
        let service = (round * 37) % services;
        // Proxy i calls svc-((i + 1) % services).
        let callers: Vec<usize> = (0..proxies)
            .filter(|i| (i + 1) % services == service)
            .collect();
        let before: Vec<u64> = seen
            .iter()
            .map(|s| s.responses.load(Ordering::Relaxed))
            .collect();
        let before_eds: Vec<u64> = callers
            .iter()
            .map(|&i| seen[i].endpoints.load(Ordering::Relaxed))
            .collect();
        let written = epoch.elapsed().as_nanos() as u64;
        let name = format!("extra-{round}");
        put(
            zone.http_port,
            &format!("/meshes/default/dataplanes/{name}"),
            &dataplane(
                &name,
                &format!("10.250.{}.{}", round / 256, round % 256),
                &format!("svc-{service}"),
                None,
            ),
        )?;
        eventually(
            &format!("round {round}: svc-{service}'s callers get the new endpoints"),
            Duration::from_secs(10),
            || {
                callers
                    .iter()
                    .zip(&before_eds)
                    .all(|(&i, b)| seen[i].endpoints.load(Ordering::Relaxed) > *b)
            },
        )?;
        let last = callers
            .iter()
            .map(|&i| seen[i].last_eds_nanos.load(Ordering::Relaxed))
            .max()
            .unwrap_or(written);
        latencies.push(last.saturating_sub(written) as f64 / 1e6);
        // Stray pushes would come within the same few milliseconds; allow them 100.
        std::thread::sleep(Duration::from_millis(100));
        others_pushed += seen
            .iter()
            .enumerate()
            .filter(|(i, _)| !callers.contains(i))
            .map(|(i, s)| s.responses.load(Ordering::Relaxed) - before[i])
            .sum::<u64>();
    }
    latencies.sort_by(f64::total_cmp);

    let before: Vec<u64> = seen
        .iter()
        .map(|s| s.responses.load(Ordering::Relaxed))
        .collect();
    let written = epoch.elapsed().as_nanos() as u64;
    put(
        zone.http_port,
        "/meshes/default/meshtimeouts/everyone",
        r#"{"type":"MeshTimeout","mesh":"default","name":"everyone","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"33s"}}]}}"#,
    )?;
    eventually(
        "every proxy gets the Mesh-wide policy",
        Duration::from_secs(60),
        || {
            seen.iter()
                .zip(&before)
                .all(|(s, b)| s.responses.load(Ordering::Relaxed) > *b)
        },
    )?;
    let last = seen
        .iter()
        .map(|s| s.last_nanos.load(Ordering::Relaxed))
        .max()
        .unwrap_or(written);
    let mesh_wide = Duration::from_nanos(last.saturating_sub(written));
    runtime.shutdown_background();
    Ok(Report {
        proxies,
        services,
        configured,
        base_kib,
        connected_kib,
        latencies,
        others_pushed,
        mesh_wide,
        config_bytes,
    })
}
