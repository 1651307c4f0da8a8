//! Issuing tokens (Kuma's paths): `POST /tokens/dataplane` (global or zone: both hold the
//! mesh's signing key), `POST /tokens/zone` and `POST /tokens/user` (global only: zones hold
//! only the public halves of those keys). The answer is the token itself, as text.

use std::collections::BTreeMap;
use std::time::Duration;

use atoll_auth::claims::{DEFAULT_VALIDITY, ZONE_SCOPES};
use atoll_auth::keyring::HasStandard;
use atoll_auth::{
    Action, DataplaneClaims, IssueError, ProxyType, Purpose, Standard, User, UserClaims, ZoneClaims,
};
use atoll_model::Kind;
use atoll_store::Key;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::errors::{ApiError, Cause};
use super::{ApiState, Mode, body};

/// Validity of a user token requested without one: a day, so a forgotten `--valid-for` never
/// makes a long-lived credential for a person.
const USER_VALIDITY: Duration = Duration::from_secs(24 * 3600);

fn cause(field: &str, message: impl Into<String>) -> Cause {
    Cause {
        field: field.into(),
        message: message.into(),
    }
}

/// A request body (JSON, or YAML by `Content-Type`) as `T`, refusing unknown fields by name.
pub(super) fn decode_request<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let value = body::parse(headers, bytes)?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let field = err.path().to_string();
        ApiError::bad_request(
            "the request body is not valid",
            vec![cause(
                if field == "." { "" } else { &field },
                err.into_inner().to_string(),
            )],
        )
    })
}

fn valid_for(text: Option<&str>, default: Duration) -> Result<Duration, Cause> {
    let Some(text) = text else {
        return Ok(default);
    };
    match atoll_model::duration::parse(text) {
        Ok(d) if d.is_zero() => Err(cause("validFor", "must be longer than 0")),
        Ok(d) => Ok(d),
        Err(e) => Err(cause("validFor", format!("{text:?} {e} (e.g. 720h)"))),
    }
}

/// Refuses the request when `causes` name any problem; otherwise signs `claims` with the newest
/// key of `purpose` and answers with the token as text.
fn sign<C: Serialize + HasStandard>(
    state: &ApiState,
    caller: &User,
    causes: Vec<Cause>,
    purpose: &Purpose,
    claims: C,
) -> Result<Response, ApiError> {
    if !causes.is_empty() {
        return Err(ApiError::bad_request(
            "the token request is not valid",
            causes,
        ));
    }
    let token = state
        .auth
        .credentials
        .current()
        .issue(purpose, &claims)
        .map_err(issue_error)?;
    let kind = match purpose {
        Purpose::Dataplane(_) => "dataplane",
        Purpose::Zone => "zone",
        Purpose::User => "user",
    };
    let standard = claims.standard();
    metrics::counter!("atoll_tokens_issued_total", "kind" => kind).increment(1);
    tracing::info!(kind, user = %caller.name, jti = %standard.jti, expires = %standard.expires(), "issued a token");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        token,
    )
        .into_response())
}

fn issue_error(err: IssueError) -> ApiError {
    match err {
        IssueError::NoSigningKey(purpose) => ApiError::unavailable(format!(
            "there is no signing key for {purpose} yet (the global generates it when the mesh is created, and KDS brings it to zones); retry shortly"
        )),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            other.to_string(),
        ),
    }
}

