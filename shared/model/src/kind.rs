//! The resource types Atoll knows, and the facts about each that routing, storage and sync
//! need: its name on the wire, its REST plural, where it lives and who may write it.

use std::fmt;
use std::str::FromStr;

/// Whether a resource belongs to a mesh or to the control plane as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mesh,
    Global,
}

/// Which control plane is the source of truth for a type (SPEC.md, "Resources").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Written on the global, synced down to every zone.
    Global,
    /// Written in a zone, synced up to the global.
    Zone,
    /// Written on the global (synced down to every zone) or in a zone (synced up to the
    /// global, and in force in that zone only): policies, as in Kuma 2.x.
    Either,
    /// Written by the control plane itself (insights); read-only through the API.
    ControlPlane,
}

/// How the document lays out a resource's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Kuma's original types: content fields sit beside `type`/`name`/`mesh`.
    Inline,
    /// Kuma's newer policy-style types: content sits under `spec:` (and `status:`).
    Spec,
}

macro_rules! kinds {
    ($($variant:ident = $name:literal, $plural:literal, $scope:ident, $owner:ident, $layout:ident;)+) => {
        /// A resource type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind { $($variant,)+ }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)+];

            /// The `type:` value of a document, e.g. `MeshHTTPRoute`.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name,)+ }
            }

            /// The REST API's collection segment, e.g. `meshhttproutes`.
            pub fn plural(self) -> &'static str {
                match self { $(Kind::$variant => $plural,)+ }
            }

            pub fn scope(self) -> Scope {
                match self { $(Kind::$variant => Scope::$scope,)+ }
            }

            pub fn owner(self) -> Owner {
                match self { $(Kind::$variant => Owner::$owner,)+ }
            }

            pub fn layout(self) -> Layout {
                match self { $(Kind::$variant => Layout::$layout,)+ }
            }

            pub fn from_plural(plural: &str) -> Option<Kind> {
                match plural { $($plural => Some(Kind::$variant),)+ _ => None }
            }
        }

        impl FromStr for Kind {
            type Err = UnknownKind;

            fn from_str(name: &str) -> Result<Self, UnknownKind> {
                match name {
                    $($name => Ok(Kind::$variant),)+
                    other => Err(UnknownKind(other.to_string())),
                }
            }
        }
    };
}

kinds! {
    Mesh = "Mesh", "meshes", Global, Global, Inline;
    MeshGateway = "MeshGateway", "meshgateways", Mesh, Global, Inline;
    MeshHttpRoute = "MeshHTTPRoute", "meshhttproutes", Mesh, Global, Spec;
    MeshTcpRoute = "MeshTCPRoute", "meshtcproutes", Mesh, Global, Spec;
    MeshExternalService = "MeshExternalService", "meshexternalservices", Mesh, Global, Spec;
    MeshTrafficPermission = "MeshTrafficPermission", "meshtrafficpermissions", Mesh, Either, Spec;
    MeshTimeout = "MeshTimeout", "meshtimeouts", Mesh, Either, Spec;
    MeshRetry = "MeshRetry", "meshretries", Mesh, Either, Spec;
    MeshCircuitBreaker = "MeshCircuitBreaker", "meshcircuitbreakers", Mesh, Either, Spec;
    MeshHealthCheck = "MeshHealthCheck", "meshhealthchecks", Mesh, Either, Spec;
    MeshRateLimit = "MeshRateLimit", "meshratelimits", Mesh, Either, Spec;
    MeshFaultInjection = "MeshFaultInjection", "meshfaultinjections", Mesh, Either, Spec;
    MeshAccessLog = "MeshAccessLog", "meshaccesslogs", Mesh, Either, Spec;
    MeshLoadBalancingStrategy = "MeshLoadBalancingStrategy", "meshloadbalancingstrategies", Mesh, Either, Spec;
    MeshMetric = "MeshMetric", "meshmetrics", Mesh, Either, Spec;
    HostnameGenerator = "HostnameGenerator", "hostnamegenerators", Global, Global, Spec;
    Secret = "Secret", "secrets", Mesh, Global, Inline;
    GlobalSecret = "GlobalSecret", "globalsecrets", Global, Global, Inline;
    Dataplane = "Dataplane", "dataplanes", Mesh, Zone, Inline;
    ZoneIngress = "ZoneIngress", "zoneingresses", Global, Zone, Inline;
    ZoneEgress = "ZoneEgress", "zoneegresses", Global, Zone, Inline;
    Zone = "Zone", "zones", Global, Global, Inline;
    ZoneInsight = "ZoneInsight", "zoneinsights", Global, ControlPlane, Inline;
    DataplaneInsight = "DataplaneInsight", "dataplaneinsights", Mesh, ControlPlane, Inline;
}

