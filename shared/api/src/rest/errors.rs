//! The API's error body, `{"title", "details", "causes": [{"field", "message"}]}`, and the
//! mapping from store and validation failures to status codes. Never a stack trace.

use atoll_model::Violation;
use atoll_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub title: String,
    pub details: String,
    #[serde(default)]
    pub causes: Vec<Cause>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, title: &str, details: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                title: title.into(),
                details: details.into(),
                causes: Vec::new(),
            },
        }
    }

    pub fn bad_request(details: impl Into<String>, causes: Vec<Cause>) -> Self {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "Bad Request", details);
        err.body.causes = causes;
        err
    }

    pub fn invalid(violations: Vec<Violation>) -> Self {
        let causes = violations
            .into_iter()
            .map(|v| Cause {
                field: v.field,
                message: v.message,
            })
            .collect();
        ApiError::bad_request("the resource is not valid", causes)
    }

    pub fn not_found(details: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "Not Found", details)
    }

    pub fn unauthorized(details: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", details)
    }

    pub fn forbidden(details: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", details)
    }

    /// 503: the request may succeed if retried shortly.
    pub fn unavailable(details: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            details,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let details = err.to_string();
        match err {
            StoreError::NotFound { .. } => ApiError::not_found(details),
            StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", details)
            }
            StoreError::Unavailable(_) => {
                tracing::warn!(%details, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    details,
                )
            }
            StoreError::Corrupt(_) => {
                tracing::error!(%details, "corrupt data in the store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    details,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body)).into_response();
        if challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
