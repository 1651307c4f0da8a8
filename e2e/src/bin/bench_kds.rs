//! KDS benchmark: global-write-to-zone-store latency with N zones connected, and the global's
//! memory per connected zone. Run with `cargo run --release -p atoll-e2e --bin bench-kds`.
//!
//! Latency of a change in a zone = the zone store's `modificationTime` of its copy minus the
//! global store's `modificationTime` in the PUT response: both are stamped at commit, on one
//! machine clock, so no polling resolution enters the figure.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::postgres::TempPostgres;
use atoll_e2e::process::{http_get, http_request};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use serde_json::Value;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: Option<u32>) -> anyhow::Result<u64> {
    let pid = pid.context("process not running")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

fn time_of(doc: &Value) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    let text = doc["modificationTime"]
        .as_str()
        .context("no modificationTime")?;
    Ok(chrono::DateTime::parse_from_rfc3339(text)?)
}

fn gateway(i: usize) -> String {
    format!(
        r#"{{"type":"MeshGateway","mesh":"default","name":"gw-{i:04}","selectors":[{{"match":{{"kuma.io/service":"gw-{i}"}}}}],"conf":{{"listeners":[{{"port":8080,"protocol":"HTTP"}}]}}}}"#
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let zones_n = env_number("ATOLL_BENCH_ZONES", 10);
    let changes = env_number("ATOLL_BENCH_CHANGES", 1000);
    let postgres = std::env::var("ATOLL_BENCH_STORE").as_deref() == Ok("postgres");
    let pg = if postgres {
        Some(TempPostgres::start()?)
    } else {
        None
    };
    let global = Global::start(GlobalOptions {
        postgres_url: pg.as_ref().map(|p| p.url()),
        ..Default::default()
    })?;
    let (code, body) = http_request(
        global.http_port,
        "PUT",
        "/meshes/default",
        Some(r#"{"type":"Mesh","name":"default"}"#),
    )?;
    anyhow::ensure!(code < 300, "creating the mesh: {code} {body}");

    // Baseline memory: the resources exist, no zone connected yet.
    for i in 0..changes {
        let (code, body) = http_request(
            global.http_port,
            "PUT",
            &format!("/meshes/default/meshgateways/gw-{i:04}"),
            Some(&gateway(i)),
        )?;
        anyhow::ensure!(code < 300, "{code} {body}");
    }
    std::thread::sleep(Duration::from_millis(500)); // let allocator and feed settle for the reading
    let rss_without = rss_kib(global.process.pid())?;

    let mut zones = Vec::new();
    for z in 0..zones_n {
        zones.push(Zone::start(
            &format!("zone-{z}"),
            &global,
            ZoneOptions::default(),
        )?);
    }
    let expect_total = format!(r#""total":{changes}"#);
    for zone in &zones {
        eventually("the initial sync", Duration::from_secs(120), || {
            http_get(zone.http_port, "/meshes/default/meshgateways?size=1")
                .is_ok_and(|(_, b)| b.contains(&expect_total))
        })?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_with = rss_kib(global.process.pid())?;
    let mut zone_rss: Vec<u64> = zones
        .iter()
        .map(|z| rss_kib(z.process.pid()))
        .collect::<Result<_, _>>()?;
    zone_rss.sort_unstable();

    // The measured changes: update every gateway once, sequentially.
    let mut written = Vec::with_capacity(changes);
    let started = Instant::now();
    for i in 0..changes {
        let doc = gateway(i).replace("8080", "9090");
        let (code, body) = http_request(
            global.http_port,
            "PUT",
            &format!("/meshes/default/meshgateways/gw-{i:04}"),
            Some(&doc),
        )?;
        anyhow::ensure!(code < 300, "{code} {body}");
        written.push(time_of(&serde_json::from_str(&body)?)?);
    }
    let write_secs = started.elapsed().as_secs_f64();
    let mut samples = Vec::with_capacity(changes * zones_n);
    for zone in &zones {
        eventually("every change in the zone", Duration::from_secs(120), || {
            http_get(zone.http_port, "/meshes/default/meshgateways?size=1000")
                .is_ok_and(|(_, b)| b.matches(r#""port":9090"#).count() == changes.min(1000))
        })?;
        let mut offset = 0;
        while offset < changes {
            let (code, body) = http_get(
                zone.http_port,
                &format!("/meshes/default/meshgateways?size=1000&offset={offset}"),
            )?;
            if code != 200 {
                bail!("listing zone copies: {code} {body}");
            }
            let page: Value = serde_json::from_str(&body)?;
            for item in page["items"].as_array().context("items")? {
                let name = item["name"].as_str().context("name")?;
                let i: usize = name.trim_start_matches("gw-").parse()?;
                let latency = time_of(item)? - written[i];
                samples.push(latency.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
            }
            offset += 1000;
        }
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "KDS benchmark: {zones_n} zones, {changes} changes, store {}",
        if postgres { "postgres" } else { "memory" }
    );
    println!(
        "  writes on the global: {:.0}/s (sequential PUTs)",
        changes as f64 / write_secs
    );
    println!(
        "  global write -> zone store: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default(),
        samples.len()
    );
    println!(
        "  global RSS: {} KiB without zones, {} KiB with {zones_n} zones -> {} KiB per zone",
        rss_without,
        rss_with,
        (rss_with.saturating_sub(rss_without)) / zones_n.max(1) as u64
    );
    println!("  zone RSS (median): {} KiB", zone_rss[zone_rss.len() / 2]);
    Ok(())
}
