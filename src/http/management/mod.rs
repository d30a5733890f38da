//! The Management API (`{issuer}/api/v2`, Auth0-shaped): authentication by a Management API
//! access token of the same tenant, scope checks, JSON errors, and the OpenAPI document
//! generated from the handlers' annotations. Handlers only parse, check scope and call
//! [`crate::service::Admin`] — the same functions the CLI calls.

mod actions;
mod clients;
mod keys;
mod logs;
mod resource_servers;
mod roles;
mod rules;
mod tenants;
mod users;

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::{AppState, CurrentTenant};
use crate::domain::{ScopeSet, management};
use crate::oauth::Tenant;
use crate::service::{Admin, AdminError};

/// A Management API error: `{"statusCode","error","message","errorCode"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    code: &'static str,
    challenge: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code,
            challenge: None,
        }
    }

    fn unauthorized(message: &str, error: Option<&str>) -> Self {
        let challenge = match error {
            Some(e) => format!(
                "Bearer realm=\"wardstone\", error=\"{e}\", error_description=\"{message}\""
            ),
            None => "Bearer realm=\"wardstone\"".to_string(),
        };
        ApiError {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => Self::new(StatusCode::BAD_REQUEST, "invalid_body", m),
            AdminError::InvalidModule(m) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_module",
                format!("rejected module: {m}"),
            ),
            AdminError::UnknownTenant(_) => {
                Self::new(StatusCode::NOT_FOUND, "inexistent_tenant", "unknown tenant")
            }
            AdminError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "inexistent_resource", m),
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AdminError::Busy(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", m),
            AdminError::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            AdminError::LimitReached(m) => Self::new(StatusCode::FORBIDDEN, "too_many_entities", m),
            AdminError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "management API failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "errorCode": self.code,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        response
    }
}

/// JSON body whose rejection (malformed, wrong type, too large) is an [`ApiError`].
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "send the body as application/json",
            )),
            Err(r) => {
                let status = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    r.status()
                } else {
                    StatusCode::BAD_REQUEST
                };
                Err(ApiError::new(status, "invalid_body", r.body_text()))
            }
        }
    }
}

/// Query string whose rejection is an [`ApiError`].
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|r: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query_string",
                    r.body_text(),
                )
            })
    }
}

/// A caller authenticated with a Management API token of this tenant.
pub struct Caller {
    tenant: Tenant,
    scopes: ScopeSet,
    admin: Admin,
}

