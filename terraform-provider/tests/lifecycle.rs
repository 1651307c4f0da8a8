//! The provider through the real `terraform` CLI against a real global: every resource type
//! created, an empty second plan, an in-place update, a removal, an import, drift, a stale
//! saved plan refused by the API's ETag, an invalid port failing the plan with its field
//! path, and a destroy that leaves the store as it was.

mod common;

use atoll_e2e::global::{Global, GlobalOptions};
use common::{Workspace, get, send};
use serde_json::{Value, json};

const MESH: &str = r#"
resource "atoll_mesh" "demo" {
  name   = "tf-demo"
  labels = { team = "platform" }
  # The API leaves `false` out of what it stores: the plan stays empty all the same.
  routing = {
    zoneEgress                 = false
    localityAwareLoadBalancing = true
  }
}
"#;

fn gateway(port: u32) -> String {
    format!(
        r#"
resource "atoll_mesh_gateway" "edge" {{
  mesh = atoll_mesh.demo.name
  name = "edge"
  selectors = [{{ match = {{ "kuma.io/service" = "edge" }} }}]
  conf = {{
    listeners = [{{ port = {port}, protocol = "HTTP", hostname = "foo.example.com" }}]
  }}
}}
"#
    )
}

const ROUTES: &str = r#"
resource "atoll_mesh_http_route" "foo" {
  mesh = atoll_mesh.demo.name
  name = "foo-routes"
  spec = {
    targetRef = { kind = "MeshGateway", name = atoll_mesh_gateway.edge.name }
    to = [{
      targetRef = { kind = "Mesh" }
      hostnames = ["foo.example.com"]
      rules = [{
        matches = [{ path = { type = "PathPrefix", value = "/" } }]
        default = { backendRefs = [{ kind = "MeshService", name = "foo" }] }
      }]
    }]
  }
}
"#;

const TCP_ROUTE: &str = r#"
resource "atoll_mesh_tcp_route" "redis" {
  mesh = atoll_mesh.demo.name
  name = "redis-route"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "redis" }
      rules = [{ default = { backendRefs = [{ kind = "MeshService", name = "redis-v2", port = 6379 }] } }]
    }]
  }
}
"#;

const OTHERS: &str = r#"
resource "atoll_hostname_generator" "ext" {
  name = "tf-ext"
  spec = {
    selector = { meshExternalService = { matchLabels = { "kuma.io/origin" = "global" } } }
    template = "{{ .DisplayName }}.extsvc.tf.local"
  }
}

resource "atoll_mesh_external_service" "httpbin" {
  mesh = atoll_mesh.demo.name
  name = "httpbin"
  spec = {
    match     = { type = "HostnameGenerator", port = 443, protocol = "http" }
    endpoints = [{ address = "httpbin.org", port = 443 }]
    tls       = { enabled = true }
  }
}

resource "atoll_secret" "cert" {
  mesh = atoll_mesh.demo.name
  name = "tf-secret"
  data = base64encode("hello")
}

resource "atoll_global_secret" "shared" {
  name = "tf-global-secret"
  data = base64encode("world")
}

resource "atoll_mesh_traffic_permission" "allow" {
  mesh = atoll_mesh.demo.name
  name = "tf-allow"
  spec = {
    targetRef = { kind = "Mesh" }
    from      = [{ targetRef = { kind = "Mesh" }, default = { action = "Allow" } }]
  }
}

resource "atoll_mesh_timeout" "slow" {
  mesh = atoll_mesh.demo.name
  name = "tf-timeout"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "slow" }
      default   = { connectionTimeout = "2s", http = { requestTimeout = "500ms" } }
    }]
  }
}

resource "atoll_mesh_retry" "flaky" {
  mesh = atoll_mesh.demo.name
  name = "tf-retry"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "flaky" }
      default   = { http = { numRetries = 3, perTryTimeout = "1s" } }
    }]
  }
}

resource "atoll_mesh_circuit_breaker" "backend" {
  mesh = atoll_mesh.demo.name
  name = "tf-breaker"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "backend" }
      default   = { connectionLimits = { maxConnections = 100 } }
    }]
  }
}

