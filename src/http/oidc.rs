//! Discovery, JWKS and userinfo.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use super::{AppState, CurrentTenant, JsonError};
use crate::oidc::discovery as discovery_document;

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
) -> Response {
    match state.provider.keys().tenant(&tenant).await {
        Ok(keys) => (
            [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            Json(discovery_document(&tenant, keys.algorithms())),
        )
            .into_response(),
        Err(e) => JsonError::internal(format!("{e:#}")).into_response(),
    }
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>, CurrentTenant(tenant): CurrentTenant) -> Response {
    match state.provider.keys().tenant(&tenant).await {
        Ok(keys) => (
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            Json(keys.jwks().clone()),
        )
            .into_response(),
        Err(e) => JsonError::internal(format!("{e:#}")).into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `GET /userinfo`.
pub async fn userinfo_get(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    headers: HeaderMap,
) -> Response {
    match state
        .provider
        .userinfo(&tenant, bearer(&headers).as_deref())
        .await
    {
        Ok(claims) => (no_store(), Json(claims)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /userinfo`: the token in the header or, form-encoded, in the body (RFC 6750 §2.2).
pub async fn userinfo_post(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let token = bearer(&headers).or_else(|| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    match state.provider.userinfo(&tenant, token.as_deref()).await {
        Ok(claims) => (no_store(), Json(claims)).into_response(),
        Err(e) => e.into_response(),
    }
}
