//! The zone's options: the common control-plane options plus its own.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use atoll_config::{Opt, Settings};
use atoll_runtime::options::COMMON_OPTIONS;

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
];

pub fn options() -> Vec<Opt> {
    COMMON_OPTIONS.iter().chain(ZONE_OPTIONS).copied().collect()
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
}

pub fn duration(s: &Settings, name: &str) -> anyhow::Result<Duration> {
    let text = s.get(name).unwrap_or_default();
    atoll_model::duration::parse(text)
        .with_context(|| format!("{name}={text:?}: not a duration (e.g. 10s, 500ms)"))
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
        Ok(ZoneConfig { name, kds })
    }
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
    }
}
