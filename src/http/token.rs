//! `POST /oauth/token` and `POST /oauth/revoke`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use super::{AppState, CurrentTenant};
use crate::oauth::{ErrorCode, OAuthError};

fn form_pairs(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = match form_pairs(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match state
        .provider
        .token(&tenant, pairs, authorization(&headers))
        .await
    {
        Ok(tokens) => (no_store(), Json(tokens)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth/revoke` (RFC 7009).
pub async fn revoke(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = match form_pairs(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match state
        .provider
        .revoke(&tenant, pairs, authorization(&headers))
        .await
    {
        Ok(()) => (no_store(), "").into_response(),
        Err(e) => e.into_response(),
    }
}
