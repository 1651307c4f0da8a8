//! `atollctl generate zone-certificate` (asks the global's KDS CA) and
//! `atollctl generate tls-certificate` (offline, self-signed).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::client::{ApiArgs, describe_error};

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
            let response = api.connect()?.post(&format!("/zones/{zone}/certificate"))?;
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
            write(
                key_file.as_deref().unwrap_or(&format!("{zone}.key")),
                &field("key")?,
                0o600,
            )?;
            write(
                ca_file.as_deref().unwrap_or("kds-ca.crt"),
                &field("caCertificate")?,
                0o644,
            )?;
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
