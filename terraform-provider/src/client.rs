//! The REST API as the provider uses it: documents with their versions, and the API's
//! errors kept whole (status, details, field causes) so Terraform can show them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

const RETRIES_ON_503: u32 = 60;
const RETRY_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Settings {
    pub address: String,
    pub token: Option<String>,
    pub ca_cert: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method} {path}: {status}: {details}{}", causes_text(.causes))]
    Status {
        method: String,
        path: String,
        status: u16,
        details: String,
        causes: Vec<Cause>,
    },
    #[error("{method} {path}: {source}")]
    Transport {
        method: String,
        path: String,
        source: reqwest::Error,
    },
    #[error("setting up the API client: {0}")]
    Setup(String),
}

fn causes_text(causes: &[Cause]) -> String {
    causes
        .iter()
        .map(|c| format!("\n  {}: {}", c.field, c.message))
        .collect()
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A document and the version (`ETag`) it was read or written at.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub document: Json,
    pub version: Option<u64>,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Client, ApiError> {
        let base = settings.address.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ApiError::Setup(format!(
                "address {base:?} must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let tls = match &settings.ca_cert {
            Some(pem) => atoll_tls::client_config(pem.as_bytes(), "ca_cert")
                .map_err(|e| ApiError::Setup(e.to_string()))?,
            None => system_roots()?,
        };
        if base.starts_with("https://") {
            builder = builder.tls_backend_preconfigured(tls);
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::Setup(e.to_string()))?;
        Ok(Client {
            http,
            base,
            token: settings.token.clone(),
        })
    }

    /// The API answers 503 for what is about to be ready (a new mesh's signing key, a store
    /// that is failing over): it says to retry, so the provider does for a while.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
        if_match: Option<u64>,
    ) -> Result<(StatusCode, Option<u64>, Json), ApiError> {
        // The project's one retry policy, at a steady 500 ms: the wait is for the API, not a
        // reconnect storm to spread out.
        let mut backoff = atoll_retry::Backoff::new(RETRY_EVERY, RETRY_EVERY);
        let mut attempt = 0;
        loop {
            match self.send_once(method.clone(), path, body, if_match).await {
                Err(err) if err.status() == Some(503) && attempt < RETRIES_ON_503 => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
        if_match: Option<u64>,
    ) -> Result<(StatusCode, Option<u64>, Json), ApiError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |source| ApiError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let version = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok());
        let text = response.text().await.map_err(transport)?;
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::String(text));
        if !status.is_success() {
            let causes = json["causes"]
                .as_array()
                .map(|causes| {
                    causes
                        .iter()
                        .map(|c| Cause {
                            field: c["field"].as_str().unwrap_or_default().to_string(),
                            message: c["message"].as_str().unwrap_or_default().to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let details = match &json {
                Json::String(text) => text.clone(),
                other => other["details"].as_str().unwrap_or_default().to_string(),
            };
            return Err(ApiError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                details,
                causes,
            });
        }
        Ok((status, version, json))
    }

    /// `None` when the resource does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Versioned>, ApiError> {
        match self.send(Method::GET, path, None, None).await {
            Ok((_, version, document)) => Ok(Some(Versioned { document, version })),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub async fn get_json(&self, path: &str) -> Result<Json, ApiError> {
        Ok(self.send(Method::GET, path, None, None).await?.2)
    }

    pub async fn put(
        &self,
        path: &str,
        document: &Json,
        if_match: Option<u64>,
    ) -> Result<Versioned, ApiError> {
        let (_, version, document) = self
            .send(Method::PUT, path, Some(document), if_match)
            .await?;
        Ok(Versioned { document, version })
    }

    /// Validates `document` as a write would, storing nothing (`?dryRun=true`).
    pub async fn validate(&self, path: &str, document: &Json) -> Result<Json, ApiError> {
        let path = format!("{path}?dryRun=true");
        Ok(self.send(Method::PUT, &path, Some(document), None).await?.2)
    }

    /// Deleting what is already gone succeeds.
    pub async fn delete(&self, path: &str, if_match: Option<u64>) -> Result<(), ApiError> {
        match self.send(Method::DELETE, path, None, if_match).await {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    pub async fn post(&self, path: &str, body: &Json) -> Result<Json, ApiError> {
        Ok(self.send(Method::POST, path, Some(body), None).await?.2)
    }
}

/// Without `ca_cert`, an `https://` address is verified against the system's roots (the
/// webpki bundle is not linked: the API's certificate is normally from its own CA).
fn system_roots() -> Result<rustls::ClientConfig, ApiError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if let Ok(pem) = std::fs::read(path) {
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
