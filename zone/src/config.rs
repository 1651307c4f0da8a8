//! The zone's options: the common control-plane options plus its own.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use atoll_config::{Opt, Settings};
use atoll_runtime::options::{COMMON_OPTIONS, duration};

use crate::crosszone::advertise::{Audience, Variables, resolve};
use crate::dp_server::authn::{DpAuthn, ZoneProxyAuthn};

pub const ZONE_OPTIONS: &[Opt] = &[
    Opt {
        env: "KUMA_MULTIZONE_ZONE_NAME",
        yaml: "multizone.zone.name",
        default: "",
        help: "this zone's name (a DNS label); must match its KDS client certificate",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS",
        yaml: "multizone.zone.globalAddress",
        default: "",
        help: "the global's KDS address, `grpcs://host:5685`; empty runs the zone on its own",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE",
        yaml: "multizone.zone.kds.rootCaFile",
        default: "",
        help: "CA that signed the global's KDS server certificate (`kds-ca.crt` from `atollctl generate zone-certificate`)",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE",
        yaml: "multizone.zone.kds.tlsCertFile",
        default: "",
        help: "the zone's KDS client certificate (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE",
        yaml: "multizone.zone.kds.tlsKeyFile",
        default: "",
        help: "key of the zone's KDS client certificate (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_KDS_LIVENESS_TIMEOUT",
        yaml: "multizone.zone.kds.livenessTimeout",
        default: "10s",
        help: "a stream silent this long (no change, no heartbeat) is re-established (Atoll addition)",
    },
    Opt {
        env: "KUMA_MULTIZONE_ZONE_KDS_MAX_RESOURCE_BYTES",
        yaml: "multizone.zone.kds.maxResourceBytes",
        default: "1048576",
        help: "larger resources from the global are refused by name (NACK) (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_INGRESS_PORT",
        yaml: "zoneIngress.port",
        default: "10001",
        help: "port of the zone ingress (`atoll-zone run --ingress`, `atoll-zone ingress`)",
    },
    Opt {
        env: "KUMA_ZONE_INGRESS_INTERFACE",
        yaml: "zoneIngress.interface",
        default: "0.0.0.0",
        help: "interface the in-process zone ingress listens on (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
        yaml: "zoneIngress.advertisedAddress",
        default: "",
        help: "address other zones use to reach this zone's ingress; empty: the ingress interface's address (the host's only non-loopback address for `0.0.0.0`), and a loopback address is refused unless set here",
    },
    Opt {
        env: "KUMA_ZONE_INGRESS_ADVERTISED_PORT",
        yaml: "zoneIngress.advertisedPort",
        default: "",
        help: "port other zones use to reach this zone's ingress; empty: the ingress port (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_EGRESS_PORT",
        yaml: "zoneEgress.port",
        default: "10002",
        help: "port of the zone egress (`atoll-zone run --egress`): `local` cross-zone routing (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_EGRESS_INTERFACE",
        yaml: "zoneEgress.interface",
        default: "0.0.0.0",
        help: "interface the in-process zone egress listens on (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_EGRESS_ADVERTISED_ADDRESS",
        yaml: "zoneEgress.advertisedAddress",
        default: "",
        help: "address this zone's sidecars use to reach its egress; empty: the egress interface's address (the host's only non-loopback address for `0.0.0.0`, else 127.0.0.1) (Atoll addition)",
    },
    Opt {
        env: "KUMA_ZONE_EGRESS_ADVERTISED_PORT",
        yaml: "zoneEgress.advertisedPort",
        default: "",
        help: "port this zone's sidecars use to reach its egress; empty: the egress port (Atoll addition)",
    },
    Opt {
        env: "KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR",
        yaml: "ipam.meshExternalService.cidr",
        default: "242.0.0.0/8",
        help: "where MeshExternalService VIPs come from; each VIP is derived from the service's mesh and name, so it is the same in every zone and after every restart",
    },
    Opt {
        env: "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT",
        yaml: "monitoringAssignmentServer.port",
        default: "5676",
        help: "MADS: the Prometheus endpoints of this zone's proxies, for kuma_sd_configs (HTTP long polling)",
    },
    Opt {
        env: "KUMA_MONITORING_ASSIGNMENT_SERVER_INTERFACE",
        yaml: "monitoringAssignmentServer.interface",
        default: "0.0.0.0",
        help: "interface MADS listens on (Atoll addition)",
    },
    Opt {
        env: "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED",
        yaml: "monitoringAssignmentServer.tlsEnabled",
        default: "false",
        help: "serve MADS over TLS, with the certificate below or one generated in the work directory",
    },
    Opt {
        env: "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE",
        yaml: "monitoringAssignmentServer.tlsCertFile",
        default: "",
        help: "MADS certificate (PEM); with the key file, instead of a generated one",
    },
    Opt {
        env: "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_KEY_FILE",
        yaml: "monitoringAssignmentServer.tlsKeyFile",
        default: "",
        help: "MADS private key (PEM)",
    },
    Opt {
        env: "KUMA_DP_SERVER_PORT",
        yaml: "dpServer.port",
        default: "5678",
        help: "the DP server: Envoy ADS (state of the world and delta), SDS and the bootstrap endpoint",
    },
    Opt {
        env: "KUMA_DP_SERVER_INTERFACE",
        yaml: "dpServer.interface",
        default: "0.0.0.0",
        help: "interface the DP server listens on (Atoll addition)",
    },
    Opt {
        env: "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE",
        yaml: "dpServer.authn.dpProxy.type",
        default: "dpToken",
        help: "how data planes authenticate: `dpToken` (a data plane token) or `none` (development only: anyone reaching the DP server gets any identity)",
    },
    Opt {
        env: "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_TYPE",
        yaml: "dpServer.authn.zoneProxy.type",
        default: "zoneToken",
        help: "how a separate zone ingress or egress authenticates: `zoneToken` or `none` (development only)",
    },
    Opt {
        env: "KUMA_DP_SERVER_HOSTNAMES",
        yaml: "dpServer.hostnames",
        default: "",
        help: "more names the autogenerated DP server (and MADS) certificate is valid for, comma-separated; it always names `localhost`, the loopback addresses, this host's name and its non-loopback addresses (Atoll addition)",
    },
];

