//! The web GUI in a real browser (Debian's chromium, headless): against a global with two
//! zones, data planes and a gateway, the page shows the zones online, the data plane counts
//! and the gateway's listeners, and turns a stopped zone offline without a reload.
//! `ATOLL_GUI_SCREENSHOTS=DIR` keeps the screenshots (the docs' come from there).

use std::path::PathBuf;
use std::time::Duration;

use atoll_e2e::backend::Backend;
use atoll_e2e::browser::Browser;
use atoll_e2e::dataplane::{Dataplane, edge_gateway_yaml};
use atoll_e2e::free_port;
use atoll_e2e::global::{Global, GlobalOptions};
use atoll_e2e::zone::{Zone, ZoneOptions, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn the_gui_shows_zones_data_planes_and_gateways_and_follows_a_zone_going_offline() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let listener = free_port().unwrap();
    let edge = edge_gateway_yaml(listener);
    global
        .apply(&format!("{edge}    hostname: shop.example\n"))
        .unwrap();
    let zone1 = Zone::start("zone-1", &global, ZoneOptions::default()).unwrap();
    let mut zone2 = Zone::start("zone-2", &global, ZoneOptions::default()).unwrap();
    for zone in [&zone1, &zone2] {
        zone.wait_for("/meshes/default/meshgateways/edge", DEADLINE)
            .unwrap();
    }
    let app = Backend::start("app").unwrap();
    let (_web, _) =
        Dataplane::start_sidecar(&zone1, "default", "web-1", "web", app.port, &[], &[]).unwrap();
    let (_api, _) =
        Dataplane::start_sidecar(&zone2, "default", "api-1", "api", app.port, &[], &[]).unwrap();
    let _edge = Dataplane::start_gateway(&zone1, "default", "edge-1", "edge").unwrap();

    let shots = std::env::var_os("ATOLL_GUI_SCREENSHOTS").map(PathBuf::from);
    let scratch = tempfile::tempdir().unwrap();
    let shot = |name: &str| shots.clone().unwrap_or(scratch.path().into()).join(name);
    let base = format!("http://127.0.0.1:{}/gui", global.http_port);
    let mut browser = Browser::open(&format!("{base}#overview"), (1280, 720)).unwrap();
    let mut text = String::new();
    eventually(
        "the overview: two zones and three data planes online",
        DEADLINE,
        || {
            text = browser.text();
            text.contains("Zones online\n2 / 2")
                && text.contains("Data planes online\n3 / 3")
                && text.contains("Gateways\n1")
                && text.contains("zone-1")
                && text.contains("zone-2")
        },
    )
    .unwrap_or_else(|e| panic!("{e}:\n{text}\n{}", browser.process.log_tail(20)));
    browser.screenshot(&shot("gui-overview.png")).unwrap();

    browser.navigate(&format!("{base}#gateways")).unwrap();
    eventually("the gateway's listener and mesh", DEADLINE, || {
        text = browser.text();
        text.contains("default / edge") && text.contains(&format!("HTTP :{listener} shop.example"))
    })
    .unwrap_or_else(|e| panic!("{e}:\n{text}"));
    browser.navigate(&format!("{base}#dataplanes")).unwrap();
    eventually("each data plane with its zone", DEADLINE, || {
        text = browser.text();
        [
            "zone-1.web-1",
            "zone-2.api-1",
            "zone-1.edge-1",
            "gateway",
            "sidecar",
        ]
        .iter()
        .all(|w| text.contains(w))
    })
    .unwrap_or_else(|e| panic!("{e}:\n{text}"));
    browser.screenshot(&shot("gui-dataplanes.png")).unwrap();

    // Stopping zone-2 turns it offline on the page, which was not reloaded.
    browser.navigate(&format!("{base}#overview")).unwrap();
    let marker = browser
        .eval("window.atollMarker = 'same page'; window.atollMarker")
        .unwrap();
    assert_eq!(marker, "same page");
    zone2.process.kill();
    eventually("zone-2 offline on the page", DEADLINE, || {
        text = browser.text();
        text.contains("Zones online\n1 / 2")
            && text.contains("Offline")
            && text.contains("Data planes online\n2 / 3")
    })
    .unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(
        browser.eval("window.atollMarker").unwrap(),
        "same page",
        "updated without a reload"
    );
    browser.screenshot(&shot("gui-zone-offline.png")).unwrap();
    assert!(shot("gui-zone-offline.png").exists());
}
