//! Checks of a client's fields, shared by create and update.

use serde_json::{Map, Value};

use crate::domain::{GrantType, RedirectUri};
use crate::service::AdminError;

pub(super) fn is_public_method(method: &str) -> Result<bool, AdminError> {
    match method {
        "client_secret_basic" | "client_secret_post" => Ok(false),
        "none" => Ok(true),
        other => Err(AdminError::Invalid(format!(
            "unsupported token_endpoint_auth_method {other:?}; use client_secret_basic, client_secret_post or none"
        ))),
    }
}

/// The grant types named, parsed: only those Wardstone issues, and no client_credentials for a
/// public client.
pub(super) fn check_grant_types(
    types: &[String],
    public: bool,
) -> Result<Vec<GrantType>, AdminError> {
    let parsed = types
        .iter()
        .map(|t| {
            GrantType::parse(t).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "unsupported grant type {t:?}; use authorization_code, refresh_token or client_credentials"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if public && parsed.contains(&GrantType::ClientCredentials) {
        return Err(AdminError::Invalid(
            "public clients cannot use client_credentials".into(),
        ));
    }
    Ok(parsed)
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
    grant_types: &[GrantType],
) -> Result<Vec<String>, AdminError> {
    if callbacks.is_empty() && grant_types.contains(&GrantType::AuthorizationCode) {
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
