//! `POST /oauth/token`, `POST /oauth/revoke` and `POST /oauth/introspect`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use super::{AppState, ClientAddress, CurrentTenant};
use crate::domain::GrantType;
use crate::domain::RequestInfo;
use crate::domain::usage::Metric;
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

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
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
    ClientAddress(ip): ClientAddress,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = match form_pairs(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // A bounded label: only grant types Wardstone issues for are counted.
    let grant_type = pairs
        .iter()
        .find(|(k, _)| k == "grant_type")
        .and_then(|(_, v)| GrantType::parse(v));
    let request = RequestInfo {
        ip,
        method: "POST".into(),
        hostname: header_text(&headers, header::HOST),
        user_agent: header_text(&headers, header::USER_AGENT),
        language: super::first_language(&headers),
        ..Default::default()
    };
    match state
        .provider
        .token(&tenant, pairs, authorization(&headers), &request)
        .await
    {
        Ok(tokens) => {
            if let Some(g) = grant_type {
                state.metrics.token_issued(g.as_str());
                state.provider.count_usage(&tenant, Metric::Grant(g));
            }
            (no_store(), Json(tokens)).into_response()
        }
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

/// `POST /oauth/introspect` (RFC 7662).
pub async fn introspect(
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
        .introspect(&tenant, pairs, authorization(&headers))
        .await
    {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(e) => e.into_response(),
    }
}
