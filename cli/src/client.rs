//! The REST client: address, admin token and TLS trust.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use reqwest::blocking::{Client, RequestBuilder, Response};

/// Connection settings shared by every subcommand that talks to a control plane.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// Address of the control plane's REST API.
    #[arg(
        long,
        global = true,
        env = "ATOLL_API_ADDRESS",
        default_value = "http://127.0.0.1:5681"
    )]
    pub api_address: String,
    /// User token (e.g. the admin token); by default read from `<work dir>/admin-token` when
    /// that file exists.
    #[arg(long, global = true, env = "ATOLL_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the user token.
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// CA certificate to verify an `https://` API with (default: `<work dir>/api-server-ca.crt`
    /// when present, else the system's roots).
    #[arg(long, global = true)]
    pub ca_cert_file: Option<PathBuf>,
    /// The control plane's work directory, where its token and CA are found.
    #[arg(long, global = true, env = "KUMA_GENERAL_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

pub struct Api {
    client: Client,
    base: String,
    token: Option<String>,
}

impl ApiArgs {
    fn work_dir(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".atoll")
        })
    }

    pub fn connect(&self) -> anyhow::Result<Api> {
        let base = self.api_address.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("--api-address {base:?}: must start with http:// or https://");
        }
        let work_dir = self.work_dir();
        let explicit = match (&self.token, &self.token_file) {
            (Some(token), _) => Some(token.trim().to_string()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading --token-file {}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let exposed = base.starts_with("http://") && !is_loopback(&base);
        let token = match explicit {
            Some(_) if exposed => bail!(
                "refusing to send a token over plain HTTP to {base}: anyone on the path could read it; use the HTTPS API (https://HOST:5682)"
            ),
            Some(token) => Some(token),
            // The local admin token is never offered to another host over plain HTTP.
            None if exposed => None,
            None => std::fs::read_to_string(work_dir.join("admin-token"))
                .ok()
                .map(|t| t.trim().to_string()),
        };
        let mut builder = Client::builder().timeout(std::time::Duration::from_secs(30));
        let ca = self
            .ca_cert_file
            .clone()
            .or_else(|| Some(work_dir.join("api-server-ca.crt")).filter(|p| p.exists()));
        if base.starts_with("https://")
            && let Some(ca) = ca
        {
            builder = builder.tls_backend_preconfigured(tls_trusting(&ca)?);
        }
        let client = builder.build().context("setting up the HTTP client")?;
        Ok(Api {
            client,
            base,
            token,
        })
    }
}

/// Whether the host of `url` is this machine (a loopback address or `localhost`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_trusting(ca: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    Ok(atoll_tls::client_config(&pem, &ca.display().to_string())?)
}

impl Api {
    fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.send(self.client.get(self.url(path)))
    }

    pub fn put_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<Response> {
        self.send(self.client.put(self.url(path)).json(body))
    }

    pub fn post(&self, path: &str) -> anyhow::Result<Response> {
        self.send(self.client.post(self.url(path)))
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<Response> {
        self.send(self.client.post(self.url(path)).json(body))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Response> {
        self.send(self.client.delete(self.url(path)))
    }

    fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        self.authed(request)
            .send()
            .with_context(|| format!("cannot reach the control plane at {}", self.base))
    }
}

/// The error a control plane answered with, as a readable message with its causes.
pub fn describe_error(response: Response) -> String {
    let status = response.status();
    let text = response.text().unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(body) => {
            let mut out = format!("{status}: {}", body["details"].as_str().unwrap_or(&text));
            for cause in body["causes"].as_array().into_iter().flatten() {
                let field = cause["field"].as_str().unwrap_or_default();
                let message = cause["message"].as_str().unwrap_or_default();
                out.push_str(&if field.is_empty() {
                    format!("\n  {message}")
                } else {
                    format!("\n  {field}: {message}")
                });
            }
            out
        }
        Err(_) => format!("{status}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:5681",
            "http://localhost:5681/",
            "http://[::1]:5681",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:5681",
            "http://global.example",
            "http://[fe80::1]:1",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn tokens_never_travel_in_clear_to_another_host() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let args = |address: &str| ApiArgs {
            api_address: address.into(),
            token: Some("t".into()),
            token_file: None,
            ca_cert_file: None,
            work_dir: Some("/nonexistent".into()),
        };
        let err = args("http://10.0.0.1:5681").connect().err().unwrap();
        assert!(
            err.to_string()
                .contains("refusing to send a token over plain HTTP"),
            "{err}"
        );
        assert!(args("http://127.0.0.1:5681").connect().is_ok());
        assert!(args("https://10.0.0.1:5682").connect().is_ok());
    }
}
