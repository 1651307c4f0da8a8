//! Who a caller is and what they may do: users with groups, and Kuma's static access control
//! (`KUMA_ACCESS_STATIC_*`), one rule per action naming the users and groups allowed.

/// Members of this group may do everything by default.
pub const ADMIN_GROUP: &str = "mesh-system:admin";
/// Every caller with a valid credential is in this group.
pub const AUTHENTICATED_GROUP: &str = "mesh-system:authenticated";
/// Every caller without a credential is in this group.
pub const UNAUTHENTICATED_GROUP: &str = "mesh-system:unauthenticated";
/// The name of callers without a credential.
pub const ANONYMOUS: &str = "mesh-system:anonymous";
/// The name of the admin credential's user.
pub const ADMIN_USER: &str = "mesh-system:admin";

/// A caller of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> Self {
        User {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
        }
    }

    /// An authenticated user: `groups` plus `mesh-system:authenticated`.
    pub fn authenticated(name: impl Into<String>, groups: &[String]) -> Self {
        let mut groups = groups.to_vec();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.into());
        }
        User {
            name: name.into(),
            groups,
        }
    }

    /// The admin: the admin token's user, or a trusted local or client-certificate caller.
    pub fn admin() -> Self {
        User::authenticated(ADMIN_USER, &[ADMIN_GROUP.to_string()])
    }

    pub fn is_anonymous(&self) -> bool {
        self.groups.iter().any(|g| g == UNAUTHENTICATED_GROUP)
    }
}

/// What the static rules govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Writing any resource (Kuma gates only secrets with it; Atoll gates every write).
    AdminResources,
    GenerateDataplaneToken,
    GenerateZoneToken,
    GenerateUserToken,
    /// Reading Secrets and GlobalSecrets, and private keys inside other resources.
    ViewSecrets,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::AdminResources,
        Action::GenerateDataplaneToken,
        Action::GenerateZoneToken,
        Action::GenerateUserToken,
        Action::ViewSecrets,
    ];

    /// The middle of the action's option names, `KUMA_ACCESS_STATIC_<…>_USERS|GROUPS`.
    pub fn option(self) -> &'static str {
        match self {
            Action::AdminResources => "ADMIN_RESOURCES",
            Action::GenerateDataplaneToken => "GENERATE_DP_TOKEN",
            Action::GenerateZoneToken => "GENERATE_ZONE_TOKEN",
            Action::GenerateUserToken => "GENERATE_USER_TOKEN",
            Action::ViewSecrets => "VIEW_SECRETS",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::AdminResources => "change resources",
            Action::GenerateDataplaneToken => "generate data plane tokens",
            Action::GenerateZoneToken => "generate zone tokens and zone certificates",
            Action::GenerateUserToken => "generate user tokens",
            Action::ViewSecrets => "read secrets",
        }
    }
}

/// Users and groups allowed one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Default for Rule {
    /// Kuma's default for every action: the admin user and the admin group.
    fn default() -> Self {
        Rule {
            users: vec![ADMIN_USER.into()],
            groups: vec![ADMIN_GROUP.into()],
        }
    }
}

/// The static access rules, one per action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAccess {
    rules: Vec<(Action, Rule)>,
}

impl Default for StaticAccess {
    fn default() -> Self {
        StaticAccess {
            rules: Action::ALL.iter().map(|a| (*a, Rule::default())).collect(),
        }
    }
}

impl StaticAccess {
    pub fn set(&mut self, action: Action, rule: Rule) {
        match self.rules.iter_mut().find(|(a, _)| *a == action) {
            Some((_, r)) => *r = rule,
            None => self.rules.push((action, rule)),
        }
    }

    pub fn rule(&self, action: Action) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, r)| r)
    }

    pub fn allows(&self, user: &User, action: Action) -> bool {
        self.rule(action).is_some_and(|rule| {
            rule.users.contains(&user.name) || rule.groups.iter().any(|g| user.groups.contains(g))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_the_admin_only() {
        let access = StaticAccess::default();
        for action in Action::ALL {
            assert!(access.allows(&User::admin(), action));
            assert!(!access.allows(&User::anonymous(), action));
            assert!(!access.allows(&User::authenticated("bob", &["viewers".into()]), action));
        }
    }

    #[test]
    fn rules_name_users_or_groups() {
        let mut access = StaticAccess::default();
        access.set(
            Action::GenerateDataplaneToken,
            Rule {
                users: vec!["ci".into()],
                groups: vec!["deployers".into()],
            },
        );
        let ci = User::authenticated("ci", &[]);
        let dev = User::authenticated("dev", &["deployers".into()]);
        assert!(access.allows(&ci, Action::GenerateDataplaneToken));
        assert!(access.allows(&dev, Action::GenerateDataplaneToken));
        assert!(!access.allows(&ci, Action::AdminResources));
        assert!(!access.allows(&User::admin(), Action::GenerateDataplaneToken));
        // Everyone, authenticated or not, through the special groups.
        access.set(
            Action::ViewSecrets,
            Rule {
                users: vec![],
                groups: vec![UNAUTHENTICATED_GROUP.into()],
            },
        );
        assert!(access.allows(&User::anonymous(), Action::ViewSecrets));
        assert!(
            User::authenticated("x", &[])
                .groups
                .contains(&AUTHENTICATED_GROUP.to_string())
        );
    }
}