fn global_only(state: &ApiState, what: &str) -> Result<(), ApiError> {
    match state.mode {
        Mode::Global => Ok(()),
        Mode::Zone { .. } => Err(ApiError::bad_request(
            format!("{what} are issued by the global control plane: ask it"),
            Vec::new(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataplaneRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mesh: String,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
    #[serde(rename = "type", default)]
    proxy_type: Option<String>,
    valid_for: Option<String>,
}

pub(super) async fn dataplane(
    State(state): State<ApiState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .authorize(&user, Action::GenerateDataplaneToken)?;
    let request: DataplaneRequest = decode_request(&headers, &bytes)?;
    let mut causes = Vec::new();
    if request.mesh.is_empty() {
        causes.push(cause("mesh", "must be set"));
    }
    let proxy_type = match request.proxy_type.as_deref() {
        None => ProxyType::Dataplane,
        Some(text) => ProxyType::parse(text).unwrap_or_else(|| {
            causes.push(cause(
                "type",
                format!("{text:?} must be one of dataplane, gateway, ingress, egress"),
            ));
            ProxyType::Dataplane
        }),
    };
    for (tag, values) in &request.tags {
        if tag.is_empty() {
            causes.push(cause("tags", "a tag name must not be empty"));
        }
        if values.is_empty() || values.iter().any(String::is_empty) {
            causes.push(cause(
                &format!("tags[{tag:?}]"),
                "list at least one non-empty value",
            ));
        }
    }
    let validity = valid_for(request.valid_for.as_deref(), DEFAULT_VALIDITY)
        .map_err(|c| causes.push(c))
        .unwrap_or_default();
    if !causes.is_empty() {
        return Err(ApiError::bad_request(
            "the token request is not valid",
            causes,
        ));
    }
    let mesh_key = Key::new(Kind::Mesh, None, &request.mesh);
    if state.store.get(&mesh_key).await?.is_none() {
        return Err(ApiError::bad_request(
            "the token request is not valid",
            vec![cause(
                "mesh",
                format!("mesh {:?} does not exist", request.mesh),
            )],
        ));
    }
    let claims = DataplaneClaims {
        name: request.name,
        mesh: request.mesh.clone(),
        tags: request.tags,
        proxy_type,
        standard: Standard::new(atoll_auth::unix_now(), validity),
    };
    sign(
        &state,
        &user,
        Vec::new(),
        &Purpose::Dataplane(request.mesh),
        claims,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ZoneRequest {
    #[serde(default)]
    zone: String,
    scope: Option<Vec<String>>,
    valid_for: Option<String>,
}

pub(super) async fn zone(
    State(state): State<ApiState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    global_only(&state, "zone tokens")?;
    state.auth.authorize(&user, Action::GenerateZoneToken)?;
    let request: ZoneRequest = decode_request(&headers, &bytes)?;
    let mut causes = Vec::new();
    if !atoll_tls::is_zone_name(&request.zone) {
        causes.push(cause(
            "zone",
            format!(
                "{:?} must be a zone name: a DNS label of lower-case letters, digits and '-'",
                request.zone
            ),
        ));
    }
    let scope = request
        .scope
        .unwrap_or_else(|| ZONE_SCOPES.iter().map(|s| s.to_string()).collect());
    if scope.is_empty() {
        causes.push(cause("scope", "list at least one of ingress, egress"));
    }
    for (i, s) in scope.iter().enumerate() {
        if !ZONE_SCOPES.contains(&s.as_str()) {
            causes.push(cause(
                &format!("scope[{i}]"),
                format!("{s:?} must be ingress or egress"),
            ));
        }
    }
    let validity = valid_for(request.valid_for.as_deref(), DEFAULT_VALIDITY)
        .map_err(|c| causes.push(c))
        .unwrap_or_default();
    let claims = ZoneClaims {
        zone: request.zone,
        scope,
        standard: Standard::new(atoll_auth::unix_now(), validity),
    };
    sign(&state, &user, causes, &Purpose::Zone, claims)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    valid_for: Option<String>,
}

pub(super) async fn user(
    State(state): State<ApiState>,
    Extension(caller): Extension<User>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    global_only(&state, "user tokens")?;
    state.auth.authorize(&caller, Action::GenerateUserToken)?;
    let request: UserRequest = decode_request(&headers, &bytes)?;
    let mut causes = Vec::new();
    if request.name.trim().is_empty() {
        causes.push(cause("name", "must be set"));
    }
    for (i, group) in request.groups.iter().enumerate() {
        if group.trim().is_empty() {
            causes.push(cause(&format!("groups[{i}]"), "must not be empty"));
        }
    }
    let validity = valid_for(request.valid_for.as_deref(), USER_VALIDITY)
        .map_err(|c| causes.push(c))
        .unwrap_or_default();
    let claims = UserClaims {
        name: request.name,
        groups: request.groups,
        standard: Standard::new(atoll_auth::unix_now(), validity),
    };
    sign(&state, &caller, causes, &Purpose::User, claims)
}
