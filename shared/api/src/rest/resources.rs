//! Get, put and delete of one resource.

use atoll_auth::{Action, User};
use atoll_model::{Kind, Owner, Resource, Scope, Spec, decode_value, encode_value, labels};
use atoll_store::{Key, Precondition, PutOutcome};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::errors::{ApiError, Cause};
use super::{ApiState, Mode, body, target};

type Conn = Extension<User>;

/// Tells a client whether a put created, changed or left the resource as it was.
pub const OUTCOME_HEADER: &str = "x-atoll-outcome";

/// `?dryRun=true` on a put: validate and authorize as the write would, store nothing
/// (Terraform's provider checks a plan with it, before the mesh it names may exist).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct WriteQuery {
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
}

pub(super) async fn get_global(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = target::global_kind(&plural)?;
    get(&state, conn, &headers, Key::new(kind, None, &name)).await
}

pub(super) async fn get_in_mesh(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((mesh, plural, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let kind = target::mesh_kind(&plural)?;
    get(&state, conn, &headers, Key::new(kind, Some(&mesh), &name)).await
}

pub(super) async fn put_global(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    Query(query): Query<WriteQuery>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = target::global_kind(&plural)?;
    let key = Key::new(kind, None, &name);
    put(&state, conn, &headers, key, &bytes, query.dry_run).await
}

pub(super) async fn put_in_mesh(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((mesh, plural, name)): Path<(String, String, String)>,
    Query(query): Query<WriteQuery>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = target::mesh_kind(&plural)?;
    let key = Key::new(kind, Some(&mesh), &name);
    put(&state, conn, &headers, key, &bytes, query.dry_run).await
}

pub(super) async fn delete_global(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = target::global_kind(&plural)?;
    delete(&state, conn, &headers, Key::new(kind, None, &name)).await
}

pub(super) async fn delete_in_mesh(
    State(state): State<ApiState>,
    conn: Conn,
    headers: HeaderMap,
    Path((mesh, plural, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let kind = target::mesh_kind(&plural)?;
    delete(&state, conn, &headers, Key::new(kind, Some(&mesh), &name)).await
}

fn describe(key: &Key) -> String {
    match &key.mesh {
        Some(mesh) => format!("{} {:?} in mesh {mesh:?}", key.kind, key.name),
        None => format!("{} {:?}", key.kind, key.name),
    }
}

async fn get(
    state: &ApiState,
    conn: Conn,
    headers: &HeaderMap,
    key: Key,
) -> Result<Response, ApiError> {
    if target::is_secret(key.kind) {
        state.auth.authorize(&conn, Action::ViewSecrets)?;
    }
    let stored = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} not found", describe(&key))))?;
    Ok(body::render(
        headers,
        StatusCode::OK,
        &encode_value(&super::readable(state, &conn, stored.resource)),
        Some(stored.version),
    ))
}

async fn put(
    state: &ApiState,
    conn: Conn,
    headers: &HeaderMap,
    key: Key,
    bytes: &[u8],
    dry_run: bool,
) -> Result<Response, ApiError> {
    target::writable(&state.mode, key.kind)?;
    target::not_managed(key.kind, &key.name)?;
    state.auth.authorize(&conn, Action::AdminResources)?;
    let expect = body::if_match(headers)?.map_or(Precondition::Any, Precondition::Version);
    let document = body::parse(headers, bytes)?;
    let document = align_with_path(document, &key)?;
    let mut resource = decode_value(document).map_err(|err| ApiError::invalid(err.violations))?;
    credential_secret_is_usable(&resource)?;
    if dry_run {
        // Nothing is read from the store: a plan validates resources whose mesh does not
        // exist yet.
        let mut response = body::render(headers, StatusCode::OK, &encode_value(&resource), None);
        response.headers_mut().insert(
            OUTCOME_HEADER,
            axum::http::HeaderValue::from_static("valid"),
        );
        return Ok(response);
    }
    written_here(state, &key).await?;
    stamp_origin(&state.mode, &mut resource);
    if key.kind.scope() == Scope::Mesh
        && (state.mode == Mode::Global || key.kind.owner() == Owner::Either)
    {
        ensure_mesh_exists(state, key.mesh.as_deref().unwrap_or_default()).await?;
    }
    let initial = initial_policies(state, &resource);
    resource.meta.trace = atoll_telemetry::propagation::current();
    let outcome = state.store.put(resource, expect).await?;
    if matches!(outcome, PutOutcome::Created(_)) {
        for policy in initial {
            // A mesh is usable without them (they only allow traffic), so a failure is
            // logged, not turned into a failed creation the client would retry.
            if let Err(err) = state.store.put(policy, Precondition::Any).await {
                tracing::warn!(%err, mesh = %key.name, "cannot create the mesh's initial policies");
            }
        }
    }
    let (status, word) = match outcome {
        PutOutcome::Created(_) => (StatusCode::CREATED, "created"),
        PutOutcome::Updated(_) => (StatusCode::OK, "updated"),
        PutOutcome::Unchanged(_) => (StatusCode::OK, "unchanged"),
    };
    tracing::info!(resource = %describe(&key), status = status.as_u16(), version = outcome.stored().version, "put");
    let stored = outcome.stored();
    let mut response = body::render(
        headers,
        status,
        &encode_value(&super::readable(state, &conn, stored.resource.clone())),
        Some(stored.version),
    );
    response
        .headers_mut()
        .insert(OUTCOME_HEADER, axum::http::HeaderValue::from_static(word));
    Ok(response)
}

/// A type written on either side (policies) is changed only where it was written: a zone
/// holds read-only copies of the global's, the global read-only copies of each zone's.
async fn written_here(state: &ApiState, key: &Key) -> Result<(), ApiError> {
    if key.kind.owner() != Owner::Either {
        return Ok(());
    }
    let Some(existing) = state.store.get(key).await? else {
        return Ok(());
    };
    let labels = &existing.resource.meta.labels;
    let origin = labels.get(labels::ORIGIN).map(String::as_str);
    let problem = match (&state.mode, origin) {
        (Mode::Zone { .. }, Some("global")) => format!(
            "{} was applied on the global control plane and synced here: change or delete it there",
            describe(key)
        ),
        (Mode::Global, Some("zone")) => format!(
            "{} was applied in zone {:?} and synced here: change or delete it in that zone",
            describe(key),
            labels
                .get(labels::ZONE)
                .map(String::as_str)
                .unwrap_or_default()
        ),
        _ => return Ok(()),
    };
    Err(ApiError::bad_request(problem, Vec::new()))
}

/// Where a policy was written, as its labels say: in a zone, `kuma.io/origin: zone` and the
/// zone's name (which is what syncs it up to the global); on the global, neither. A document
/// cannot claim another origin.
fn stamp_origin(mode: &Mode, resource: &mut Resource) {
    if resource.kind().owner() != Owner::Either {
        return;
    }
    let labels = &mut resource.meta.labels;
    labels.remove(labels::ORIGIN);
    labels.remove(labels::ZONE);
    if let Mode::Zone { name } = mode {
        labels.insert(labels::ORIGIN.into(), "zone".into());
        labels.insert(labels::ZONE.into(), name.clone());
    }
}

/// The policies a new Mesh gets on the global unless `skipCreatingInitialPolicies` names them
/// (or `*`): a MeshTrafficPermission allowing all traffic, since with mTLS on and no
/// permission everything is denied (Kuma 2.x).
fn initial_policies(state: &ApiState, resource: &Resource) -> Vec<Resource> {
    let atoll_model::Spec::Mesh(mesh) = &resource.spec else {
        return Vec::new();
    };
    let skipped = |kind: &str| {
        mesh.skip_creating_initial_policies
            .iter()
            .any(|s| s == "*" || s == kind)
    };
    if state.mode != Mode::Global || skipped("MeshTrafficPermission") {
        return Vec::new();
    }
    let document = serde_json::json!({
        "type": "MeshTrafficPermission",
        "mesh": resource.meta.name,
        "name": format!("allow-all-{}", resource.meta.name),
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
        },
    });
    match decode_value(document) {
        Ok(policy) => vec![policy],
        Err(err) => {
            tracing::error!(?err, "the initial MeshTrafficPermission does not validate");
            Vec::new()
        }
    }
}

/// A secret whose name makes it a signing key or a public key must hold one: a key that
/// cannot be read would only show up later, as every token it should verify being refused.
fn credential_secret_is_usable(resource: &Resource) -> Result<(), ApiError> {
    use atoll_auth::names::Role;
    let (Spec::Secret(secret) | Spec::GlobalSecret(secret)) = &resource.spec else {
        return Ok(());
    };
    let role = atoll_auth::keyring::role_of(resource.kind(), resource.mesh(), resource.name());
    let data = secret.bytes().unwrap_or_default();
    let problem = match role {
        Some(Role::SigningKey(..)) => atoll_auth::keys::PrivateKey::from_pem(&data)
            .err()
            .map(|e| e.to_string()),
        Some(Role::PublicKey(..)) => atoll_auth::keys::PublicKey::from_pem(&data)
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ApiError::invalid(vec![atoll_model::Violation {
            field: "data".into(),
            message: format!(
                "{} is a signing key's name, so data must be a base64-encoded PEM key: {problem}",
                resource.name()
            ),
        }])),
    }
}

/// The path names the resource: the body may omit type, name and mesh, but must not contradict
/// them.
fn align_with_path(document: Value, key: &Key) -> Result<Value, ApiError> {
    let Value::Object(mut map) = document else {
        return Err(ApiError::bad_request(
            "the body must be a resource document (a mapping)",
            vec![Cause {
                field: String::new(),
                message: "expected a mapping".into(),
            }],
        ));
    };
    let mut causes = Vec::new();
    let mut expect = |field: &str, wanted: &str| match map.get(field) {
        None | Some(Value::Null) => {
            map.insert(field.to_string(), Value::from(wanted));
        }
        Some(Value::String(given)) if given == wanted => {}
        Some(given) => causes.push(Cause {
            field: field.to_string(),
            message: format!("{given} does not match {wanted:?} from the request path"),
        }),
    };
    expect("type", key.kind.name());
    expect("name", &key.name);
    if let Some(mesh) = &key.mesh {
        expect("mesh", mesh);
    }
    if !causes.is_empty() {
        return Err(ApiError::bad_request(
            "the body names another resource than the path",
            causes,
        ));
    }
    // Timestamps are the store's to set.
    map.remove("creationTime");
    map.remove("modificationTime");
    Ok(Value::Object(map))
}

async fn ensure_mesh_exists(state: &ApiState, mesh: &str) -> Result<(), ApiError> {
    if state
        .store
        .get(&Key::new(Kind::Mesh, None, mesh))
        .await?
        .is_none()
    {
        return Err(ApiError::bad_request(
            format!("mesh {mesh:?} does not exist"),
            vec![Cause {
                field: "mesh".into(),
                message: format!("mesh {mesh:?} does not exist; create it first"),
            }],
        ));
    }
    Ok(())
}

async fn delete(
    state: &ApiState,
    conn: Conn,
    headers: &HeaderMap,
    key: Key,
) -> Result<Response, ApiError> {
    target::writable(&state.mode, key.kind)?;
    target::not_managed(key.kind, &key.name)?;
    state.auth.authorize(&conn, Action::AdminResources)?;
    let expect = body::if_match(headers)?;
    written_here(state, &key).await?;
    if key.kind == Kind::Mesh {
        delete_mesh_contents(state, &key.name).await?;
    }
    let removed = state.store.delete(&key, expect).await?;
    tracing::info!(resource = %describe(&key), version = removed.version, "deleted");
    Ok(body::render(
        headers,
        StatusCode::OK,
        &Value::Object(Default::default()),
        None,
    ))
}

/// Deleting a mesh deletes what lives in it, as in Kuma.
async fn delete_mesh_contents(state: &ApiState, mesh: &str) -> Result<(), ApiError> {
    let query = atoll_store::ListQuery {
        mesh: Some(mesh.to_string()),
        ..Default::default()
    };
    let page = state.store.list(&query).await?;
    for stored in page.items {
        let key = Key::of(&stored.resource);
        match state.store.delete(&key, None).await {
            Ok(_) | Err(atoll_store::StoreError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
