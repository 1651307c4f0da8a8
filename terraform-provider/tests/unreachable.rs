//! A plan made before the global answers (the same run deploys it): specs cannot be checked
//! yet, so the plan warns and goes on instead of failing; `terraform validate` needs no API.

mod common;

use common::Workspace;

#[test]
fn a_plan_without_a_reachable_api_warns_instead_of_failing() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let ws = Workspace::for_api(&format!("http://127.0.0.1:{port}"), "unused");
    ws.write(
        r#"
resource "atoll_mesh" "demo" {
  name = "later"
}

resource "atoll_mesh_gateway" "edge" {
  mesh = atoll_mesh.demo.name
  name = "edge"
  conf = { listeners = [{ port = 8080, protocol = "HTTP" }] }
}
"#,
    );
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.output());
    let run = ws.plan();
    assert_eq!(run.code, 2, "a plan with two creations:\n{}", run.output());
    assert!(run.stdout.contains("Plan: 2 to add"), "{}", run.stdout);
    assert!(
        run.output()
            .contains("MeshGateway not validated at plan time"),
        "{}",
        run.output()
    );
}
