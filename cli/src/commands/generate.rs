//! `atollctl generate`: credentials a control plane issues (zone certificates from the global's
//! KDS CA, data plane, zone and user tokens) and material made offline (self-signed TLS
//! certificates, token signing keys).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};

use crate::client::{ApiArgs, describe_error};

/// Asks the control plane for a token (valid for `valid_for` when given) and prints it.
fn token(
    api: &ApiArgs,
    path: &str,
    mut body: Value,
    valid_for: &Option<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(valid_for) = valid_for {
        body["validFor"] = valid_for.as_str().into();
    }
    let response = api.connect()?.post_json(path, &body)?;
    if !response.status().is_success() {
        eprintln!("Error: {}", describe_error(response));
        return Ok(ExitCode::FAILURE);
    }
    let token = response.text().context("reading the token")?;
    println!("{}", token.trim());
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertType {
    Server,
    Client,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// A zone's KDS client certificate, issued by the global (admin token needed).
    ZoneCertificate {
        #[arg(long)]
        zone: String,
        /// A PEM certificate signing request made with the zone's own key, which then never
        /// leaves the zone; only the certificate and the CA are written.
        #[arg(long, conflicts_with = "key_file")]
        csr: Option<std::path::PathBuf>,
        /// Where to write the certificate (`-` = stdout); default `<zone>.crt`.
        #[arg(long)]
        cert_file: Option<String>,
        /// Where to write the key (`-` = stdout); default `<zone>.key`, mode 0600.
        #[arg(long)]
        key_file: Option<String>,
        /// Where to write the KDS CA the zone verifies the global with; default `kds-ca.crt`.
        #[arg(long)]
        ca_file: Option<String>,
    },
    /// A data plane token, for `atoll-dp run --dataplane-token-file` (printed on stdout).
    DataplaneToken {
        #[arg(long, short = 'm')]
        mesh: String,
        /// Only the Dataplane of this name may use the token.
        #[arg(long)]
        name: Option<String>,
        /// `KEY=VALUE`: the Dataplane's tags KEY may only take the listed values; repeat.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// What the token registers: dataplane (a sidecar), gateway (a built-in MeshGateway),
        /// ingress or egress.
        #[arg(long = "type", default_value = "dataplane")]
        proxy_type: String,
        /// How long the token is valid, e.g. 720h (default: ten years).
        #[arg(long)]
        valid_for: Option<String>,
    },
    /// A zone token, for a separate zone ingress or egress (`atoll-zone ingress
    /// --zone-token-file`), issued by the global.
    ZoneToken {
        #[arg(long)]
        zone: String,
        /// ingress or egress; repeat for both (default: both).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        valid_for: Option<String>,
    },
    /// A user token for the REST API, issued by the global.
    UserToken {
        #[arg(long)]
        name: String,
        /// A group the user is in; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// How long the token is valid, e.g. 8h (default: 24h).
        #[arg(long)]
        valid_for: Option<String>,
    },
    /// A new RSA token signing key, base64-encoded for a Secret's `data` (offline), e.g. to
    /// rotate: store it as `dataplane-token-signing-key-<mesh>-<next serial>`.
    SigningKey,
    /// A self-signed TLS certificate, e.g. for a MeshGateway HTTPS listener.
    TlsCertificate {
        #[arg(long = "type", value_enum)]
        cert_type: CertType,
        /// A DNS name or IP address; repeat for several.
        #[arg(long = "hostname", required = true)]
        hostnames: Vec<String>,
        #[arg(long)]
        cert_file: String,
        #[arg(long)]
        key_file: String,
    },
}

pub fn run(api: &ApiArgs, what: &What) -> anyhow::Result<ExitCode> {
    match what {
        What::ZoneCertificate {
            zone,
            csr,
            cert_file,
            key_file,
            ca_file,
        } => {
            // Checked before asking: the name goes into the URL path and the default file
            // names, so a `/` or `..` must never get that far. The global checks it again.
            if !atoll_tls::is_zone_name(zone) {
                anyhow::bail!(
                    "--zone {zone:?}: a zone name is a DNS label (lower-case letters, digits and '-', at most 63)"
                );
            }
            let path = format!("/zones/{zone}/certificate");
            let response = match csr {
                None => api.connect()?.post(&path)?,
                Some(file) => {
                    let pem = std::fs::read_to_string(file)
                        .with_context(|| format!("reading --csr {}", file.display()))?;
                    api.connect()?.post_json(&path, &json!({ "csr": pem }))?
                }
            };
            if !response.status().is_success() {
                eprintln!("Error: {}", describe_error(response));
                return Ok(ExitCode::FAILURE);
            }
            let body: Value = response.json().context("reading the response")?;
            let field = |name: &str| {
                body[name]
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("the response has no {name}"))
            };
            write(
                cert_file.as_deref().unwrap_or(&format!("{zone}.crt")),
                &field("certificate")?,
                0o644,
            )?;
            if csr.is_none() {
                write(
                    key_file.as_deref().unwrap_or(&format!("{zone}.key")),
                    &field("key")?,
                    0o600,
                )?;
            }
            if let Some(serial) = body["serial"].as_str() {
                eprintln!(
                    "issued zone certificate serial {serial} (list it in the GlobalSecret zone-certificate-revocations to revoke it)"
                );
            }
            write(
                ca_file.as_deref().unwrap_or("kds-ca.crt"),
                &field("caCertificate")?,
                0o644,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        What::DataplaneToken {
            mesh,
            name,
            tags,
            proxy_type,
            valid_for,
        } => {
            let mut by_tag: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for tag in tags {
                let (key, value) = tag
                    .split_once('=')
                    .with_context(|| format!("--tag {tag:?}: expected KEY=VALUE"))?;
                by_tag.entry(key.into()).or_default().push(value.into());
            }
            let mut body = json!({ "mesh": mesh, "tags": by_tag, "type": proxy_type });
            if let Some(name) = name {
                body["name"] = name.as_str().into();
            }
            token(api, "/tokens/dataplane", body, valid_for)
        }
        What::ZoneToken {
            zone,
            scopes,
            valid_for,
        } => {
            let mut body = json!({ "zone": zone });
            if !scopes.is_empty() {
                body["scope"] = json!(scopes);
            }
            token(api, "/tokens/zone", body, valid_for)
        }
        What::UserToken {
            name,
            groups,
            valid_for,
        } => token(
            api,
            "/tokens/user",
            json!({ "name": name, "groups": groups }),
            valid_for,
        ),
        What::SigningKey => {
            let pem = atoll_auth::keys::generate_pem()?;
            println!("{}", base64::engine::general_purpose::STANDARD.encode(pem));
            Ok(ExitCode::SUCCESS)
        }
        What::TlsCertificate {
            cert_type,
            hostnames,
            cert_file,
            key_file,
        } => {
            let (cert, key) = atoll_tls::self_signed(hostnames, *cert_type == CertType::Client)?;
            write(cert_file, &cert, 0o644)?;
            write(key_file, &key, 0o600)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `text` to `path` with at most the permissions `mode`, or to stdout for `-`.
fn write(path: &str, text: &str, mode: u32) -> anyhow::Result<()> {
    if path == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        return Ok(stdout.flush()?);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {path}"))?;
    // `mode` only applies to a file this call creates. An existing one keeps its permissions,
    // so narrow them before the content lands: a key must not end up world-readable because
    // an older file was. Only regular files: never chmod a device such as /dev/null.
    let metadata = file
        .metadata()
        .with_context(|| format!("inspecting {path}"))?;
    let current = metadata.permissions().mode() & 0o7777;
    if metadata.is_file() && current & !mode != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(current & mode))
            .with_context(|| format!("restricting the permissions of {path}"))?;
    }
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {path}"))
}
