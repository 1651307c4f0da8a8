//! End-to-end change latency with real processes: a global, a zone, a built-in gateway (real
//! Envoy run by `atoll-dp`) and two backends behind real sidecars. Each round changes a route on
//! the global (REST PUT) and measures until the gateway's answer changes, polling every 1 ms:
//! global write → KDS → zone store → reconciler → ADS → Envoy ACK and serving.
//! Run with `cargo run --release -p atoll-e2e --bin bench-xds-e2e` (`ATOLL_BENCH_ROUNDS`, 100).

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use atoll_e2e::backend::Backend;
use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::{http_call, http_request};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

/// How long one round may take before the bench fails instead of waiting forever.
const ROUND_DEADLINE: Duration = Duration::from_secs(30);

fn route(backend: &str) -> String {
    format!(
        r#"{{"type":"MeshHTTPRoute","mesh":"default","name":"r","spec":{{"targetRef":{{"kind":"MeshGateway","name":"edge"}},"to":[{{"targetRef":{{"kind":"Mesh"}},"rules":[{{"matches":[{{"path":{{"type":"Exact","value":"/keep"}}}}],"default":{{"backendRefs":[{{"kind":"MeshService","name":"a"}},{{"kind":"MeshService","name":"b"}}]}}}},{{"default":{{"backendRefs":[{{"kind":"MeshService","name":"{backend}"}}]}}}}]}}]}}}}"#
    )
}

fn put(global: &Global, path: &str, body: &str) -> anyhow::Result<()> {
    let (code, reply) = http_request(global.http_port, "PUT", path, Some(body))?;
    ensure!(code < 300, "PUT {path}: {code} {reply}");
    Ok(())
}

fn sidecar(zone: &Zone, service: &str, app: &Backend) -> anyhow::Result<Dataplane> {
    let name = format!("{service}-1");
    Ok(Dataplane::start_sidecar(zone, "default", &name, service, app.port, &[], &[])?.0)
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("ATOLL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let global = Global::start(GlobalOptions::default())?;
    let zone = Zone::start("zone-1", &global, ZoneOptions::default())?;
    let port = free_port()?;
    put(
        &global,
        "/meshes/default",
        r#"{"type":"Mesh","name":"default"}"#,
    )?;
    put(
        &global,
        "/meshes/default/meshgateways/edge",
        &format!(
            r#"{{"type":"MeshGateway","mesh":"default","name":"edge","selectors":[{{"match":{{"kuma.io/service":"edge"}}}}],"conf":{{"listeners":[{{"port":{port},"protocol":"HTTP"}}]}}}}"#
        ),
    )?;
    put(&global, "/meshes/default/meshhttproutes/r", &route("a"))?;
    let (a, b) = (Backend::start("a")?, Backend::start("b")?);
    let _dps = (sidecar(&zone, "a", &a)?, sidecar(&zone, "b", &b)?);
    let mut gateway = Dataplane::start_gateway(&zone, "default", "edge-1", "edge")?;
    gateway.wait_listener(port)?;
    let answer = || {
        http_call(port, "x", "GET", "/", None)
            .ok()
            .and_then(|(_, body)| body.split(' ').next().map(str::to_string))
    };
    eventually("the gateway answering", Duration::from_secs(30), || {
        answer().as_deref() == Some("a")
    })?;
    let mut samples = Vec::with_capacity(rounds);
    let mut in_zone = Vec::with_capacity(rounds);
    let mut puts = Vec::with_capacity(rounds);
    let mut acks = Vec::with_capacity(rounds);
    let mut last_ack =
        atoll_e2e::process::http_get(zone.http_port, "/meshes/default/dataplanes+insights/edge-1")
            .ok()
            .and_then(|(_, body)| {
                body.split("envoy.config.listener.v3.Listener\":\"")
                    .nth(1)
                    .and_then(|rest| rest.get(..16).map(str::to_string))
            });
    for i in 0..rounds {
        let to = if i % 2 == 0 { "b" } else { "a" };
        let started = Instant::now();
        put(&global, "/meshes/default/meshhttproutes/r", &route(to))?;
        let written = started.elapsed();
        let needle = format!("\"name\":\"{to}\"");
        while !atoll_e2e::process::http_get(zone.http_port, "/meshes/default/meshhttproutes/r")
            .is_ok_and(|(_, body)| body.contains(&needle))
        {
            ensure!(
                started.elapsed() < ROUND_DEADLINE,
                "round {i}: the route to {to} never reached the zone"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        in_zone.push(started.elapsed().as_secs_f64() * 1000.0);
        let listener_ack = |body: &str| {
            body.split("envoy.config.listener.v3.Listener\":\"")
                .nth(1)
                .and_then(|rest| rest.get(..16).map(str::to_string))
        };
        while atoll_e2e::process::http_get(
            zone.http_port,
            "/meshes/default/dataplanes+insights/edge-1",
        )
        .ok()
        .and_then(|(_, body)| listener_ack(&body))
            == last_ack
        {
            ensure!(
                started.elapsed() < ROUND_DEADLINE,
                "round {i}: edge-1 never acknowledged a new listener"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        last_ack = atoll_e2e::process::http_get(
            zone.http_port,
            "/meshes/default/dataplanes+insights/edge-1",
        )
        .ok()
        .and_then(|(_, body)| listener_ack(&body));
        acks.push(started.elapsed().as_secs_f64() * 1000.0);
        puts.push(written.as_secs_f64() * 1000.0);
        loop {
            if answer().as_deref() == Some(to) {
                break;
            }
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "round {i}: the gateway never switched to {to}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    in_zone.sort_by(f64::total_cmp);
    puts.sort_by(f64::total_cmp);
    acks.sort_by(f64::total_cmp);
    let pct_of =
        |v: &[f64], p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "global write -> Envoy ACK of the new listener (seen in the zone's insight, polled every 0.5 ms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct_of(&acks, 0.5),
        pct_of(&acks, 0.99),
        acks[acks.len() - 1]
    );
    println!(
        "of which: PUT answered p50 {:.1} ms; the route in the zone store p50 {:.1} ms",
        puts[puts.len() / 2],
        in_zone[in_zone.len() / 2]
    );
    let pct =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "global write -> gateway serving the new route ({rounds} rounds, real Envoy): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
    let (_, insight) =
        atoll_e2e::process::http_get(zone.http_port, "/meshes/default/dataplanes+insights/edge-1")
            .context("reading the gateway's insight")?;
    println!("gateway insight: {insight}");
    Ok(())
}