pub fn options() -> Vec<Opt> {
    COMMON_OPTIONS.iter().chain(ZONE_OPTIONS).copied().collect()
}

/// A Markdown table of the environment variables a command's flags read (`atoll-dp run`,
/// `atoll-zone ingress`), for the configuration reference.
pub fn flags_table<A: clap::Args>() -> String {
    let command = A::augment_args(clap::Command::new("flags"));
    let mut out =
        String::from("| environment variable | flag | default | meaning |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else {
            continue;
        };
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ");
        let help = arg
            .get_help()
            .map(|h| h.to_string().replace('\n', " "))
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | `--{}` | {default} | {help} |\n",
            env.to_string_lossy(),
            arg.get_long().unwrap_or_default()
        ));
    }
    out
}

/// How the zone reaches the global.
#[derive(Debug, Clone)]
pub struct KdsClientConfig {
    /// `https://host:port` for tonic.
    pub endpoint: String,
    pub host: String,
    pub root_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub liveness: Duration,
    pub max_resource_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub name: String,
    pub kds: Option<KdsClientConfig>,
    pub dp_server: std::net::SocketAddr,
    pub dp_server_hostnames: Vec<String>,
    pub dp_authn: DpAuthn,
    pub zone_proxy_authn: ZoneProxyAuthn,
    pub ingress: IngressSettings,
    pub egress: IngressSettings,
    pub vip_cidr: crate::external::vip::Cidr,
    pub mads: MadsSettings,
}

/// Where MADS listens, and its TLS when enabled: `None` for plain HTTP, `Some(None)` for a
/// generated certificate, `Some(Some((cert, key)))` for the operator's.
#[derive(Debug, Clone)]
pub struct MadsSettings {
    pub listen: std::net::SocketAddr,
    pub tls: Option<Option<(PathBuf, PathBuf)>>,
}

/// Where the zone ingress listens and what it advertises.
#[derive(Debug, Clone)]
pub struct IngressSettings {
    pub listen: std::net::SocketAddr,
    /// As configured; [`IngressSettings::advertised_address`] fills in the default.
    pub configured_address: Option<String>,
    pub advertised_port: u32,
    prefix: &'static str,
}

