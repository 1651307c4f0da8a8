//! Request and response bodies: JSON by default, YAML on request.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::{ApiError, Cause};

fn is_yaml(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"))
}

/// Parses a request body as YAML when `Content-Type` says so, JSON otherwise.
pub fn parse(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let yaml = is_yaml(headers.get(header::CONTENT_TYPE));
    let parsed = if yaml {
        std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_norway::from_str::<Value>(text).map_err(|e| e.to_string()))
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| {
        let format = if yaml {
            "YAML"
        } else {
            "JSON (send Content-Type: application/yaml for YAML)"
        };
        ApiError::bad_request(
            format!("the body is not valid {format}"),
            vec![Cause {
                field: String::new(),
                message,
            }],
        )
    })
}

/// Renders `value` as YAML when `Accept` asks for it, JSON otherwise.
pub fn render(
    headers: &HeaderMap,
    status: StatusCode,
    value: &Value,
    etag: Option<u64>,
) -> Response {
    let mut response = if is_yaml(headers.get(header::ACCEPT)) {
        let text = serde_norway::to_string(value).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/yaml")], text).into_response()
    } else {
        (status, axum::Json(value)).into_response()
    };
    if let Some(version) = etag
        && let Ok(value) = HeaderValue::from_str(&format!("\"{version}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// `If-Match: "<version>"` as a write precondition.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim().trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "If-Match must carry a version returned in an ETag",
            vec![Cause {
                field: "If-Match".into(),
                message: format!("{text:?} is not a version"),
            }],
        )
    })
}
