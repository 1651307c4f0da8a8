//! `atollctl generate zone-certificate` (asks the global's KDS CA) and
//! `atollctl generate tls-certificate` (offline, self-signed).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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

/// Writes `text` to `path`, or to stdout for `-`.
fn write(path: &str, text: &str, mode: u32) -> anyhow::Result<()> {
    if path == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {path}"))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {path}"))
}
