//! `POST /zones/{name}/certificate`: a KDS client certificate for a zone, issued by the
//! global's KDS CA, for a key generated here or (with a `{"csr": PEM}` body) for the zone's
//! own key, which then never leaves the zone. Global only; needs the permission to generate
//! zone tokens (a zone certificate is a zone's credential too).

use std::sync::{Arc, OnceLock};

use atoll_auth::{Action, User};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::errors::{ApiError, Cause};
use super::{ApiState, Mode, body};

/// A certificate for a zone, the key it certifies when the CA generated it, and the CA that
/// signed it (which also signed the KDS server certificate, so the zone trusts the global
/// with it).
pub struct IssuedCertificate {
    pub certificate: String,
    /// `None` when the certificate was issued for a CSR: the key stays with the zone.
    pub key: Option<String>,
    pub ca_certificate: String,
    /// Hex serial, what `zone-certificate-revocations` lists.
    pub serial: String,
}

/// Issues zone certificates; the global sets one once its KDS CA is ready.
pub trait ZoneCertificateIssuer: Send + Sync {
    fn issue(&self, zone: &str) -> Result<IssuedCertificate, String>;
    /// Issues for the key of a PEM certificate signing request; an invalid request is the
    /// caller's mistake (`Err(Refused)`), anything else the CA's.
    fn issue_for_csr(&self, zone: &str, csr_pem: &str) -> Result<IssuedCertificate, CsrError>;
}

/// Why a certificate for a CSR was not issued.
pub enum CsrError {
    /// The request cannot be used (unreadable, bad signature).
    Refused(String),
    Failed(String),
}

/// Where the issuer is installed after the API has started.
pub type IssuerSlot = Arc<OnceLock<Arc<dyn ZoneCertificateIssuer>>>;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    csr: Option<String>,
}

pub(super) async fn issue(
    State(state): State<ApiState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    if state.mode != Mode::Global {
        return Err(ApiError::bad_request(
            "zone certificates are issued by the global control plane: ask it",
            Vec::new(),
        ));
    }
    state.auth.authorize(&user, Action::GenerateZoneToken)?;
    if !atoll_model::validate::is_dns_label(&zone) || zone != zone.to_lowercase() {
        return Err(ApiError::bad_request(
            "invalid zone name",
            vec![Cause {
                field: "name".into(),
                message: format!(
                    "{zone:?} must be a DNS label: lower-case letters, digits and '-'"
                ),
            }],
        ));
    }
    let request: Request = if bytes.is_empty() {
        Request { csr: None }
    } else {
        super::tokens::decode_request(&headers, &bytes)?
    };
    let issuer = state
        .zone_certificates
        .get()
        .ok_or_else(|| ApiError::unavailable("the KDS CA is not ready yet; retry shortly"))?;
    let internal = |e: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            e,
        )
    };
    let issued = match &request.csr {
        None => issuer.issue(&zone).map_err(internal)?,
        Some(csr) => issuer.issue_for_csr(&zone, csr).map_err(|e| match e {
            CsrError::Refused(why) => ApiError::bad_request(
                "the certificate signing request cannot be used",
                vec![Cause {
                    field: "csr".into(),
                    message: why,
                }],
            ),
            CsrError::Failed(why) => internal(why),
        })?,
    };
    tracing::info!(%zone, serial = %issued.serial, user = %user.name, from_csr = request.csr.is_some(), "issued a zone certificate");
    let mut value = json!({
        "zone": zone,
        "certificate": issued.certificate,
        "caCertificate": issued.ca_certificate,
        "serial": issued.serial,
    });
    if let Some(key) = issued.key {
        value["key"] = key.into();
    }
    Ok(body::render(&headers, StatusCode::OK, &value, None))
}
