//! The soak in its short form, in the default test command (issue 17): 45 s of data planes
//! joining and leaving, routes and a gateway changing every second, and each of the five
//! faults of the rotation once, on the same code as the scheduled 10-minute run
//! (`cargo run --release -p atoll-e2e --bin soak`, `.ci/scheduled`).

use atoll_e2e::faults::soak::{self, SoakOptions};

#[test]
fn a_short_soak_holds_the_invariants_and_leaks_no_descriptor() {
    let report = soak::run(&SoakOptions::short()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", report.table());
    assert_eq!(report.faults.len(), 5, "not every fault came round");
    assert!(
        report.churn.joins > 0 && report.churn.leaves > 0,
        "no churn"
    );
    assert!(
        report.churn.config_changes > 0,
        "no route or gateway change"
    );
    assert!(report.cross.1 > 0 && report.local.1 > 0, "no traffic ran");
    let failures = report.failures();
    assert!(failures.is_empty(), "the soak failed:\n{failures:#?}");
}
