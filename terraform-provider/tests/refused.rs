//! A delete the API refuses fails the apply with the API's reason, and the resource stays in
//! state (nothing is forgotten that still exists).

mod common;

use atoll_e2e::global::{Global, GlobalOptions};
use common::{Workspace, get};

#[test]
fn a_delete_the_api_refuses_fails_with_its_reason() {
    let global = Global::start(GlobalOptions::default()).unwrap();
    let ws = Workspace::new(&global);
    let (status, ca) = get(&global, "/globalsecrets/atoll-kds-ca");
    assert_eq!(status, 200, "{ca}");
    let data = ca["data"].as_str().unwrap();
    ws.write(&format!(
        "resource \"atoll_global_secret\" \"kds_ca\" {{\n  name = \"atoll-kds-ca\"\n  data = \"{data}\"\n}}\n"
    ));
    let run = ws.run(&[
        "import",
        "-input=false",
        "atoll_global_secret.kds_ca",
        "atoll-kds-ca",
    ]);
    assert_eq!(run.code, 0, "{}", run.output());
    ws.assert_empty_plan("after importing the KDS CA");

    ws.write("");
    let run = ws.run(&["apply", "-auto-approve", "-input=false"]);
    assert_eq!(run.code, 1, "the API refuses:\n{}", run.output());
    assert!(
        run.stderr
            .contains("managed by the control plane and cannot be changed or deleted"),
        "the API's reason is shown:\n{}",
        run.stderr
    );
    assert_eq!(get(&global, "/globalsecrets/atoll-kds-ca").0, 200);
    let state = ws.run(&["state", "list"]);
    assert!(
        state.stdout.contains("atoll_global_secret.kds_ca"),
        "{}",
        state.output()
    );
}
