//! A zone control plane started with the certificate Terraform's `atoll_zone` holds connects
//! to the global and syncs; the provider here talks HTTPS with `ca_cert` and `token_file`
//! set in the provider block; a certificate inside its renewal window is re-issued.

mod common;

use std::time::Duration;

use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::zone::{Zone, ZoneCertificate, ZoneOptions, eventually};
use common::Workspace;

const CONFIG: &str = r#"
resource "atoll_mesh" "demo" {
  name = "tf-zone-demo"
}

resource "atoll_zone" "east" {
  name               = "east"
  renew_before_hours = var.renew_before_hours
}

variable "renew_before_hours" {
  type    = number
  default = 720
}

data "atoll_zones" "all" {
  depends_on = [atoll_zone.east]
}

output "certificate" {
  value     = atoll_zone.east.certificate
  sensitive = true
}

output "key" {
  value     = atoll_zone.east.key
  sensitive = true
}

output "ca" {
  value     = atoll_zone.east.ca_certificate
  sensitive = true
}

output "serial" {
  value = atoll_zone.east.serial
}

output "zones" {
  value = data.atoll_zones.all.zones
}
"#;

fn online(ws: &Workspace, zone: &str) -> bool {
    ws.apply();
    ws.outputs()["zones"]["value"]
        .as_array()
        .is_some_and(|zones| {
            zones
                .iter()
                .any(|z| z["name"] == zone && z["online"] == true)
        })
}

#[test]
fn a_zone_connects_with_the_certificate_from_atoll_zone() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let ws = Workspace::new(&global);
    let work = global.work_dir();
    let provider = format!(
        "  address    = \"{}\"\n  ca_cert    = \"{}\"\n  token_file = \"{}\"",
        global.https_api(),
        work.join("api-server-ca.crt").display(),
        work.join("admin-token").display()
    );
    ws.write_with_provider(&provider, CONFIG);
    ws.apply();
    let outputs = ws.outputs();
    let text = |name: &str| outputs[name]["value"].as_str().unwrap().to_string();
    assert!(outputs["certificate"]["sensitive"].as_bool().unwrap());
    let files = ZoneCertificate {
        cert: ws.path().join("east.crt"),
        key: ws.path().join("east.key"),
        ca: ws.path().join("kds-ca.crt"),
    };
    std::fs::write(&files.cert, text("certificate")).unwrap();
    std::fs::write(&files.key, text("key")).unwrap();
    std::fs::write(&files.ca, text("ca")).unwrap();
    assert_eq!(
        atoll_tls::verify_zone_certificate(&text("ca"), &text("certificate")).unwrap(),
        "east",
        "the certificate names the zone and chains to the KDS CA"
    );

    let zone = Zone::start(
        "east",
        &global,
        ZoneOptions {
            certificate: Some(files),
            ..Default::default()
        },
    )
    .unwrap();
    let synced = |path: &str| {
        atoll_e2e::process::http_request(zone.http_port, "GET", path, None)
            .is_ok_and(|(status, _)| status == 200)
    };
    eventually(
        "the zone to sync the mesh Terraform declared",
        Duration::from_secs(30),
        || synced("/meshes/tf-zone-demo"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", zone.log()));
    eventually(
        "atoll_zones to say the zone is online",
        Duration::from_secs(30),
        || online(&ws, "east"),
    )
    .unwrap();
    ws.assert_empty_plan("with the zone connected");

    // A renewal window longer than the certificate's life: the next plan re-issues it.
    let serial = text("serial");
    let run = ws.run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-var",
        "renew_before_hours=100000",
    ]);
    assert_eq!(run.code, 0, "{}", run.output());
    assert!(
        run.stdout.contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        run.stdout
    );
    let renewed = ws.outputs()["serial"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, serial, "a new certificate was issued");
    let run = ws.apply();
    assert!(
        run.stdout.contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        run.stdout
    );
    assert_eq!(
        ws.outputs()["serial"]["value"],
        renewed.as_str(),
        "back to the default window: no new certificate"
    );
    ws.assert_empty_plan("after the renewal");
}