resource "atoll_mesh_health_check" "backend" {
  mesh = atoll_mesh.demo.name
  name = "tf-health"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "backend" }
      default   = { interval = "10s", timeout = "2s", unhealthyThreshold = 3, healthyThreshold = 1, http = { path = "/health" } }
    }]
  }
}

resource "atoll_mesh_rate_limit" "backend" {
  mesh = atoll_mesh.demo.name
  name = "tf-limit"
  spec = {
    targetRef = { kind = "MeshService", name = "backend" }
    from = [{
      targetRef = { kind = "Mesh" }
      default   = { local = { http = { requestRate = { num = 100, interval = "1m" } } } }
    }]
  }
}

resource "atoll_mesh_fault_injection" "backend" {
  mesh = atoll_mesh.demo.name
  name = "tf-faults"
  spec = {
    targetRef = { kind = "MeshService", name = "backend" }
    from = [{
      targetRef = { kind = "Mesh" }
      default   = { http = [{ abort = { httpStatus = 503, percentage = "2.5" } }] }
    }]
  }
}

resource "atoll_mesh_access_log" "logs" {
  mesh = atoll_mesh.demo.name
  name = "tf-logs"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "Mesh" }
      default   = { backends = [{ file = { path = "/var/log/atoll/outbound.log" } }] }
    }]
  }
}

resource "atoll_mesh_load_balancing_strategy" "backend" {
  mesh = atoll_mesh.demo.name
  name = "tf-balancing"
  spec = {
    targetRef = { kind = "Mesh" }
    to = [{
      targetRef = { kind = "MeshService", name = "backend" }
      default   = { localityAwareness = { localZone = { affinityTags = [{ key = "rack" }] } } }
    }]
  }
}

resource "atoll_mesh_metric" "metrics" {
  mesh = atoll_mesh.demo.name
  name = "tf-metrics"
  spec = {
    targetRef = { kind = "Mesh" }
    default   = { backends = [{ type = "Prometheus", prometheus = { port = 5670, path = "/metrics" } }] }
  }
}

resource "atoll_zone" "east" {
  name = "tf-east"
}

resource "atoll_dataplane_token" "web" {
  mesh = atoll_mesh.demo.name
  name = "web-1"
}

data "atoll_zones" "all" {
  depends_on = [atoll_zone.east]
}

data "atoll_mesh" "demo" {
  name = atoll_mesh.demo.name
}

output "zone_names" {
  value = [for z in data.atoll_zones.all.zones : z.name]
}

output "mesh_routing" {
  value = data.atoll_mesh.demo.routing
}
"#;

/// Everything the store holds that a user can write, by API path (what destroy must restore).
fn snapshot(global: &Global) -> Vec<String> {
    let mut paths = Vec::new();
    let (_, meshes) = get(global, "/meshes");
    for plural in ["meshes", "zones", "hostnamegenerators", "globalsecrets"] {
        let (status, list) = get(global, &format!("/{plural}?size=1000"));
        assert_eq!(status, 200, "{plural}: {list}");
        for item in list["items"].as_array().unwrap() {
            paths.push(format!("/{plural}/{}", item["name"].as_str().unwrap()));
        }
    }
    for mesh in meshes["items"].as_array().unwrap() {
        let mesh = mesh["name"].as_str().unwrap();
        for plural in [
            "meshgateways",
            "meshhttproutes",
            "meshtcproutes",
            "meshexternalservices",
            "secrets",
            "meshtrafficpermissions",
            "meshtimeouts",
            "meshretries",
            "meshcircuitbreakers",
            "meshhealthchecks",
            "meshratelimits",
            "meshfaultinjections",
            "meshaccesslogs",
            "meshloadbalancingstrategies",
            "meshmetrics",
        ] {
            let (_, list) = get(global, &format!("/meshes/{mesh}/{plural}?size=1000"));
            for item in list["items"].as_array().unwrap() {
                paths.push(format!(
                    "/meshes/{mesh}/{plural}/{}",
                    item["name"].as_str().unwrap()
                ));
            }
        }
    }
    paths.sort();
    paths
}

