//! Error rendering: RFC 6749 JSON for the token endpoint, RFC 6750 challenges for bearer
//! endpoints, a small JSON body elsewhere. Internal causes are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::oauth::{ErrorCode, OAuthError};
use crate::oidc::BearerError;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %cause, "internal error");
        }
        let status = match self.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut response = (status, no_store(), Json(body)).into_response();
        if self.code == ErrorCode::InvalidClient && self.used_basic_auth {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"wardstone\""),
            );
        }
        response
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match &self {
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"wardstone\"".to_string(),
                json!({"error": "invalid_request", "error_description": "no access token"}),
            ),
            BearerError::InvalidToken(why) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer realm=\"wardstone\", error=\"invalid_token\", error_description=\"{}\"",
                    why.replace(['"', '\\'], "'")
                ),
                json!({"error": "invalid_token", "error_description": why}),
            ),
            BearerError::InsufficientScope => (
                StatusCode::FORBIDDEN,
                "Bearer realm=\"wardstone\", error=\"insufficient_scope\", scope=\"openid\""
                    .to_string(),
                json!({"error": "insufficient_scope", "error_description": "the access token lacks the openid scope"}),
            ),
            BearerError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "userinfo failed");
                return JsonError::status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
                .into_response();
            }
        };
        let mut response = (status, no_store(), Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// A JSON error outside the OAuth endpoints (unknown tenant, health).
#[derive(Debug)]
pub struct JsonError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl JsonError {
    /// An error with a status.
    pub fn status(status: StatusCode, error: &'static str, description: &str) -> Self {
        JsonError {
            status,
            error,
            description: description.to_string(),
        }
    }

    /// 404.
    pub fn not_found(description: &str) -> Self {
        Self::status(StatusCode::NOT_FOUND, "not_found", description)
    }

    /// 500, logging the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}
