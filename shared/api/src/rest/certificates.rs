//! `POST /zones/{name}/certificate`: a KDS client certificate for a zone, issued by the
//! global's KDS CA. Admin only; global only.

use std::sync::{Arc, OnceLock};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::errors::{ApiError, Cause};
use super::{ApiState, Mode, body, target};
use crate::Connection;

/// A certificate and key for a zone, and the CA that signed them (which also signed the KDS
/// server certificate, so the zone trusts the global with it).
pub struct IssuedCertificate {
    pub certificate: String,
    pub key: String,
    pub ca_certificate: String,
}

/// Issues zone certificates; the global sets one once its KDS CA is ready.
pub trait ZoneCertificateIssuer: Send + Sync {
    fn issue(&self, zone: &str) -> Result<IssuedCertificate, String>;
}

/// Where the issuer is installed after the API has started.
pub type IssuerSlot = Arc<OnceLock<Arc<dyn ZoneCertificateIssuer>>>;

pub(super) async fn issue(
    State(state): State<ApiState>,
    conn: Option<Extension<Connection>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Result<Response, ApiError> {
    if state.mode != Mode::Global {
        return Err(ApiError::bad_request(
            "zone certificates are issued by the global control plane: ask it",
            Vec::new(),
        ));
    }
    target::authorize(&state, conn.as_deref(), &headers)?;
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
    let issuer = state.zone_certificates.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the KDS CA is not ready yet; retry shortly",
        )
    })?;
    let issued = issuer.issue(&zone).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            e,
        )
    })?;
    tracing::info!(%zone, "issued a zone certificate");
    let value = json!({
        "zone": zone,
        "certificate": issued.certificate,
        "key": issued.key,
        "caCertificate": issued.ca_certificate,
    });
    Ok(body::render(&headers, StatusCode::OK, &value, None))
}
