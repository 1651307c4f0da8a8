//! Who is calling the API and whether they may: every request is given a [`User`] before it
//! reaches a handler (a user token, a pinned client certificate, the local admin, or the
//! anonymous user), and handlers ask [`ApiAuth::authorize`] for the action they perform.

use atoll_auth::access::ADMIN_GROUP;
use atoll_auth::{Action, Credentials, StaticAccess, TokenError, User};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Connection;
use crate::rest::{ApiError, ApiState};

/// How the API authenticates and authorizes.
#[derive(Clone)]
pub struct ApiAuth {
    /// The keys user tokens are checked against.
    pub credentials: Credentials,
    pub access: StaticAccess,
    /// Plain HTTP from this machine acts as the admin (`KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN`).
    pub localhost_is_admin: bool,
}

impl ApiAuth {
    /// The caller of a request: a presented token decides (and an invalid one is refused
    /// rather than treated as anonymous), then a pinned client certificate, then localhost.
    pub fn identify(
        &self,
        connection: Option<&Connection>,
        headers: &HeaderMap,
    ) -> Result<User, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header must be `Bearer <user token>`")
                })?;
            return match self
                .credentials
                .current()
                .verify_user(token, atoll_auth::unix_now())
            {
                Ok(claims) => Ok(User::authenticated(claims.name, &claims.groups)),
                Err(TokenError::NotReady) => {
                    Err(ApiError::unavailable(TokenError::NotReady.to_string()))
                }
                Err(err) => {
                    metrics::counter!("atoll_api_authentication_failures_total").increment(1);
                    Err(ApiError::unauthorized(format!(
                        "the user token is refused: {err}"
                    )))
                }
            };
        }
        if let Some(name) = connection.and_then(|c| c.client_certificate.as_ref()) {
            return Ok(User::authenticated(
                name.clone(),
                &[ADMIN_GROUP.to_string()],
            ));
        }
        if self.localhost_is_admin && connection.is_some_and(Connection::is_local_plaintext) {
            return Ok(User::admin());
        }
        Ok(User::anonymous())
    }

    /// Refuses `user` an `action` the access rules do not allow: 401 when they presented no
    /// credential, 403 when theirs is not enough.
    pub fn authorize(&self, user: &User, action: Action) -> Result<(), ApiError> {
        if self.access.allows(user, action) {
            return Ok(());
        }
        if user.is_anonymous() {
            return Err(ApiError::unauthorized(format!(
                "to {} you need a credential: send `Authorization: Bearer <user token>` (the admin token is in the global's work directory, file admin-token)",
                action.describe()
            )));
        }
        Err(ApiError::forbidden(format!(
            "user {:?} (groups {}) may not {}; KUMA_ACCESS_STATIC_{}_USERS or _GROUPS decides who may",
            user.name,
            user.groups.join(", "),
            action.describe(),
            action.option()
        )))
    }

    /// Whether `user` may see secrets and key material.
    pub fn may_view_secrets(&self, user: &User) -> bool {
        self.access.allows(user, Action::ViewSecrets)
    }
}

/// Middleware: attaches the caller's [`User`] to the request, or answers 401.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let connection = request.extensions().get::<Connection>().cloned();
    match state.auth.identify(connection.as_ref(), request.headers()) {
        Ok(user) => {
            tracing::Span::current().record("user", user.name.as_str());
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}
