//! The KDS scale scenario behind `bench-kds` (full size, by command) and the reduced-size
//! test in `e2e/tests/scale.rs` (CI): global-write-to-zone latency with N zone processes, the
//! global's memory per connected zone, and a global restart with every zone's Dataplanes
//! synced up, counting the store writes the re-sync makes. `bench-kds`'s module doc describes
//! the phases.

use std::time::{Duration, Instant};

use crate::global::{Global, GlobalOptions};
use crate::postgres::TempPostgres;
use crate::process::{http_get, http_request};
use crate::zone::{Zone, ZoneOptions, eventually};
use anyhow::{Context, bail, ensure};
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

/// The list endpoint's largest page.
const PAGE: usize = 1000;
/// Time for the processes' allocators and feeds to settle before reading RSS.
const SETTLE: Duration = Duration::from_secs(1);

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn rss_kib(pid: Option<u32>) -> anyhow::Result<u64> {
    let pid = pid.context("process not running")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn time_of(doc: &Value) -> anyhow::Result<DateTime<FixedOffset>> {
    let text = doc["modificationTime"]
        .as_str()
        .with_context(|| format!("no modificationTime in {doc}"))?;
    Ok(DateTime::parse_from_rfc3339(text)?)
}

pub fn gateway_name(i: usize) -> String {
    format!("gw-{i:04}")
}

pub fn gateway(i: usize) -> String {
    format!(
        r#"{{"type":"MeshGateway","mesh":"default","name":"{}","selectors":[{{"match":{{"kuma.io/service":"gw-{i}"}}}}],"conf":{{"listeners":[{{"port":8080,"protocol":"HTTP"}}]}}}}"#,
        gateway_name(i)
    )
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn create_mesh(global: &Global) -> anyhow::Result<()> {
    let (code, body) = http_request(
        global.http_port,
        "PUT",
        "/meshes/default",
        Some(r#"{"type":"Mesh","name":"default"}"#),
    )?;
    ensure!(code < 300, "creating the mesh: {code} {body}");
    Ok(())
}

/// Creates gateway `i` on the global; returns the global store's modification time.
pub fn create_gateway(global: &Global, i: usize) -> anyhow::Result<DateTime<FixedOffset>> {
    create_gateway_at(global.http_port, i)
}

/// [`create_gateway`] on the API at `port`.
pub fn create_gateway_at(port: u16, i: usize) -> anyhow::Result<DateTime<FixedOffset>> {
    let (code, body) = http_request(
        port,
        "PUT",
        &format!("/meshes/default/meshgateways/{}", gateway_name(i)),
        Some(&gateway(i)),
    )?;
    ensure!(code == 201, "creating {}: {code} {body}", gateway_name(i));
    time_of(&serde_json::from_str(&body)?)
}

/// The `total` of a list at `path` on the API at `port` (0 when the API does not answer).
pub fn total_at(port: u16, path: &str) -> u64 {
    http_get(port, path)
        .ok()
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .and_then(|page| page["total"].as_u64())
        .unwrap_or(0)
}

/// How many MeshGateways a zone holds.
pub fn gateways_in(zone: &Zone) -> u64 {
    total_at(zone.http_port, "/meshes/default/meshgateways?size=1")
}

/// Waits until every zone holds `count` MeshGateways; returns the time it took.
pub fn wait_synced(zones: &[Zone], count: usize, deadline: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for zone in zones {
        let left = deadline.saturating_sub(started.elapsed());
        eventually(&format!("{count} gateways in {}", zone.name), left, || {
            gateways_in(zone) == count as u64
        })
        .with_context(|| format!("{} holds {}", zone.name, gateways_in(zone)))?;
    }
    Ok(started.elapsed())
}

/// Every MeshGateway copy in a zone, read a page of up to 1,000 at a time.
pub fn copies_in(zone: &Zone, count: usize) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::with_capacity(count);
    let mut path = format!("/meshes/default/meshgateways?size={PAGE}");
    for _ in 0..count / PAGE + 2 {
        let (code, body) = http_get(zone.http_port, &path)?;
        if code != 200 {
            bail!("listing {}'s copies: {code} {body}", zone.name);
        }
        let mut page: Value = serde_json::from_str(&body)?;
        items.extend(
            page["items"]
                .as_array_mut()
                .map(std::mem::take)
                .context("no items in the list")?,
        );
        match page["next"].as_str() {
            // `next` is an absolute URL or a path; keep the path and query.
            Some(next) if !next.is_empty() => {
                let at = next.find("/meshes/").context("unexpected next link")?;
                path = next[at..].to_string();
            }
            _ => return Ok(items),
        }
    }
    bail!(
        "{}'s list did not end after {} pages",
        zone.name,
        count / PAGE + 2
    )
}

pub fn start_zones(global: &Global, n: usize) -> anyhow::Result<Vec<Zone>> {
    (0..n)
        .map(|z| Zone::start(&format!("zone-{z}"), global, ZoneOptions::default()))
        .collect()
}

pub fn start_global(postgres: bool) -> anyhow::Result<(Global, Option<TempPostgres>)> {
    let pg = if postgres {
        Some(TempPostgres::start()?)
    } else {
        None
    };
    let global = Global::start(GlobalOptions {
        postgres_url: pg.as_ref().map(TempPostgres::url),
        ..Default::default()
    })?;
    Ok((global, pg))
}

pub struct Latency {
    pub samples: Vec<f64>,
    pub writes_per_sec: f64,
    pub sync_after_last_write: Duration,
}

/// `changes` gateways written by `writers` concurrent clients (as operators and CI pipelines
/// write at once), each client one PUT at a time.
pub fn latency(
    postgres: bool,
    zones_n: usize,
    changes: usize,
    writers: usize,
) -> anyhow::Result<Latency> {
    let (global, _pg) = start_global(postgres)?;
    create_mesh(&global)?;
    let zones = start_zones(&global, zones_n)?;
    // Every zone connected and through its first sync before the measured writes.
    for zone in &zones {
        eventually(
            &format!("the mesh in {}", zone.name),
            Duration::from_secs(60),
            || http_get(zone.http_port, "/meshes/default").is_ok_and(|(code, _)| code == 200),
        )?;
    }

    let writers = writers.clamp(1, changes.max(1));
    let started = Instant::now();
    let port = global.http_port;
    let mut stamped: Vec<(usize, DateTime<FixedOffset>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                scope.spawn(move || {
                    (w..changes)
                        .step_by(writers)
                        .map(|i| Ok((i, create_gateway_at(port, i)?)))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a writer panicked"))?)
            .collect::<anyhow::Result<Vec<Vec<_>>>>()
            .map(|all| all.into_iter().flatten().collect())
    })?;
    stamped.sort_by_key(|(i, _)| *i);
    let written: Vec<DateTime<FixedOffset>> = stamped.into_iter().map(|(_, t)| t).collect();
    let writes_per_sec = changes as f64 / started.elapsed().as_secs_f64();
    let deadline = Duration::from_secs(60 + changes as u64 / 10);
    let sync_after_last_write = wait_synced(&zones, changes, deadline)?;

    let mut samples = Vec::with_capacity(changes * zones_n);
    for zone in &zones {
        let copies = copies_in(zone, changes)?;
        ensure!(
            copies.len() == changes,
            "{} listed {} copies, expected {changes}",
            zone.name,
            copies.len()
        );
        for copy in &copies {
            let name = copy["name"].as_str().context("a copy without a name")?;
            let i: usize = name
                .strip_prefix("gw-")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("unexpected copy {name} in {}", zone.name))?;
            let global_time = written.get(i).context("a copy of an unwritten gateway")?;
            let latency = time_of(copy)? - *global_time;
            samples.push(latency.num_microseconds().context("latency overflow")? as f64 / 1000.0);
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(Latency {
        samples,
        writes_per_sec,
        sync_after_last_write,
    })
}

pub struct Memory {
    pub global_without_zones: u64,
    pub global_with_zones: u64,
    pub zones: Vec<u64>,
}

/// The processes of the memory phase, kept for the restart phase.
pub struct World {
    pub global: Global,
    pub zones: Vec<Zone>,
    pub postgres: Option<TempPostgres>,
}

pub fn memory(postgres: bool, zones_n: usize, changes: usize) -> anyhow::Result<(Memory, World)> {
    let (global, pg) = start_global(postgres)?;
    create_mesh(&global)?;
    for i in 0..changes {
        create_gateway(&global, i)?;
    }
    std::thread::sleep(SETTLE);
    let global_without_zones = rss_kib(global.process.pid())?;

    let zones = start_zones(&global, zones_n)?;
    wait_synced(
        &zones,
        changes,
        Duration::from_secs(60 + changes as u64 / 10),
    )?;
    std::thread::sleep(SETTLE);
    let global_with_zones = rss_kib(global.process.pid())?;
    let mut zone_rss: Vec<u64> = zones
        .iter()
        .map(|z| rss_kib(z.process.pid()))
        .collect::<Result<_, _>>()?;
    zone_rss.sort_unstable();
    Ok((
        Memory {
            global_without_zones,
            global_with_zones,
            zones: zone_rss,
        },
        World {
            global,
            zones,
            postgres: pg,
        },
    ))
}

pub struct Restart {
    pub dataplanes: usize,
    pub resync: Duration,
    /// Revisions handed out from the kill until the re-sync settled.
    pub writes: u64,
    /// What was written, by type.
    pub written: String,
}

/// How many Dataplanes the global holds.
pub fn dataplanes_on(global: &Global) -> u64 {
    total_at(global.http_port, "/meshes/default/dataplanes?size=1")
}

/// True when every zone's insight on the global says connected since `since`.
pub fn all_reconnected_since(global: &Global, zones: usize, since: DateTime<chrono::Utc>) -> bool {
    let Ok((200, body)) = http_get(global.http_port, "/zones/_overview") else {
        return false;
    };
    let Ok(page) = serde_json::from_str::<Value>(&body) else {
        return false;
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let back = items
        .iter()
        .filter(|z| z["online"].as_bool() == Some(true))
        .filter(|z| {
            z["insight"]["connectTime"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.to_utc() >= since)
        })
        .count();
    back == zones
}

pub fn last_revision(pg: &TempPostgres) -> anyhow::Result<u64> {
    let text = pg.query("SELECT last_value FROM resource_versions")?;
    text.parse()
        .with_context(|| format!("a revision of {text:?}"))
}

pub fn restart(world: &mut World, per_zone: usize, changes: usize) -> anyhow::Result<Restart> {
    let pg = world
        .postgres
        .as_ref()
        .context("the restart phase needs PostgreSQL")?;
    for zone in &world.zones {
        crate::scale::register(zone, per_zone, 10)?;
    }
    let dataplanes = world.zones.len() * per_zone;
    eventually(
        &format!("{dataplanes} Dataplanes on the global"),
        Duration::from_secs(120),
        || dataplanes_on(&world.global) == dataplanes as u64,
    )
    .with_context(|| format!("the global holds {}", dataplanes_on(&world.global)))?;
    // Insight flushes of the last registrations done before the count starts.
    std::thread::sleep(SETTLE * 3);
    let before = last_revision(pg)?;
    let killed = chrono::Utc::now();
    let started = Instant::now();
    world.global.crash_and_restart()?;
    let ready = started.elapsed();
    create_gateway(&world.global, changes)?;
    let zones_n = world.zones.len();
    eventually("every zone reconnected", Duration::from_secs(60), || {
        all_reconnected_since(&world.global, zones_n, killed)
    })?;
    let reconnected = started.elapsed();
    wait_synced(&world.zones, changes + 1, Duration::from_secs(60))?;
    let resync = started.elapsed();
    eprintln!(
        "restart: global ready after {:.1} s, every zone reconnected after {:.1} s, the new write everywhere after {:.1} s",
        ready.as_secs_f64(),
        reconnected.as_secs_f64(),
        resync.as_secs_f64()
    );
    ensure!(
        dataplanes_on(&world.global) == dataplanes as u64,
        "the global lost Dataplanes in the restart: {} of {dataplanes}",
        dataplanes_on(&world.global)
    );
    // Late full-set comparisons from the zones land within the settle time.
    std::thread::sleep(SETTLE * 3);
    let after = last_revision(pg)?;
    let written = pg.query(&format!(
        "SELECT string_agg(type || ' ' || n, ', ' ORDER BY n DESC) FROM \
         (SELECT type, count(*) AS n FROM resources WHERE version > {before} GROUP BY type) t"
    ))?;
    Ok(Restart {
        dataplanes,
        resync,
        writes: after.saturating_sub(before),
        written,
    })
}

impl Memory {
    /// The global's memory per connected zone, KiB.
    pub fn kib_per_zone(&self) -> f64 {
        (self.global_with_zones as f64 - self.global_without_zones as f64)
            / self.zones.len().max(1) as f64
    }
}

impl Restart {
    /// The types the re-sync wrote, from `written` ("ZoneInsight 10, MeshGateway 1").
    pub fn written_types(&self) -> Vec<&str> {
        self.written
            .split(", ")
            .filter_map(|entry| entry.split_whitespace().next())
            .collect()
    }
}
