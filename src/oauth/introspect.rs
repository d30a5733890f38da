//! Token introspection (RFC 7662), and the one check of an access token that introspection and
//! userinfo share: signature, type, issuer, expiry, and that its grant, user and client still
//! stand. An access token is a JWT that APIs verify alone, so revocation reaches them through
//! here (and short lifetimes, see `token_lifetime`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::client_auth::PresentedCredentials;
use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::crypto::hash_token;
use crate::store::UserRecord;

/// Why an access token is not active; never shown beyond "inactive" or `invalid_token`.
#[derive(Debug, thiserror::Error)]
pub enum Inactive {
    /// Bad signature, unknown key, wrong type, issuer or audience, or expired.
    #[error("{0}")]
    Invalid(String),
    /// Its grant was revoked (code replay, refresh reuse, revocation, password change,
    /// blocking) or its user or client is gone.
    #[error("the access token has been revoked")]
    Revoked,
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Provider {
    /// The claims of an access token that is active now, and for a user's token its user.
    /// `audience`, when given, must be one of its audiences.
    pub async fn active_access_token(
        &self,
        tenant: &Tenant,
        token: &str,
        audience: Option<&str>,
    ) -> Result<(Map<String, Value>, Option<UserRecord>), Inactive> {
        let keys = self.keys().tenant(tenant).await?;
        let claims = keys
            .verify(token, "at+jwt", &tenant.issuer, audience, Some(self.now()))
            .map_err(|e| Inactive::Invalid(e.to_string()))?;
        let Value::Object(claims) = claims else {
            return Err(Inactive::Invalid("claims are not an object".into()));
        };
        let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
        let store = self.store();
        match claims.get("gid").and_then(Value::as_str) {
            // A user's token: its grant must stand, and its user must exist and be allowed in.
            Some(gid) => {
                let user = store
                    .user_of_live_grant(&tenant.id, gid, text("sub"))
                    .await
                    .map_err(anyhow::Error::from)?
                    .ok_or(Inactive::Revoked)?;
                Ok((claims, Some(user)))
            }
            // A machine token: its client must still exist.
            None => {
                if store
                    .client(&tenant.id, text("client_id"))
                    .await
                    .map_err(anyhow::Error::from)?
                    .is_none()
                {
                    return Err(Inactive::Revoked);
                }
                Ok((claims, None))
            }
        }
    }

    /// `POST /oauth/introspect`. Any confidential client of the tenant may introspect access
    /// tokens (it is how an API asks); a refresh token is described only to the client it was
    /// issued to. Anything else is `{"active": false}`.
    pub async fn introspect(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        authorization: Option<String>,
    ) -> Result<Value, OAuthError> {
        let mut form: HashMap<String, String> = HashMap::new();
        let mut repeated = None;
        for (k, v) in pairs {
            if form.insert(k.clone(), v).is_some() && repeated.is_none() {
                repeated = Some(k);
            }
        }
        let creds = PresentedCredentials {
            authorization,
            client_id: form.remove("client_id").filter(|v| !v.is_empty()),
            client_secret: form.remove("client_secret").filter(|v| !v.is_empty()),
        };
        let client = self.authenticate_client(tenant, &creds).await?;
        if client.is_public() {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "public clients cannot introspect tokens",
            ));
        }
        if let Some(k) = repeated {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("parameter {k} is repeated"),
            ));
        }
        let token = form
            .remove("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is missing"))?;
        let inactive = json!({"active": false});
        if token.len() > 16 * 1024 {
            return Ok(inactive);
        }
        // A JWT has two dots; a refresh token is an opaque random string.
        if token.split('.').count() == 3 {
            return match self.active_access_token(tenant, &token, None).await {
                Ok((mut claims, _)) => {
                    claims.insert("active".into(), json!(true));
                    claims.insert("token_type".into(), json!("Bearer"));
                    Ok(Value::Object(claims))
                }
                Err(Inactive::Internal(e)) => Err(e.into()),
                Err(_) => Ok(inactive),
            };
        }
        let now = self.now();
        let Some(rt) = self
            .store()
            .refresh_token(&tenant.id, &hash_token(&token))
            .await?
        else {
            return Ok(inactive);
        };
        let user = self.store().user(&tenant.id, &rt.user_id).await?;
        let active = rt.client_id == client.client_id
            && rt.rotated_at.is_none()
            && now < rt.expires_at
            && user.is_some_and(|u| !*u.blocked)
            && !self
                .store()
                .grant_is_revoked(&tenant.id, &rt.grant_id)
                .await?;
        if !active {
            return Ok(inactive);
        }
        Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": rt.scope,
            "client_id": rt.client_id,
            "sub": rt.user_id,
            "iss": tenant.issuer,
            "iat": rt.created_at,
            "exp": rt.expires_at,
        }))
    }
}
