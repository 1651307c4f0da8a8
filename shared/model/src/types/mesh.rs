//! `Mesh`: mutual TLS certificate authorities and mesh-wide routing switches.

use super::{DataSource, is_false};
use crate::enums::string_enum;

model! {
    pub struct MeshSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mtls: Option<Mtls>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub routing: Option<MeshRouting>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub networking: Option<MeshNetworking>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub skip_creating_initial_policies: Vec<String>,
        /// Kuma's access-log backends. Kept as written so Kuma documents read back whole;
        /// validation refuses them until Atoll generates access logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub logging: Option<serde_json::Value>,
        /// Kuma's tracing backends; kept as written, refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub tracing: Option<serde_json::Value>,
        /// Kuma's Prometheus metrics backends; kept as written, refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub metrics: Option<serde_json::Value>,
        /// Kuma's data plane admission constraints; kept as written, refused by validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(any(test, feature = "arbitrary"), proptest(strategy = "crate::arbitrary::opt_json()"))]
        pub constraints: Option<serde_json::Value>,
    }

    pub struct Mtls {
        /// The name of the backend in `backends` that issues certificates; empty turns mTLS off.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub enabled_backend: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub backends: Vec<CaBackend>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub skip_validation: bool,
    }

    pub struct CaBackend {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(rename = "type", default, skip_serializing_if = "CaBackendType::is_unset")]
        pub backend_type: CaBackendType,
        #[serde(default, skip_serializing_if = "MtlsMode::is_unset")]
        pub mode: MtlsMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dp_cert: Option<DpCert>,
        /// `caCert` for `builtin`; `cert` and `key` for `provided`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub conf: Option<CaBackendConf>,
    }

    pub struct DpCert {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rotation: Option<CertRotation>,
        /// How long a data plane waits for a certificate, e.g. `10s`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_timeout: Option<String>,
    }

    pub struct CertRotation {
        /// Lifetime of a data-plane certificate, e.g. `24h` or `1d`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expiration: Option<String>,
    }

    pub struct CaBackendConf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca_cert: Option<CaCertConf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cert: Option<DataSource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub key: Option<DataSource>,
    }

    pub struct CaCertConf {
        #[serde(rename = "RSAbits", default, skip_serializing_if = "Option::is_none")]
        pub rsa_bits: Option<u32>,
        /// Lifetime of the generated CA, e.g. `10y`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expiration: Option<String>,
    }

    pub struct MeshRouting {
        #[serde(default, skip_serializing_if = "is_false")]
        pub locality_aware_load_balancing: bool,
        /// Send cross-zone and external traffic through the zone egress.
        #[serde(default, skip_serializing_if = "is_false")]
        pub zone_egress: bool,
        /// Forbid every MeshExternalService in this mesh unless a policy allows it.
        #[serde(default, skip_serializing_if = "is_false")]
        pub default_forbid_mesh_external_service_access: bool,
    }

    pub struct MeshNetworking {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub outbound: Option<MeshOutbound>,
    }

    pub struct MeshOutbound {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub passthrough: Option<bool>,
    }
}

string_enum! {
    CaBackendType {
        /// A CA generated and kept by the control plane.
        Builtin = "builtin",
        /// A CA certificate and key supplied by the user.
        Provided = "provided",
    }
}

string_enum! {
    MtlsMode {
        Strict = "STRICT",
        Permissive = "PERMISSIVE",
    }
}

impl MeshSpec {
    /// The backend that issues certificates, if mTLS is on.
    pub fn enabled_ca(&self) -> Option<&CaBackend> {
        let mtls = self.mtls.as_ref()?;
        mtls.backends
            .iter()
            .find(|b| !mtls.enabled_backend.is_empty() && b.name == mtls.enabled_backend)
    }
}
