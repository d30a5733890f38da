use serde_json::json;

use crate::domain::RequestInfo;
use crate::domain::ScopeSet;
use crate::domain::management;
use crate::oauth::issuer::TokenResponse;
use crate::oauth::{ErrorCode, OAuthError, Provider, Tenant};
use crate::rules::{ClientCredentialsInput, TriggerOutcome};
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
        request: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() || !client.allows_grant(crate::domain::GrantType::ClientCredentials) {
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
        // The tenant's credentials-exchange actions — never for its own Management API, so a
        // broken action cannot lock the tenant out of the API that fixes it.
        let mut custom = serde_json::Map::new();
        if key != management::AUDIENCE {
            let outcome = self
                .rules()
                .credentials_exchange(ClientCredentialsInput {
                    tenant_id: &tenant.id,
                    tenant_name: &tenant.name,
                    rules_generation: tenant.rules_generation,
                    client,
                    audience,
                    scope: &granted,
                    request: request.clone(),
                    now,
                })
                .await?;
            match outcome {
                TriggerOutcome::Allow { claims, .. } => {
                    if let Some(access) = claims.get("access_token").and_then(|a| a.as_object()) {
                        custom = access.clone();
                    }
                }
                TriggerOutcome::Deny { message, code } => {
                    let code = match code.as_deref() {
                        Some("invalid_scope") => ErrorCode::InvalidScope,
                        Some("invalid_request") => ErrorCode::InvalidRequest,
                        _ => ErrorCode::ServerError,
                    };
                    return Err(OAuthError::new(code, message));
                }
                TriggerOutcome::Fail { execution_id } => {
                    return Err(OAuthError::new(
                        ErrorCode::ServerError,
                        format!(
                            "an action failed; the tenant can look up execution {execution_id}"
                        ),
                    ));
                }
                TriggerOutcome::Redirect { .. } => {
                    return Err(OAuthError::internal(
                        "a credentials-exchange action redirected",
                    ));
                }
            }
        }
        let lifetime = self.lifetimes().access_token;
        let keys = self.keys().tenant(tenant).await?;
        let mut claims = json!({
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
        if let Some(map) = claims.as_object_mut() {
            for (name, value) in custom {
                // Restricted names never reach here (the action's claims are checked), and
                // nothing replaces a claim the server set.
                map.entry(name).or_insert(value);
            }
        }
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