/// The policy types (Kuma 2.x's `targetRef` policies).
pub const POLICIES: [Kind; 10] = [
    Kind::MeshTrafficPermission,
    Kind::MeshTimeout,
    Kind::MeshRetry,
    Kind::MeshCircuitBreaker,
    Kind::MeshHealthCheck,
    Kind::MeshRateLimit,
    Kind::MeshFaultInjection,
    Kind::MeshAccessLog,
    Kind::MeshLoadBalancingStrategy,
    Kind::MeshMetric,
];

/// `base` followed by every policy type, for lists of the types a component handles;
/// `M` must be `N + POLICIES.len()` (checked when the constant is built).
pub const fn with_policies<const N: usize, const M: usize>(base: [Kind; N]) -> [Kind; M] {
    assert!(
        M == N + POLICIES.len(),
        "M must be N plus the number of policy types"
    );
    let mut out = [Kind::Mesh; M];
    let mut i = 0;
    while i < N {
        out[i] = base[i];
        i += 1;
    }
    let mut j = 0;
    while j < POLICIES.len() {
        out[N + j] = POLICIES[j];
        j += 1;
    }
    out
}

impl Kind {
    /// Whether this is a policy type.
    pub fn is_policy(self) -> bool {
        POLICIES.contains(&self)
    }

    /// A type as a user may spell it on a command line: its name or plural, any case.
    pub fn lookup(text: &str) -> Option<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(text) || k.plural().eq_ignore_ascii_case(text))
    }

    /// The REST API path of one resource of this type (SPEC.md, "REST API").
    pub fn api_path(self, mesh: Option<&str>, name: &str) -> String {
        match (self.scope(), mesh) {
            (Scope::Mesh, Some(mesh)) => format!("/meshes/{mesh}/{}/{name}", self.plural()),
            _ => format!("/{}/{name}", self.plural()),
        }
    }

    /// The REST API path listing this type, in one mesh or everywhere.
    pub fn api_list_path(self, mesh: Option<&str>) -> String {
        match (self.scope(), mesh) {
            (Scope::Mesh, Some(mesh)) => format!("/meshes/{mesh}/{}", self.plural()),
            _ => format!("/{}", self.plural()),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `type:` value that names no known resource type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource type {0:?}; known types: {known}", known = known_names())]
pub struct UnknownKind(pub String);

fn known_names() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_plurals_round_trip() {
        for &kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
            assert_eq!(Kind::from_plural(kind.plural()), Some(kind));
            assert_eq!(kind.plural(), kind.plural().to_lowercase());
        }
    }

    #[test]
    fn the_policy_types_are_those_written_on_either_side() {
        let either: Vec<Kind> = Kind::ALL
            .iter()
            .copied()
            .filter(|k| k.owner() == Owner::Either)
            .collect();
        assert_eq!(either, POLICIES);
        let listed: [Kind; 12] = with_policies([Kind::Mesh, Kind::Dataplane]);
        assert_eq!(&listed[2..], &POLICIES);
    }

    #[test]
    fn lookup_and_paths() {
        assert_eq!(Kind::lookup("meshgateway"), Some(Kind::MeshGateway));
        assert_eq!(Kind::lookup("MeshHTTPRoutes"), Some(Kind::MeshHttpRoute));
        assert_eq!(Kind::lookup("gateway"), None);
        assert_eq!(
            Kind::MeshGateway.api_path(Some("default"), "gw"),
            "/meshes/default/meshgateways/gw"
        );
        assert_eq!(Kind::Mesh.api_path(None, "default"), "/meshes/default");
        assert_eq!(Kind::Zone.api_list_path(Some("ignored")), "/zones");
        assert_eq!(Kind::Dataplane.api_list_path(None), "/dataplanes");
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let err = "MeshGateways".parse::<Kind>().unwrap_err();
        assert!(
            err.to_string().contains("MeshGateway, MeshHTTPRoute"),
            "{err}"
        );
    }
}
