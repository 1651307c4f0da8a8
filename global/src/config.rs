//! The global's options: the common control-plane options plus its own (the table the
//! configuration reference is generated from).

use atoll_config::Opt;
use atoll_runtime::options::COMMON_OPTIONS;

/// Options only the global has.
pub const GLOBAL_OPTIONS: &[Opt] = &[
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT",
        yaml: "multizone.global.kds.grpcPort",
        default: "5685",
        help: "KDS (zone sync) over mutual TLS",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_INTERFACE",
        yaml: "multizone.global.kds.interface",
        default: "0.0.0.0",
        help: "address the KDS server binds (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE",
        yaml: "multizone.global.kds.tlsCertFile",
        default: "",
        help: "KDS server certificate instead of one issued by the KDS CA",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_TLS_KEY_FILE",
        yaml: "multizone.global.kds.tlsKeyFile",
        default: "",
        help: "key for `KUMA_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE`",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_CLIENT_CA_FILE",
        yaml: "multizone.global.kds.clientCaFile",
        default: "",
        help: "CA zone client certificates must chain to, instead of the KDS CA (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES",
        yaml: "multizone.global.kds.hostnames",
        default: "",
        help: "names and addresses zones dial the global by, comma-separated, for the KDS server certificate the KDS CA issues; it always names `localhost`, the loopback addresses, this host's name and its non-loopback addresses as well (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL",
        yaml: "multizone.global.kds.heartbeatInterval",
        default: "2s",
        help: "an idle stream carries a heartbeat this often, so zones detect stalls (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_GLOBAL_KDS_MAX_MESSAGE_BYTES",
        yaml: "multizone.global.kds.maxMessageBytes",
        default: "3145728",
        help: "full sets are split into messages below this size (Atoll addition)",
    },
];

/// The KDS server's settings.
#[derive(Debug, Clone)]
pub struct KdsConfig {
    pub addr: std::net::SocketAddr,
    pub tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub client_ca_file: Option<std::path::PathBuf>,
    pub hostnames: Vec<String>,
    pub heartbeat: std::time::Duration,
    pub max_message_bytes: usize,
}

impl KdsConfig {
    pub fn from_settings(s: &atoll_config::Settings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let ip: std::net::IpAddr = s.require("KUMA_MULTIZONE_GLOBAL_KDS_INTERFACE")?;
        let port: u16 = s.require("KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT")?;
        let tls_files = match (
            s.get("KUMA_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE"),
            s.get("KUMA_MULTIZONE_GLOBAL_KDS_TLS_KEY_FILE"),
        ) {
            (Some(c), Some(k)) => Some((c.into(), k.into())),
            (None, None) => None,
            _ => anyhow::bail!(
                "KUMA_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE and KUMA_MULTIZONE_GLOBAL_KDS_TLS_KEY_FILE must be set together"
            ),
        };
        let heartbeat_text = s
            .get("KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL")
            .unwrap_or("2s");
        let heartbeat = atoll_model::duration::parse(heartbeat_text).with_context(|| {
            format!(
                "KUMA_MULTIZONE_GLOBAL_KDS_HEARTBEAT_INTERVAL={heartbeat_text:?}: not a duration"
            )
        })?;
        Ok(KdsConfig {
            addr: std::net::SocketAddr::new(ip, port),
            tls_files,
            client_ca_file: s
                .get("KUMA_MULTIZONE_GLOBAL_KDS_CLIENT_CA_FILE")
                .map(Into::into),
            hostnames: s
                .get("KUMA_MULTIZONE_GLOBAL_KDS_HOSTNAMES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
            heartbeat,
            max_message_bytes: s.require("KUMA_MULTIZONE_GLOBAL_KDS_MAX_MESSAGE_BYTES")?,
        })
    }
}

pub fn options() -> Vec<Opt> {
    COMMON_OPTIONS
        .iter()
        .chain(GLOBAL_OPTIONS)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn configuration_reference_is_current() {
        let doc = include_str!("../../docs/configuration.md");
        let table = atoll_config::markdown_table(&super::options());
        assert!(
            doc.contains(&table),
            "docs/configuration.md is out of date: paste the output of `atoll-global options` into its global section"
        );
    }
}
