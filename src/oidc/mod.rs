//! OpenID Connect on top of OAuth: discovery, JWKS and userinfo. ID tokens are minted by
//! [`crate::oauth::issuer`].

pub mod logout;

use serde_json::{Value, json};

use crate::domain::ScopeSet;
use crate::oauth::introspect::Inactive;
use crate::oauth::issuer::profile_claims;
use crate::oauth::scopes::OIDC_SCOPES;
use crate::oauth::{Provider, Tenant};

/// Why a userinfo request was refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No token presented: 401 with a bare challenge.
    #[error("no access token")]
    Missing,
    /// Bad, expired or revoked token: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(String),
    /// The token lacks the `openid` scope: 403 `insufficient_scope`.
    #[error("the access token lacks the openid scope")]
    InsufficientScope,
    /// Our failure.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The discovery document (OpenID Connect Discovery 1.0 §3): only what is implemented.
/// `algorithms` are those of the tenant's published keys, the current one first.
pub fn discovery(tenant: &Tenant, algorithms: &[&str]) -> Value {
    let scopes: Vec<&str> = OIDC_SCOPES.iter().map(|(s, _)| *s).collect();
    json!({
        "issuer": tenant.issuer,
        "authorization_endpoint": tenant.url("/authorize"),
        "token_endpoint": tenant.url("/oauth/token"),
        "userinfo_endpoint": tenant.url("/userinfo"),
        "jwks_uri": tenant.url("/.well-known/jwks.json"),
        "revocation_endpoint": tenant.url("/oauth/revoke"),
        "introspection_endpoint": tenant.url("/oauth/introspect"),
        "end_session_endpoint": tenant.url("/oidc/logout"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": crate::domain::GrantType::ALL.map(|g| g.as_str()),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "amr",
            "name", "given_name", "family_name", "nickname", "picture", "preferred_username",
            "updated_at", "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}

impl Provider {
    /// `GET`/`POST /userinfo` with the bearer token.
    pub async fn userinfo(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
    ) -> Result<Value, BearerError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(BearerError::Missing)?;
        let userinfo = tenant.url("/userinfo");
        let (claims, user) = match self
            .active_access_token(tenant, token, Some(&userinfo))
            .await
        {
            Ok(found) => found,
            Err(Inactive::Internal(e)) => return Err(BearerError::Internal(e)),
            Err(e) => return Err(BearerError::InvalidToken(e.to_string())),
        };
        let scope = ScopeSet::parse(
            claims
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        if !scope.contains("openid") {
            return Err(BearerError::InsufficientScope);
        }
        // Userinfo is about a user: a machine token has none.
        let user = user.ok_or_else(|| BearerError::InvalidToken("the token has no user".into()))?;
        let mut out = profile_claims(&user, &scope);
        out.insert("sub".into(), json!(user.user_id));
        Ok(Value::Object(out))
    }
}
