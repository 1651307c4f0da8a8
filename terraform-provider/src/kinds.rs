//! The resource types the provider manages through the generic resource: each maps a
//! Terraform type name to an API type, its path and the top-level fields of its YAML.

/// How a top-level YAML field is held in HCL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Any HCL value with the YAML's shape (`spec = { targetRef = { kind = "Mesh" } }`).
    Dynamic,
    String,
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The HCL attribute: Terraform allows only `[a-z0-9_]`, so camelCase becomes snake_case.
    pub hcl: &'static str,
    /// The YAML/JSON field.
    pub json: &'static str,
    pub ty: FieldType,
    pub sensitive: bool,
}

const fn dynamic(hcl: &'static str, json: &'static str) -> Field {
    Field {
        hcl,
        json,
        ty: FieldType::Dynamic,
        sensitive: false,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub type_name: &'static str,
    /// The API's type (`type:` in YAML).
    pub api_type: &'static str,
    pub plural: &'static str,
    /// Mesh-scoped types live under `/meshes/{mesh}/` and have a `mesh` attribute.
    pub in_mesh: bool,
    pub fields: &'static [Field],
    pub description: &'static str,
}

impl Kind {
    pub fn path(&self, mesh: Option<&str>, name: &str) -> String {
        match mesh {
            Some(mesh) if self.in_mesh => format!("/meshes/{mesh}/{}/{name}", self.plural),
            _ => format!("/{}/{name}", self.plural),
        }
    }

    pub fn field_by_json(&self, json: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.json == json)
    }
}

const SPEC: &[Field] = &[dynamic("spec", "spec")];

const MESH: &[Field] = &[
    dynamic("mtls", "mtls"),
    dynamic("networking", "networking"),
    dynamic("routing", "routing"),
    dynamic("logging", "logging"),
    dynamic("tracing", "tracing"),
    dynamic("metrics", "metrics"),
    dynamic("constraints", "constraints"),
    dynamic(
        "skip_creating_initial_policies",
        "skipCreatingInitialPolicies",
    ),
];

const GATEWAY: &[Field] = &[
    dynamic("selectors", "selectors"),
    dynamic("tags", "tags"),
    dynamic("conf", "conf"),
];

const SECRET: &[Field] = &[Field {
    hcl: "data",
    json: "data",
    ty: FieldType::String,
    sensitive: true,
}];

pub const ZONE_FIELDS: &[Field] = &[Field {
    hcl: "enabled",
    json: "enabled",
    ty: FieldType::Bool,
    sensitive: false,
}];

const fn kind(
    type_name: &'static str,
    api_type: &'static str,
    plural: &'static str,
    in_mesh: bool,
    fields: &'static [Field],
    description: &'static str,
) -> Kind {
    Kind {
        type_name,
        api_type,
        plural,
        in_mesh,
        fields,
        description,
    }
}

const fn policy(type_name: &'static str, api_type: &'static str, plural: &'static str) -> Kind {
    kind(
        type_name,
        api_type,
        plural,
        true,
        SPEC,
        "A targetRef policy; `spec` mirrors its YAML.",
    )
}

/// Every type but `atoll_zone` (which also issues certificates) and the dataplane token.
pub const KINDS: &[Kind] = &[
    kind(
        "atoll_mesh",
        "Mesh",
        "meshes",
        false,
        MESH,
        "A Mesh; attributes mirror its YAML's top-level fields.",
    ),
    kind(
        "atoll_mesh_gateway",
        "MeshGateway",
        "meshgateways",
        true,
        GATEWAY,
        "A MeshGateway (built-in gateway).",
    ),
    kind(
        "atoll_mesh_http_route",
        "MeshHTTPRoute",
        "meshhttproutes",
        true,
        SPEC,
        "A MeshHTTPRoute; `spec` mirrors its YAML.",
    ),
    kind(
        "atoll_mesh_tcp_route",
        "MeshTCPRoute",
        "meshtcproutes",
        true,
        SPEC,
        "A MeshTCPRoute; `spec` mirrors its YAML.",
    ),
    kind(
        "atoll_mesh_external_service",
        "MeshExternalService",
        "meshexternalservices",
        true,
        SPEC,
        "A MeshExternalService; `spec` mirrors its YAML.",
    ),
    kind(
        "atoll_hostname_generator",
        "HostnameGenerator",
        "hostnamegenerators",
        false,
        SPEC,
        "A HostnameGenerator; `spec` mirrors its YAML.",
    ),
    kind(
        "atoll_secret",
        "Secret",
        "secrets",
        true,
        SECRET,
        "A mesh Secret; `data` is base64, as in YAML.",
    ),
    kind(
        "atoll_global_secret",
        "GlobalSecret",
        "globalsecrets",
        false,
        SECRET,
        "A GlobalSecret; `data` is base64, as in YAML.",
    ),
    policy(
        "atoll_mesh_traffic_permission",
        "MeshTrafficPermission",
        "meshtrafficpermissions",
    ),
    policy("atoll_mesh_timeout", "MeshTimeout", "meshtimeouts"),
    policy("atoll_mesh_retry", "MeshRetry", "meshretries"),
    policy(
        "atoll_mesh_circuit_breaker",
        "MeshCircuitBreaker",
        "meshcircuitbreakers",
    ),
    policy(
        "atoll_mesh_health_check",
        "MeshHealthCheck",
        "meshhealthchecks",
    ),
    policy("atoll_mesh_rate_limit", "MeshRateLimit", "meshratelimits"),
    policy(
        "atoll_mesh_fault_injection",
        "MeshFaultInjection",
        "meshfaultinjections",
    ),
    policy("atoll_mesh_access_log", "MeshAccessLog", "meshaccesslogs"),
    policy(
        "atoll_mesh_load_balancing_strategy",
        "MeshLoadBalancingStrategy",
        "meshloadbalancingstrategies",
    ),
    policy("atoll_mesh_metric", "MeshMetric", "meshmetrics"),
];

pub fn find(type_name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.type_name == type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_policy_type_has_a_resource_with_the_right_path() {
        for policy in atoll_model::POLICIES {
            let kind = KINDS
                .iter()
                .find(|k| k.api_type == policy.name())
                .unwrap_or_else(|| panic!("no resource for {policy}"));
            assert_eq!(kind.plural, policy.plural());
            assert!(kind.in_mesh);
        }
        for kind in KINDS {
            let model: atoll_model::Kind = kind.api_type.parse().unwrap();
            assert_eq!(kind.plural, model.plural(), "{}", kind.type_name);
            assert_eq!(kind.in_mesh, model.scope() == atoll_model::Scope::Mesh);
        }
    }
}