impl IngressSettings {
    /// Reads `<prefix>_PORT`, `_INTERFACE`, `_ADVERTISED_ADDRESS` and `_ADVERTISED_PORT`
    /// (`KUMA_ZONE_INGRESS` or `KUMA_ZONE_EGRESS`).
    pub fn from_settings(s: &Settings, prefix: &'static str) -> anyhow::Result<Self> {
        let name = |suffix: &str| format!("{prefix}_{suffix}");
        let port = s.require::<u16>(&name("PORT"))?;
        let advertised_port = match s.get(&name("ADVERTISED_PORT")) {
            Some(_) => s.require::<u16>(&name("ADVERTISED_PORT"))?,
            None => port,
        };
        Ok(IngressSettings {
            listen: std::net::SocketAddr::new(
                s.require::<std::net::IpAddr>(&name("INTERFACE"))?,
                port,
            ),
            configured_address: s
                .get(&name("ADVERTISED_ADDRESS"))
                .filter(|a| !a.trim().is_empty())
                .map(str::to_string),
            advertised_port: u32::from(advertised_port),
            prefix,
        })
    }

    /// The address to advertise to `audience`, derived from the interface when not
    /// configured (see [`crate::crosszone::advertise`]).
    pub fn advertised_address(&self, audience: Audience) -> anyhow::Result<String> {
        let (advertised, listen) = if self.prefix == "KUMA_ZONE_EGRESS" {
            (
                "KUMA_ZONE_EGRESS_ADVERTISED_ADDRESS",
                "KUMA_ZONE_EGRESS_INTERFACE",
            )
        } else {
            (
                "KUMA_ZONE_INGRESS_ADVERTISED_ADDRESS",
                "KUMA_ZONE_INGRESS_INTERFACE",
            )
        };
        Ok(resolve(
            self.configured_address.as_deref(),
            self.listen.ip(),
            &atoll_runtime::host::non_loopback_addresses(),
            audience,
            Variables { advertised, listen },
        )?)
    }
}

impl ZoneConfig {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let name = s
            .get("KUMA_MULTIZONE_ZONE_NAME")
            .context("KUMA_MULTIZONE_ZONE_NAME must be set")?
            .to_string();
        anyhow::ensure!(
            atoll_model::validate::is_dns_label(&name) && name == name.to_lowercase(),
            "KUMA_MULTIZONE_ZONE_NAME={name:?}: must be a DNS label (lower-case letters, digits, '-')"
        );
        let kds = match s.get("KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS") {
            None => None,
            Some(address) => {
                let rest = address.strip_prefix("grpcs://").with_context(|| {
                    format!("KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS={address:?}: must be grpcs://host:port (KDS always uses TLS)")
                })?;
                let host = rest
                    .rsplit_once(':')
                    .map_or(rest, |(h, _)| h)
                    .trim_matches(['[', ']'])
                    .to_string();
                let file = |opt: &str| -> anyhow::Result<PathBuf> {
                    s.get(opt)
                        .map(PathBuf::from)
                        .with_context(|| format!("{opt} must be set to connect to the global"))
                };
                Some(KdsClientConfig {
                    endpoint: format!("https://{rest}"),
                    host,
                    root_ca: file("KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE")?,
                    cert: file("KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE")?,
                    key: file("KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE")?,
                    liveness: duration(s, "KUMA_MULTIZONE_ZONE_KDS_LIVENESS_TIMEOUT")?,
                    max_resource_bytes: s.require("KUMA_MULTIZONE_ZONE_KDS_MAX_RESOURCE_BYTES")?,
                })
            }
        };
        let dp_server = std::net::SocketAddr::new(
            s.require::<std::net::IpAddr>("KUMA_DP_SERVER_INTERFACE")?,
            s.require::<u16>("KUMA_DP_SERVER_PORT")?,
        );
        let configured: Vec<String> = s
            .get("KUMA_DP_SERVER_HOSTNAMES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect();
        // Data planes on other machines dial this host's address or name.
        let dp_server_hostnames = atoll_runtime::host::certificate_names(&configured);
        let dp_authn = match s
            .get("KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE")
            .unwrap_or("dpToken")
        {
            "dpToken" => DpAuthn::DpToken,
            "none" => DpAuthn::None,
            other => anyhow::bail!(
                "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE={other:?}: must be dpToken or none"
            ),
        };
        let zone_proxy_authn = match s
            .get("KUMA_DP_SERVER_AUTHN_ZONE_PROXY_TYPE")
            .unwrap_or("zoneToken")
        {
            "zoneToken" => ZoneProxyAuthn::ZoneToken,
            "none" => ZoneProxyAuthn::None,
            other => anyhow::bail!(
                "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_TYPE={other:?}: must be zoneToken or none"
            ),
        };
        Ok(ZoneConfig {
            name,
            kds,
            dp_server,
            dp_server_hostnames,
            dp_authn,
            zone_proxy_authn,
            ingress: IngressSettings::from_settings(s, "KUMA_ZONE_INGRESS")?,
            egress: IngressSettings::from_settings(s, "KUMA_ZONE_EGRESS")?,
            vip_cidr: s
                .require::<String>("KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR")?
                .parse()
                .map_err(|why| anyhow::anyhow!("KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR: {why}"))?,
            mads: mads(s)?,
        })
    }
}

