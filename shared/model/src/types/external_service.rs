//! `MeshExternalService`: a destination outside the mesh, reached through the sidecar.

use super::{DataSource, Extension, is_false, is_zero};
use crate::enums::string_enum;

model! {
    pub struct MeshExternalServiceSpec {
        #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
        pub match_: Option<MesMatch>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub endpoints: Vec<MesEndpoint>,
        /// With an extension, `endpoints` and `tls` become the extension's business.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub extension: Option<Extension>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls: Option<MesTls>,
    }

    pub struct MesMatch {
        #[serde(rename = "type", default, skip_serializing_if = "MesMatchType::is_unset")]
        pub match_type: MesMatchType,
        #[serde(default, skip_serializing_if = "is_zero")]
        pub port: u32,
        /// Defaults to `tcp`.
        #[serde(default, skip_serializing_if = "MesProtocol::is_unset")]
        pub protocol: MesProtocol,
    }

    pub struct MesEndpoint {
        /// An IP address, a DNS name, or `unix://` followed by a socket path.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub address: String,
        /// Required for IP and DNS addresses; must be absent for unix sockets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<u32>,
        /// Envoy failover priority, 0 (primary, the default) to 128. Only 0 is accepted until
        /// the zone generates priority levels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priority: Option<u32>,
    }

    pub struct MesTls {
        #[serde(default, skip_serializing_if = "is_false")]
        pub enabled: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        pub allow_renegotiation: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<TlsVersionRange>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub verification: Option<TlsVerification>,
    }

    pub struct TlsVersionRange {
        #[serde(default, skip_serializing_if = "TlsVersion::is_unset")]
        pub min: TlsVersion,
        #[serde(default, skip_serializing_if = "TlsVersion::is_unset")]
        pub max: TlsVersion,
    }

    pub struct TlsVerification {
        /// Defaults to `Secured`.
        #[serde(default, skip_serializing_if = "VerificationMode::is_unset")]
        pub mode: VerificationMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub server_name: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub subject_alt_names: Vec<SanMatch>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca_cert: Option<DataSource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_cert: Option<DataSource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_key: Option<DataSource>,
    }

    pub struct SanMatch {
        /// Defaults to `Exact`.
        #[serde(rename = "type", default, skip_serializing_if = "SanMatchType::is_unset")]
        pub match_type: SanMatchType,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }
}

string_enum! {
    MesMatchType {
        HostnameGenerator = "HostnameGenerator",
    }
}

string_enum! {
    MesProtocol {
        Tcp = "tcp",
        Grpc = "grpc",
        Http = "http",
        Http2 = "http2",
    }
}

string_enum! {
    /// Ordered from "let the proxy choose" to the newest version.
    TlsVersion {
        Auto = "TLSAuto",
        Tls10 = "TLS10",
        Tls11 = "TLS11",
        Tls12 = "TLS12",
        Tls13 = "TLS13",
    }
}

string_enum! {
    VerificationMode {
        SkipSan = "SkipSAN",
        SkipCa = "SkipCA",
        Secured = "Secured",
        SkipAll = "SkipAll",
    }
}

string_enum! {
    SanMatchType {
        Exact = "Exact",
        Prefix = "Prefix",
    }
}

impl TlsVersion {
    /// Position among concrete versions; `None` for `TLSAuto`, unset or unknown values.
    pub fn rank(&self) -> Option<u8> {
        match self {
            TlsVersion::Tls10 => Some(0),
            TlsVersion::Tls11 => Some(1),
            TlsVersion::Tls12 => Some(2),
            TlsVersion::Tls13 => Some(3),
            _ => None,
        }
    }
}

/// The prefix that marks an endpoint address as a unix domain socket.
pub const UNIX_SOCKET_PREFIX: &str = "unix://";
