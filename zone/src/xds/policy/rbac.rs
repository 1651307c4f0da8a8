//! MeshTrafficPermission as Envoy RBAC on an inbound: callers are known by the SPIFFE
//! identity of their mesh certificate (`spiffe://<mesh>/<service>`), so permissions hold for
//! callers in other zones too (mesh mTLS is end to end through the ingress). With no
//! permission at all, everything is denied (Kuma 2.x).

use std::collections::{BTreeMap, HashMap};

use atoll_model::types::PermissionAction;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac, permission, principal, rbac,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};

use crate::xds::tls::spiffe_id;

/// What the permissions say for one inbound.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Permissions {
    /// For callers no entry names: the `Mesh` entries' action, if any.
    pub default: Option<PermissionAction>,
    /// Per caller service.
    pub services: BTreeMap<String, PermissionAction>,
}

fn allows(action: &PermissionAction) -> bool {
    matches!(
        action,
        PermissionAction::Allow | PermissionAction::AllowWithShadowDeny
    )
}

fn identity(mesh: &str, service: &str) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Authenticated(
            principal::Authenticated {
                principal_name: Some(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(spiffe_id(
                        mesh, service,
                    ))),
                    ..Default::default()
                }),
            },
        )),
    }
}

fn any_of(ids: Vec<Principal>) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::OrIds(principal::Set { ids })),
    }
}

fn rules(action: rbac::Action, principals: Vec<Principal>) -> Rbac {
    let mut policies = HashMap::new();
    if !principals.is_empty() {
        policies.insert(
            "mesh-traffic-permission".to_string(),
            Policy {
                permissions: vec![Permission {
                    rule: Some(permission::Rule::Any(true)),
                }],
                principals,
                ..Default::default()
            },
        );
    }
    Rbac {
        action: action as i32,
        policies,
        ..Default::default()
    }
}

/// The enforced rules and, when some action is AllowWithShadowDeny, the shadow rules that
/// record what a Deny would have refused.
pub fn rbac(mesh: &str, permissions: &Permissions) -> (Rbac, Option<Rbac>) {
    let ids = |wanted: &dyn Fn(&PermissionAction) -> bool| -> Vec<Principal> {
        permissions
            .services
            .iter()
            .filter(|(_, a)| wanted(a))
            .map(|(s, _)| identity(mesh, s))
            .collect()
    };
    let enforced = if permissions.default.as_ref().is_some_and(allows) {
        // Everyone but the callers denied by name.
        let denied = ids(&|a| !allows(a));
        if denied.is_empty() {
            rules(
                rbac::Action::Allow,
                vec![Principal {
                    identifier: Some(principal::Identifier::Any(true)),
                }],
            )
        } else {
            rules(rbac::Action::Deny, vec![any_of(denied)])
        }
    } else {
        // Only the callers allowed by name (none: everything is refused).
        rules(rbac::Action::Allow, ids(&allows))
    };
    let shadowed: Vec<Principal> =
        if permissions.default == Some(PermissionAction::AllowWithShadowDeny) {
            vec![Principal {
                identifier: Some(principal::Identifier::Any(true)),
            }]
        } else {
            ids(&|a| *a == PermissionAction::AllowWithShadowDeny)
        };
    let shadow = (!shadowed.is_empty()).then(|| rules(rbac::Action::Deny, shadowed));
    (enforced, shadow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_all_but_one_becomes_a_deny_list_and_nothing_allowed_denies_all() {
        let mut p = Permissions {
            default: Some(PermissionAction::Allow),
            services: BTreeMap::from([("web".to_string(), PermissionAction::Deny)]),
        };
        let (rules, shadow) = rbac("m", &p);
        assert_eq!(rules.action, rbac::Action::Deny as i32);
        assert!(format!("{rules:?}").contains("spiffe://m/web"));
        assert!(shadow.is_none());
        p.default = None;
        p.services.clear();
        let (rules, _) = rbac("m", &p);
        assert_eq!(rules.action, rbac::Action::Allow as i32);
        assert!(
            rules.policies.is_empty(),
            "an ALLOW RBAC without policies refuses all"
        );
        p.services
            .insert("api".into(), PermissionAction::AllowWithShadowDeny);
        let (rules, shadow) = rbac("m", &p);
        assert!(format!("{rules:?}").contains("spiffe://m/api"));
        assert!(format!("{shadow:?}").contains("spiffe://m/api"));
    }
}