impl Caller {
    /// Whether the token carries `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Changing the Management API client itself (its secret, callbacks, existence) is worth
    /// every scope it holds: a narrower token must not be able to take it over.
    pub async fn guard_management_client(&self, client_id: &str) -> Result<(), ApiError> {
        if self
            .admin
            .is_management_client(&self.tenant, client_id)
            .await?
            && !management::SCOPES.iter().all(|s| self.scopes.contains(s))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "changing the Management API client requires every Management API scope",
            ));
        }
        Ok(())
    }

    /// Fails with 403 unless the token may also read the rule settings: code a caller uploads
    /// runs with every setting in `configuration` and can log or send it, so writing rule code
    /// is as strong as `read:rules_configs` and takes both scopes (SPEC §17).
    pub fn require_code_scope(&self) -> Result<(), ApiError> {
        if self.scopes.contains("read:rules_configs") {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Insufficient scope, expected: read:rules_configs (rule code can read every rule setting, so changing it also takes read:rules_configs)",
        ))
    }

    /// Fails with 403 unless the token carries `scope`.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("Insufficient scope, expected: {scope}"),
            ))
        }
    }

    /// The tenant, as resolved for this request.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The service layer.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let tenant = CurrentTenant::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::new(StatusCode::NOT_FOUND, "inexistent_tenant", "unknown tenant")
            })?
            .0;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string())
            .ok_or_else(|| ApiError::unauthorized("Missing authentication", None))?;
        let keys = state
            .provider
            .keys()
            .tenant(&tenant)
            .await
            .map_err(AdminError::Internal)?;
        let audience = management::url(&tenant);
        let claims = keys
            .verify(
                &token,
                "at+jwt",
                &tenant.issuer,
                Some(&audience),
                Some(state.provider.now()),
            )
            .map_err(|_| ApiError::unauthorized("Invalid token", Some("invalid_token")))?;
        // Only machine tokens from client_credentials manage a tenant, never a user's token:
        // `gty` is restricted (no rule can set it), and the subject must be a client of this
        // tenant that holds the Management API grant now (a deleted or narrowed grant takes
        // effect at once, not when old tokens expire).
        let invalid = || ApiError::unauthorized("Invalid token", Some("invalid_token"));
        if claims.get("gty").and_then(|g| g.as_str()) != Some("client-credentials") {
            return Err(invalid());
        }
        let client_id = claims
            .get("client_id")
            .and_then(|c| c.as_str())
            .ok_or_else(invalid)?;
        if claims.get("sub").and_then(|s| s.as_str())
            != Some(management::client_subject(client_id).as_str())
        {
            return Err(invalid());
        }
        let grant = state
            .provider
            .store()
            .client_grant_for(&tenant.id, client_id, management::AUDIENCE)
            .await
            .map_err(|e| AdminError::Internal(e.into()))?
            .ok_or_else(invalid)?;
        let granted: ScopeSet = grant.scopes.0.into_iter().collect();
        let scopes = ScopeSet::parse(
            claims
                .get("scope")
                .and_then(|s| s.as_str())
                .unwrap_or_default(),
        )
        .unwrap_or_default()
        .filter(|s| granted.contains(s));
        let admin = state.admin.clone();
        Ok(Caller {
            tenant,
            scopes,
            admin,
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Wardstone Management API", version = "2", description = "Manage a tenant's applications, users, APIs and rules. Authenticate with an access token from the tenant's token endpoint (client_credentials, audience {issuer}/api/v2/)."),
    modifiers(&SecurityAddon),
    tags(
        (name = "clients", description = "Applications (OAuth clients) and their grants to APIs"),
        (name = "users", description = "Users"),
        (name = "resource-servers", description = "APIs and their scopes"),
        (name = "actions", description = "Auth0 Actions: drafts, deploys, versions, trigger bindings, tests"),
        (name = "roles", description = "Roles, their API permissions, and users' roles (RBAC)"),
        (name = "keys", description = "Signing keys: rotation and revocation"),
        (name = "tenants", description = "Tenant settings: the hosts rules may call"),
        (name = "rules", description = "WebAssembly rules and their settings"),
        (name = "logs", description = "Rule executions"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The Management API routes (relative to `{issuer}/api/v2`) and their OpenAPI document.
pub fn router() -> (axum::Router<AppState>, Arc<utoipa::openapi::OpenApi>) {
    let small = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(clients::routes())
        .merge(users::routes())
        .merge(resource_servers::routes())
        .merge(roles::routes())
        .merge(keys::routes())
        .merge(tenants::routes())
        .merge(logs::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));
    // Rule uploads carry a module of up to 4 MiB (base64 or WAT).
    let rules = rules::routes().layer(axum::extract::DefaultBodyLimit::max(8 << 20));
    // An action's source is at most 100 KB, with secrets and an event beside it.
    let actions = actions::routes().layer(axum::extract::DefaultBodyLimit::max(512 << 10));
    let (router, api) = small.merge(rules).merge(actions).split_for_parts();
    let router = router.route("/openapi.json", axum::routing::get(openapi));
    (router, Arc::new(api))
}

async fn openapi(State(state): State<AppState>, CurrentTenant(tenant): CurrentTenant) -> Response {
    let mut doc = (*state.openapi).clone();
    doc.servers = Some(vec![utoipa::openapi::Server::new(tenant.url("/api/v2"))]);
    Json(doc).into_response()
}

/// `page` / `per_page` query parameters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    /// Page number, from 0.
    page: Option<i64>,
    /// Items per page, 1 to 100 (default 50).
    per_page: Option<i64>,
}