fn config(port: u32, with_tcp_route: bool, extra: &str) -> String {
    let tcp = if with_tcp_route { TCP_ROUTE } else { "" };
    format!("{MESH}{}{ROUTES}{tcp}{OTHERS}{extra}", gateway(port))
}

#[test]
fn terraform_manages_every_resource_type_through_the_api() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let before = snapshot(&global);
    let ws = Workspace::new(&global);

    // An invalid listener port fails the plan, naming the field the API names.
    ws.write(&config(70000, true, ""));
    let run = ws.plan();
    assert_eq!(run.code, 1, "the plan must fail:\n{}", run.output());
    assert!(
        run.stderr.contains("conf.listeners[0].port"),
        "the error names the field path:\n{}",
        run.stderr
    );
    assert_eq!(snapshot(&global), before, "a failed plan writes nothing");

    // Apply creates every type.
    ws.write(&config(8080, true, ""));
    let run = ws.apply();
    assert!(
        run.stdout
            .contains("Apply complete! Resources: 20 added, 0 changed, 0 destroyed"),
        "{}",
        run.stdout
    );
    for path in [
        "/meshes/tf-demo",
        "/meshes/tf-demo/meshgateways/edge",
        "/meshes/tf-demo/meshhttproutes/foo-routes",
        "/meshes/tf-demo/meshtcproutes/redis-route",
        "/meshes/tf-demo/meshexternalservices/httpbin",
        "/hostnamegenerators/tf-ext",
        "/meshes/tf-demo/secrets/tf-secret",
        "/globalsecrets/tf-global-secret",
        "/meshes/tf-demo/meshtrafficpermissions/tf-allow",
        "/meshes/tf-demo/meshtimeouts/tf-timeout",
        "/meshes/tf-demo/meshretries/tf-retry",
        "/meshes/tf-demo/meshcircuitbreakers/tf-breaker",
        "/meshes/tf-demo/meshhealthchecks/tf-health",
        "/meshes/tf-demo/meshratelimits/tf-limit",
        "/meshes/tf-demo/meshfaultinjections/tf-faults",
        "/meshes/tf-demo/meshaccesslogs/tf-logs",
        "/meshes/tf-demo/meshloadbalancingstrategies/tf-balancing",
        "/meshes/tf-demo/meshmetrics/tf-metrics",
        "/zones/tf-east",
    ] {
        assert_eq!(get(&global, path).0, 200, "{path} exists after apply");
    }
    let (_, mesh) = get(&global, "/meshes/tf-demo");
    assert_eq!(mesh["labels"]["team"], "platform");
    assert_eq!(mesh["routing"], json!({"localityAwareLoadBalancing": true}));
    let (_, secret) = get(&global, "/meshes/tf-demo/secrets/tf-secret");
    assert_eq!(secret["data"], "aGVsbG8=");
    let outputs = ws.outputs();
    assert!(
        outputs["zone_names"]["value"]
            .as_array()
            .unwrap()
            .contains(&json!("tf-east")),
        "{outputs}"
    );
    assert_eq!(
        outputs["mesh_routing"]["value"]["localityAwareLoadBalancing"], true,
        "{outputs}"
    );
    let state = ws.run(&["show", "-json"]);
    let state: Value = serde_json::from_str(&state.stdout).unwrap();
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .clone();
    let token = resources
        .iter()
        .find(|r| r["type"] == "atoll_dataplane_token")
        .unwrap();
    assert_eq!(
        token["values"]["token"]
            .as_str()
            .unwrap()
            .split('.')
            .count(),
        3,
        "a JWT"
    );
    let zone = resources
        .iter()
        .find(|r| r["type"] == "atoll_zone")
        .unwrap();
    assert!(
        zone["values"]["certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        zone["sensitive_values"]["key"].as_bool().unwrap(),
        "the key is sensitive"
    );

    ws.assert_empty_plan("right after apply");

    // An edited attribute is updated in place (same creation time, new port).
    let (_, created) = get(&global, "/meshes/tf-demo/meshgateways/edge");
    ws.write(&config(8081, true, ""));
    let run = ws.apply();
    assert!(
        run.stdout.contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        run.stdout
    );
    let (_, updated) = get(&global, "/meshes/tf-demo/meshgateways/edge");
    assert_eq!(updated["conf"]["listeners"][0]["port"], 8081);
    assert_eq!(
        updated["creationTime"], created["creationTime"],
        "updated in place"
    );
    ws.assert_empty_plan("after an update");

    // A removed block deletes its resource.
    ws.write(&config(8081, false, ""));
    let run = ws.apply();
    assert!(
        run.stdout.contains("0 added, 0 changed, 1 destroyed"),
        "{}",
        run.stdout
    );
    assert_eq!(
        get(&global, "/meshes/tf-demo/meshtcproutes/redis-route").0,
        404
    );

    // Import: a resource made through the API comes under management with an empty plan.
    let timeout = json!({
        "type": "MeshTimeout", "mesh": "tf-demo", "name": "made-by-hand",
        "spec": {"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "1h"}}]},
    });
    let (status, body) = send(
        &global,
        "PUT",
        "/meshes/tf-demo/meshtimeouts/made-by-hand",
        Some(&timeout),
    );
    assert_eq!(status, 201, "{body}");
    let imported = r#"
resource "atoll_mesh_timeout" "by_hand" {
  mesh = "tf-demo"
  name = "made-by-hand"
  spec = {
    targetRef = { kind = "Mesh" }
    to        = [{ targetRef = { kind = "Mesh" }, default = { idleTimeout = "1h" } }]
  }
}
"#;
    ws.write(&config(8081, false, imported));
    let run = ws.run(&[
        "import",
        "-input=false",
        "atoll_mesh_timeout.by_hand",
        "tf-demo/made-by-hand",
    ]);
    assert_eq!(run.code, 0, "import failed:\n{}", run.output());
    ws.assert_empty_plan("after an import");
    let run = ws.run(&[
        "import",
        "-input=false",
        "atoll_hostname_generator.ext",
        "tf-ext",
    ]);
    assert_ne!(run.code, 0, "importing what is already managed is refused");

    // Drift: a change through the API shows in the plan, and apply puts the config back.
    let mut drifted = updated.clone();
    drifted["conf"]["listeners"][0]["port"] = json!(9090);
    let (status, body) = send(
        &global,
        "PUT",
        "/meshes/tf-demo/meshgateways/edge",
        Some(&drifted),
    );
    assert_eq!(status, 200, "{body}");
    let run = ws.plan();
    assert_eq!(run.code, 2, "drift is a change:\n{}", run.output());
    assert!(
        run.stdout.contains("port     = 9090 -> 8081"),
        "the plan shows the API's value going back to the configuration's:\n{}",
        run.stdout
    );

    // A saved plan applied after someone else's write is refused by the ETag, not applied
    // over their change.
    let run = ws.run(&["plan", "-input=false", "-out=drift.tfplan"]);
    assert_eq!(run.code, 0, "{}", run.output());
    drifted["conf"]["listeners"][0]["port"] = json!(9191);
    assert_eq!(
        send(
            &global,
            "PUT",
            "/meshes/tf-demo/meshgateways/edge",
            Some(&drifted)
        )
        .0,
        200
    );
    let run = ws.run(&["apply", "-input=false", "drift.tfplan"]);
    assert_ne!(
        run.code,
        0,
        "a stale plan must not overwrite:\n{}",
        run.output()
    );
    assert!(
        run.stderr.contains("409") && run.stderr.contains("changed since Terraform last read it"),
        "{}",
        run.stderr
    );
    let (_, current) = get(&global, "/meshes/tf-demo/meshgateways/edge");
    assert_eq!(
        current["conf"]["listeners"][0]["port"], 9191,
        "the concurrent change survives"
    );
    ws.apply();
    let (_, current) = get(&global, "/meshes/tf-demo/meshgateways/edge");
    assert_eq!(
        current["conf"]["listeners"][0]["port"], 8081,
        "apply restores the configuration"
    );
    ws.assert_empty_plan("after drift was corrected");

    // Destroy leaves the store as it was.
    let run = ws.run(&["destroy", "-auto-approve", "-input=false"]);
    assert_eq!(run.code, 0, "destroy failed:\n{}", run.output());
    assert_eq!(snapshot(&global), before, "destroy restores the store");
}
