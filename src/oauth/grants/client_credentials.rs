use serde_json::json;

use crate::domain::ScopeSet;
use crate::domain::management;
use crate::oauth::issuer::TokenResponse;
use crate::oauth::{ErrorCode, OAuthError, Provider, Tenant};
use crate::store::ClientRecord;

impl Provider {
    /// Machine-to-machine tokens (RFC 6749 §4.4): the client must have a grant for the
    /// requested API; `scope` may narrow what the grant allows. No ID or refresh token.
    pub(super) async fn client_credentials_grant(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() || !client.allows_grant("client_credentials") {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the client may not use client_credentials",
            ));
        }
        let Some(audience) = audience else {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "audience is missing: name the API the token is for",
            ));
        };
        let key = if audience == management::url(tenant) {
            management::AUDIENCE
        } else {
            audience
        };
        let Some(grant) = self
            .store()
            .client_grant_for(&tenant.id, &client.client_id, key)
            .await?
        else {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the client is not allowed to access this API",
            ));
        };
        let allowed: ScopeSet = grant.scopes.0.into_iter().collect();
        let granted = match scope {
            None => allowed,
            Some(s) => {
                let asked = ScopeSet::parse(s)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
                if !asked.is_subset(&allowed) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "scope exceeds what the client is granted",
                    ));
                }
                asked
            }
        };
        let now = self.now();
        let lifetime = self.lifetimes().access_token;
        let keys = self.keys().tenant(tenant).await?;
        let claims = json!({
            "iss": tenant.issuer,
            "sub": management::client_subject(&client.client_id),
            "aud": audience,
            "exp": now + lifetime,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": client.client_id,
            "scope": granted.to_string(),
            "gty": "client-credentials",
        });
        Ok(TokenResponse {
            access_token: keys.signer().sign("at+jwt", &claims),
            token_type: "Bearer",
            expires_in: lifetime,
            scope: granted.to_string(),
            id_token: None,
            refresh_token: None,
        })
    }
}
