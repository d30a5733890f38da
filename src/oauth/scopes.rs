//! Which scopes exist for a request: the OIDC ones plus those of the requested API.

use crate::domain::ScopeSet;
use crate::store::ScopeDefinition;

/// The OpenID Connect scopes Wardstone supports, with what the consent page says of them.
pub const OIDC_SCOPES: &[(&str, &str)] = &[
    ("openid", "Sign you in with your account"),
    ("profile", "Read your profile: name, nickname and picture"),
    ("email", "Read your email address"),
    (
        "offline_access",
        "Stay connected while you are away (refresh tokens)",
    ),
];

/// Whether `scope` is one of the OpenID Connect scopes.
pub fn is_oidc_scope(scope: &str) -> bool {
    OIDC_SCOPES.iter().any(|(v, _)| *v == scope)
}

/// A scope the consent page lists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScopeLine {
    /// The scope token.
    pub value: String,
    /// What it allows.
    pub description: String,
}

/// Keeps the requested scopes that exist (OIDC scopes and the API's own); unknown scopes are
/// dropped, as RFC 6749 §3.3 allows, and the token response says what was granted.
pub fn grantable(requested: &ScopeSet, api_scopes: &[ScopeDefinition]) -> ScopeSet {
    requested.filter(|s| is_oidc_scope(s) || api_scopes.iter().any(|d| d.value == s))
}

/// Lines for the consent page, OIDC scopes first.
pub fn describe(scopes: &ScopeSet, api_scopes: &[ScopeDefinition]) -> Vec<ScopeLine> {
    let mut lines = Vec::new();
    for (value, description) in OIDC_SCOPES {
        if scopes.contains(value) {
            lines.push(ScopeLine {
                value: value.to_string(),
                description: description.to_string(),
            });
        }
    }
    for d in api_scopes {
        if scopes.contains(&d.value) {
            lines.push(ScopeLine {
                value: d.value.clone(),
                description: d.description.clone(),
            });
        }
    }
    lines
}
