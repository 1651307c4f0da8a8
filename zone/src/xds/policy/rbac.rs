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
    /// `rules[]`: callers by SPIFFE identity.
    pub identities: Identities,
}

/// SPIFFE ID matchers of MeshTrafficPermission `rules[]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identities {
    /// Refused whatever else allows them.
    pub deny: Vec<IdMatch>,
    pub allow: Vec<IdMatch>,
    /// Allowed, and recorded as a Deny would have refused them.
    pub allow_with_shadow_deny: Vec<IdMatch>,
}

/// One SPIFFE ID: the whole ID, or a prefix of it.
#[derive(Debug, Clone, PartialEq)]
pub enum IdMatch {
    Exact(String),
    Prefix(String),
}

impl Identities {
    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty() && self.allow_with_shadow_deny.is_empty()
    }
}

fn matching(id: &IdMatch) -> Principal {
    let pattern = match id {
        IdMatch::Exact(v) => string_matcher::MatchPattern::Exact(v.clone()),
        IdMatch::Prefix(v) => string_matcher::MatchPattern::Prefix(v.clone()),
    };
    Principal {
        identifier: Some(principal::Identifier::Authenticated(
            principal::Authenticated {
                principal_name: Some(StringMatcher {
                    match_pattern: Some(pattern),
                    ..Default::default()
                }),
            },
        )),
    }
}

fn anyone() -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Any(true)),
    }
}

fn not(id: Principal) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::NotId(Box::new(id))),
    }
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
/// record what a Deny would have refused. With `rules[]`, a caller is let in when `from[]`
/// or an allow matcher admits it and no deny matcher names it.
pub fn rbac(mesh: &str, permissions: &Permissions) -> (Rbac, Option<Rbac>) {
    if permissions.identities.is_empty() {
        return by_service(mesh, permissions);
    }
    let ids = &permissions.identities;
    let mut admitted: Vec<Principal> = Vec::new();
    if permissions.default.as_ref().is_some_and(allows) {
        let denied: Vec<Principal> = permissions
            .services
            .iter()
            .filter(|(_, a)| !allows(a))
            .map(|(s, _)| identity(mesh, s))
            .collect();
        admitted.push(if denied.is_empty() {
            anyone()
        } else {
            not(any_of(denied))
        });
    } else {
        admitted.extend(
            permissions
                .services
                .iter()
                .filter(|(_, a)| allows(a))
                .map(|(s, _)| identity(mesh, s)),
        );
    }
    admitted.extend(
        ids.allow
            .iter()
            .chain(&ids.allow_with_shadow_deny)
            .map(matching),
    );
    let principals = if admitted.is_empty() {
        Vec::new()
    } else if ids.deny.is_empty() {
        vec![any_of(admitted)]
    } else {
        vec![Principal {
            identifier: Some(principal::Identifier::AndIds(principal::Set {
                ids: vec![
                    any_of(admitted),
                    not(any_of(ids.deny.iter().map(matching).collect())),
                ],
            })),
        }]
    };
    let enforced = rules(rbac::Action::Allow, principals);
    let (_, by_name) = by_service(mesh, permissions);
    let mut shadowed: Vec<Principal> = ids.allow_with_shadow_deny.iter().map(matching).collect();
    if let Some(shadow) = by_name {
        shadowed.extend(shadow.policies.into_values().flat_map(|p| p.principals));
    }
    let shadow = (!shadowed.is_empty()).then(|| rules(rbac::Action::Deny, shadowed));
    (enforced, shadow)
}

/// [`rbac`] for `from[]` alone: callers by service.
fn by_service(mesh: &str, permissions: &Permissions) -> (Rbac, Option<Rbac>) {
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
            ..Default::default()
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

    #[test]
    fn identity_rules_deny_first_then_allow_anything_else_refused() {
        let p = Permissions {
            identities: Identities {
                deny: vec![IdMatch::Exact("spiffe://m/legacy".into())],
                allow: vec![IdMatch::Prefix("spiffe://m/".into())],
                allow_with_shadow_deny: vec![IdMatch::Exact("spiffe://m/batch".into())],
            },
            ..Default::default()
        };
        let (rules, shadow) = rbac("m", &p);
        assert_eq!(rules.action, rbac::Action::Allow as i32);
        let text = format!("{rules:?}");
        assert!(text.contains("AndIds") && text.contains("NotId"), "{text}");
        assert!(text.contains("Prefix(\"spiffe://m/\")"), "{text}");
        assert!(format!("{shadow:?}").contains("spiffe://m/batch"));
        // Only denials: nobody is admitted.
        let only_deny = Permissions {
            identities: Identities {
                deny: vec![IdMatch::Exact("spiffe://m/legacy".into())],
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(rbac("m", &only_deny).0.policies.is_empty());
        // A from[] allow-all combines with a deny matcher.
        let mixed = Permissions {
            default: Some(PermissionAction::Allow),
            ..only_deny
        };
        let text = format!("{:?}", rbac("m", &mixed).0);
        assert!(
            text.contains("Any(true)") && text.contains("spiffe://m/legacy"),
            "{text}"
        );
    }
}
