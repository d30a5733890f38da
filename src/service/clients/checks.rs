//! Checks of a client's fields, shared by create and update.

use serde_json::{Map, Value};

use crate::domain::RedirectUri;
use crate::service::AdminError;

const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

pub(super) fn is_public_method(method: &str) -> Result<bool, AdminError> {
    match method {
        "client_secret_basic" | "client_secret_post" => Ok(false),
        "none" => Ok(true),
        other => Err(AdminError::Invalid(format!(
            "unsupported token_endpoint_auth_method {other:?}; use client_secret_basic, client_secret_post or none"
        ))),
    }
}

pub(super) fn check_grant_types(types: &[String], public: bool) -> Result<(), AdminError> {
    for t in types {
        if !GRANT_TYPES.contains(&t.as_str()) {
            return Err(AdminError::Invalid(format!(
                "unsupported grant type {t:?}; use authorization_code, refresh_token or client_credentials"
            )));
        }
    }
    if public && types.iter().any(|t| t == "client_credentials") {
        return Err(AdminError::Invalid(
            "public clients cannot use client_credentials".into(),
        ));
    }
    Ok(())
}

pub(super) fn check_metadata(v: &Value) -> Result<Map<String, Value>, AdminError> {
    if !v.is_object() {
        return Err(AdminError::Invalid(
            "client_metadata must be a JSON object".into(),
        ));
    }
    if v.to_string().len() > 8192 {
        return Err(AdminError::Invalid(
            "client_metadata is larger than 8 KiB".into(),
        ));
    }
    Ok(v.as_object().cloned().unwrap_or_default())
}

pub(super) fn check_callbacks(
    callbacks: &[String],
    grant_types: &[String],
) -> Result<Vec<String>, AdminError> {
    if callbacks.is_empty() && grant_types.iter().any(|g| g == "authorization_code") {
        return Err(AdminError::Invalid(
            "at least one callback URL is required for authorization_code".into(),
        ));
    }
    if callbacks.len() > 100 {
        return Err(AdminError::Invalid("at most 100 callback URLs".into()));
    }
    Ok(callbacks
        .iter()
        .map(|c| RedirectUri::parse(c).map(|r| r.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Post-logout redirect URLs follow the callbacks' rules (https except loopback, exact match).
pub(super) fn check_logout_urls(urls: &[String]) -> Result<Vec<String>, AdminError> {
    if urls.len() > 100 {
        return Err(AdminError::Invalid("at most 100 logout URLs".into()));
    }
    Ok(urls
        .iter()
        .map(|u| RedirectUri::parse(u).map(|r| r.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()?)
}
