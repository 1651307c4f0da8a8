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
    /// Admin token; by default read from `<work dir>/admin-token` when that file exists.
    #[arg(long, global = true, env = "ATOLL_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
        let token = match &self.token {
            Some(token) => Some(token.clone()),
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