fn mads(s: &Settings) -> anyhow::Result<MadsSettings> {
    let listen = std::net::SocketAddr::new(
        s.require::<std::net::IpAddr>("KUMA_MONITORING_ASSIGNMENT_SERVER_INTERFACE")?,
        s.require::<u16>("KUMA_MONITORING_ASSIGNMENT_SERVER_PORT")?,
    );
    let enabled = s.require::<bool>("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED")?;
    let file = |name: &str| s.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let files = match (
        file("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE"),
        file("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_KEY_FILE"),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!(
            "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE and _KEY_FILE go together: set both or neither"
        ),
    };
    if files.is_some() && !enabled {
        anyhow::bail!(
            "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE is set but KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED is false"
        );
    }
    Ok(MadsSettings {
        listen,
        tls: enabled.then_some(files),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load(pairs: &[(&str, &str)]) -> anyhow::Result<ZoneConfig> {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ZoneConfig::from_settings(&Settings::load(&options(), None, &env, &[])?)
    }

    #[test]
    fn kds_address_and_files() {
        let c = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "zone-1"),
            (
                "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS",
                "grpcs://global.example:5685",
            ),
            ("KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE", "/ca"),
            ("KUMA_MULTIZONE_ZONE_KDS_TLS_CERT_FILE", "/c"),
            ("KUMA_MULTIZONE_ZONE_KDS_TLS_KEY_FILE", "/k"),
        ])
        .unwrap();
        let kds = c.kds.unwrap();
        assert_eq!(kds.endpoint, "https://global.example:5685");
        assert_eq!(kds.host, "global.example");
        assert_eq!(kds.liveness, Duration::from_secs(10));
    }

    #[test]
    fn mads_settings() {
        let c = load(&[("KUMA_MULTIZONE_ZONE_NAME", "z")]).unwrap();
        assert_eq!(c.mads.listen.port(), 5676);
        assert!(c.mads.tls.is_none(), "plain HTTP by default");
        let c = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED", "true"),
        ])
        .unwrap();
        assert_eq!(c.mads.tls, Some(None), "a generated certificate");
        let err = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE", "/c"),
            ("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_KEY_FILE", "/k"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("TLS_ENABLED is false"), "{err}");
        let err = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED", "true"),
            ("KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE", "/c"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("go together"), "{err}");
    }

    #[test]
    fn clear_errors() {
        let err = load(&[]).unwrap_err().to_string();
        assert!(
            err.contains("KUMA_MULTIZONE_ZONE_NAME must be set"),
            "{err}"
        );
        let err = load(&[("KUMA_MULTIZONE_ZONE_NAME", "Zone_1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a DNS label"), "{err}");
        let err = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS", "http://g:5685"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be grpcs://host:port"), "{err}");
        let err = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", "serviceAccountToken"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be dpToken or none"), "{err}");
        let c = load(&[("KUMA_MULTIZONE_ZONE_NAME", "z")]).unwrap();
        assert_eq!(c.dp_authn, DpAuthn::DpToken, "tokens are on by default");
        assert_eq!(c.zone_proxy_authn, ZoneProxyAuthn::ZoneToken);
        let err = load(&[
            ("KUMA_MULTIZONE_ZONE_NAME", "z"),
            ("KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS", "grpcs://g:5685"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE must be set"),
            "{err}"
        );
    }

    #[test]
    fn configuration_reference_is_current() {
        let doc = include_str!("../../docs/configuration.md");
        let table = atoll_config::markdown_table(&options());
        assert!(
            doc.contains(&table),
            "docs/configuration.md is out of date: paste the output of `atoll-zone options` into its zone section"
        );
        for (table, command) in [
            (
                flags_table::<crate::crosszone::process::IngressArgs>(),
                "atoll-zone options --ingress",
            ),
            (flags_table::<crate::dp::RunArgs>(), "atoll-dp options"),
        ] {
            assert!(
                doc.contains(&table),
                "docs/configuration.md is out of date: paste the output of `{command}` into its section"
            );
        }
    }
}
