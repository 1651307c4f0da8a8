//! The quick start (`./deploy/quickstart.sh`): brings up the demo with the test harness and
//! keeps it running until Ctrl-C, or checks it and exits with `--self-check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use atoll_e2e::backend::Backend;
use atoll_e2e::cli::atollctl;
use atoll_e2e::dataplane::Dataplane;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::process::{http_call, http_get};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};
use base64::Engine;

fn step(message: &str) {
    eprintln!("==> {message}");
}

fn main() -> ExitCode {
    let self_check = std::env::args().any(|a| a == "--self-check");
    match run(self_check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quickstart failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(self_check: bool) -> anyhow::Result<()> {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    step(
        "starting the global control plane (memory store): API 5681/5682, KDS 5685, diagnostics 5680",
    );
    let global = Global::start(GlobalOptions {
        ports: Some((5681, 5682, 5680)),
        kds_port: Some(5685),
        ..Default::default()
    })
    .context("starting atoll-global (are ports 5680-5682 and 5685 free?)")?;
    let api = global.api();
    for file in ["mesh.yaml", "gateway.yaml", "external-service.yaml"] {
        step(&format!("applying deploy/examples/{file}"));
        let path = examples.join(file).display().to_string();
        let run = atollctl(&["--api-address", &api, "apply", "-f", &path], "")?;
        eprint!("{}", run.stdout);
        anyhow::ensure!(run.code == 0, "atollctl apply failed:\n{}", run.stderr);
    }
    let listing = atollctl(&["--api-address", &api, "get", "meshgateways"], "")?;
    anyhow::ensure!(
        listing.stdout.contains("edge-gateway"),
        "the gateway is not listed:\n{}",
        listing.stdout
    );
    let mut zones = Vec::new();
    for name in ["zone-1", "zone-2"] {
        step(&format!(
            "starting {name} and connecting it to the global over KDS"
        ));
        zones.push(
            Zone::start(
                name,
                &global,
                ZoneOptions {
                    ingress: true,
                    ..Default::default()
                },
            )
            .with_context(|| format!("starting {name}"))?,
        );
    }
    step("creating the gateway's TLS certificate (Secret foo-example-com-certificate)");
    let (cert, key) = atoll_tls::self_signed(&["foo.example.com".into()], false)?;
    let cert_file = global.work_dir().join("foo.example.com.crt");
    std::fs::write(&cert_file, &cert)?;
    let data = base64::engine::general_purpose::STANDARD.encode(format!("{cert}{key}"));
    let secret =
        format!("type: Secret\nmesh: default\nname: foo-example-com-certificate\ndata: {data}\n");
    let run = atollctl(&["--api-address", &api, "apply", "-f", "-"], &secret)?;
    anyhow::ensure!(run.code == 0, "atollctl apply failed:\n{}", run.stderr);
    eventually("the mesh CA in zone-1", Duration::from_secs(30), || {
        http_get(
            zones[0].http_port,
            "/meshes/default/secrets/ca-builtin-ca-1",
        )
        .is_ok_and(|(c, _)| c == 200)
    })?;

    step(
        "starting demo services foo, bar and bar-canary in zone-1, each behind a real Envoy sidecar (atoll-dp) presenting a data plane token its zone issued for it",
    );
    let mut backends = Vec::new();
    let mut dataplanes = Vec::new();
    for service in ["foo", "bar", "bar-canary"] {
        let backend = Backend::start(service)?;
        let (sidecar, _) = Dataplane::start_sidecar(
            &zones[0],
            "default",
            &format!("{service}-1"),
            service,
            backend.port,
            &[],
            &[],
        )
        .with_context(|| format!("starting the sidecar of {service}"))?;
        dataplanes.push(sidecar);
        backends.push(backend);
    }
    step("starting the built-in gateway edge-gateway-1 in zone-1 (listens on 8080 and 8443)");
    let mut gateway =
        Dataplane::start_gateway(&zones[0], "default", "edge-gateway-1", "edge-gateway")
            .context("starting the gateway (is port 8080 free?)")?;
    gateway.wait_listener(8080)?;
    eventually(
        "foo.example.com through the gateway",
        Duration::from_secs(30),
        || {
            http_call(8080, "foo.example.com", "GET", "/", None)
                .is_ok_and(|(c, body)| c == 200 && body.starts_with("foo "))
        },
    )?;
    eventually(
        "bar.example.com through the gateway",
        Duration::from_secs(30),
        || {
            http_call(8080, "bar.example.com", "GET", "/", None)
                .is_ok_and(|(c, body)| c == 200 && body.starts_with("bar"))
        },
    )?;
    step(
        "starting `backend` in zone-2 only, and a client in zone-1 whose outbound 127.0.0.1:10080 calls it",
    );
    let backend = Backend::start("backend-in-zone-2")?;
    let (backend_dp, _) = Dataplane::start_sidecar(
        &zones[1],
        "default",
        "backend-1",
        "backend",
        backend.port,
        &[],
        &[],
    )?;
    dataplanes.push(backend_dp);
    backends.push(backend);
    let client_app = Backend::start("client")?;
    let (mut client, _) = Dataplane::start_sidecar(
        &zones[0],
        "default",
        "client-1",
        "client",
        client_app.port,
        &[(10080, &[("kuma.io/service", "backend")])],
        &[],
    )
    .context("starting the client (is port 10080 free?)")?;
    backends.push(client_app);
    client.wait_listener(10080)?;
    eventually(
        "zone-1's client reaching backend in zone-2 through zone-2's ingress",
        Duration::from_secs(30),
        || {
            http_call(10080, "backend", "GET", "/", None)
                .is_ok_and(|(c, body)| c == 200 && body.starts_with("backend-in-zone-2 "))
        },
    )?;
    dataplanes.push(client);
    for zone in &zones {
        eventually(
            &format!("the gateway in {}", zone.name),
            Duration::from_secs(30),
            || {
                http_get(zone.http_port, "/meshes/default/meshgateways/edge-gateway")
                    .is_ok_and(|(c, _)| c == 200)
            },
        )?;
    }
    eventually(
        "zone-1's dataplanes on the global",
        Duration::from_secs(30),
        || {
            http_get(
                global.http_port,
                "/meshes/default/dataplanes/zone-1.edge-gateway-1",
            )
            .is_ok_and(|(c, _)| c == 200)
        },
    )?;
    eventually("both zones online", Duration::from_secs(30), || {
        atollctl(&["--api-address", &api, "inspect", "zones"], "")
            .is_ok_and(|run| run.stdout.matches("Online").count() == 2)
    })?;
    let overview = atollctl(&["--api-address", &api, "inspect", "zones"], "")?;
    eprint!("{}", overview.stdout);
    if self_check {
        println!(
            "self-check: global API up, resources applied, both zones online, zone-1's dataplanes on the global"
        );
        println!(
            "self-check: gateway call ok: foo.example.com and bar.example.com answered through Envoy on 8080, over mesh mTLS to the sidecars"
        );
        println!(
            "self-check: cross-zone call ok: zone-1's client reached backend in zone-2 through zone-2's ingress (mesh mTLS end to end)"
        );
        return Ok(());
    }
    println!(
        "\nAtoll is running: a global on 5681 (API) / 5685 (KDS) and two zones. Try:\n  ./target/debug/atollctl inspect zones\n  ./target/debug/atollctl get meshgateway edge-gateway -o yaml\n  ./target/debug/atollctl get dataplanes\n  curl localhost:10080/   # zone-1's client sidecar -> zone-2's ingress -> backend in zone-2\n  curl -H 'Host: foo.example.com' localhost:8080/   # through the gateway to foo\n  curl -H 'Host: bar.example.com' localhost:8080/   # bar, or bar-canary 1 time in 10\n  curl --cacert {} --resolve foo.example.com:8443:127.0.0.1 https://foo.example.com:8443/\n  curl -s localhost:{}/meshes/default/meshgateways   # zone-1's synced copy\n  curl -s localhost:5680/metrics | grep atoll_\n  ./target/debug/atollctl --api-address http://localhost:{} generate dataplane-token --mesh default --name web-1 --tag kuma.io/service=web   # a token for a new sidecar\n\nThe admin token (a user token for mesh-system:admin) and certificates: {}\nPress Ctrl-C to stop.",
        cert_file.display(),
        zones[0].http_port,
        zones[0].http_port,
        global.work_dir().display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut global = global;
    while !stop.load(Ordering::SeqCst) {
        global.process.check_alive()?;
        for zone in &mut zones {
            zone.process.check_alive()?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    step("stopping");
    // Data planes first, so they deregister from a zone that is still up.
    for mut dp in dataplanes.into_iter().chain(std::iter::once(gateway)) {
        dp.process.terminate(Duration::from_secs(10));
    }
    drop(backends);
    for mut zone in zones {
        zone.process.terminate(Duration::from_secs(10));
    }
    global.process.terminate(Duration::from_secs(10));
    Ok(())
}
