//! Lists: `GET /{plural}` and `GET /meshes/{mesh}/{plural}`, paged with `size`/`offset` and
//! filtered with `filter[label]=key:value`.

use std::collections::BTreeMap;

use atoll_model::{Kind, encode_value};
use atoll_store::ListQuery;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{ApiError, Cause};
use super::{ApiState, body, target};

const DEFAULT_SIZE: usize = 100;
const MAX_SIZE: usize = 1000;

pub(super) async fn list_all(
    State(state): State<ApiState>,
    Extension(user): Extension<atoll_auth::User>,
    headers: HeaderMap,
    Path(plural): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let kind = target::kind(&plural)?;
    list(
        &state,
        &user,
        &headers,
        kind,
        None,
        query.as_deref(),
        &format!("/{plural}"),
    )
    .await
}

pub(super) async fn list_in_mesh(
    State(state): State<ApiState>,
    Extension(user): Extension<atoll_auth::User>,
    headers: HeaderMap,
    Path((mesh, plural)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let kind = target::mesh_kind(&plural)?;
    let path = format!("/meshes/{mesh}/{plural}");
    list(
        &state,
        &user,
        &headers,
        kind,
        Some(mesh),
        query.as_deref(),
        &path,
    )
    .await
}

async fn list(
    state: &ApiState,
    user: &atoll_auth::User,
    headers: &HeaderMap,
    kind: Kind,
    mesh: Option<String>,
    raw_query: Option<&str>,
    path: &str,
) -> Result<Response, ApiError> {
    if target::is_secret(kind) {
        state
            .auth
            .authorize(user, atoll_auth::Action::ViewSecrets)?;
    }
    let (size, offset, labels) = parse_query(raw_query.unwrap_or_default())?;
    let query = ListQuery {
        kind: Some(kind),
        mesh,
        labels: labels.clone(),
        offset,
        size: Some(size),
    };
    let page = state.store.list(&query).await?;
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|s| encode_value(&super::readable(state, user, s.resource)))
        .collect();
    let next = page.next_offset.map(|next| {
        let filters: String = labels
            .iter()
            .map(|(k, v)| format!("&filter[label]={k}:{v}"))
            .collect();
        format!("{path}?size={size}&offset={next}{filters}")
    });
    let value = json!({ "total": page.total, "items": items, "next": next });
    Ok(body::render(headers, StatusCode::OK, &value, None))
}

fn parse_query(raw: &str) -> Result<(usize, usize, BTreeMap<String, String>), ApiError> {
    let mut size = DEFAULT_SIZE;
    let mut offset = 0;
    let mut labels = BTreeMap::new();
    let bad = |field: &str, message: String| {
        ApiError::bad_request(
            "invalid query parameter",
            vec![Cause {
                field: field.into(),
                message,
            }],
        )
    };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "size" => {
                size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_SIZE).contains(n))
                    .ok_or_else(|| bad("size", format!("must be a number from 1 to {MAX_SIZE}")))?
            }
            "offset" => {
                offset = value
                    .parse()
                    .map_err(|_| bad("offset", "must be a whole number".into()))?
            }
            "filter[label]" => {
                let (k, v) = value
                    .split_once(':')
                    .ok_or_else(|| bad("filter[label]", format!("{value:?} must be key:value")))?;
                labels.insert(k.to_string(), v.to_string());
            }
            _ => {}
        }
    }
    Ok((size, offset, labels))
}
