//! MeshTrafficPermission validation, `from[]` by caller service and `rules[]` by SPIFFE
//! identity: each rule rejects one document at its field path.

mod support;

use support::*;

const BY_IDENTITY: &str = r#"
type: MeshTrafficPermission
name: payments-callers
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: payments
  rules:
  - default:
      deny:
      - spiffeID:
          type: Exact
          value: spiffe://default/legacy
      allow:
      - spiffeID:
          type: Prefix
          value: spiffe://default/
      allowWithShadowDeny:
      - spiffeID:
          type: Exact
          value: spiffe://default/batch
"#;

const RULE: &str = "spec.rules[0].default";

#[test]
fn permissions_by_identity() {
    run_table(
        BY_IDENTITY,
        &[
            edit(
                "only a deny",
                |v| {
                    remove(v, &format!("{RULE}.allow"));
                    remove(v, &format!("{RULE}.allowWithShadowDeny"));
                },
                PASS,
            ),
            edit(
                "an empty rule",
                |v| set(v, RULE, json!({})),
                fail(RULE, "at least one of deny, allow, allowWithShadowDeny"),
            ),
            edit(
                "a matcher without spiffeID",
                |v| set(v, &format!("{RULE}.deny[0]"), json!({})),
                fail("spec.rules[0].default.deny[0].spiffeID", "must be set"),
            ),
            edit(
                "an unknown match type",
                |v| set(v, &format!("{RULE}.allow[0].spiffeID.type"), json!("Regex")),
                fail("spec.rules[0].default.allow[0].spiffeID.type", "Exact"),
            ),
            edit(
                "not a SPIFFE ID",
                |v| {
                    set(
                        v,
                        &format!("{RULE}.deny[0].spiffeID.value"),
                        json!("legacy"),
                    )
                },
                fail(
                    "spec.rules[0].default.deny[0].spiffeID.value",
                    "not a SPIFFE ID",
                ),
            ),
            edit(
                "rules beside from",
                |v| {
                    set(
                        v,
                        "spec.from",
                        json!([{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]),
                    )
                },
                fail("spec.rules", "cannot be combined with from[]"),
            ),
            edit(
                "neither rules nor from",
                |v| remove(v, "spec.rules"),
                fail("spec.from", "at least one entry"),
            ),
            edit(
                "an action where matchers go",
                |v| set(v, RULE, json!({"action": "Allow"})),
                fail(RULE, ""),
            ),
        ],
    );
}
