//! Token revocation (RFC 7009): revoking a refresh token or an access token revokes its grant.

use std::collections::HashMap;

use super::client_auth::PresentedCredentials;
use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::crypto::hash_token;

impl Provider {
    /// `POST /oauth/revoke`. Unknown or foreign tokens succeed silently (RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        authorization: Option<String>,
    ) -> Result<(), OAuthError> {
        let mut form: HashMap<String, String> = HashMap::new();
        for (k, v) in pairs {
            if form.insert(k.clone(), v).is_some() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    format!("parameter {k} is repeated"),
                ));
            }
        }
        let creds = PresentedCredentials {
            authorization,
            client_id: form.remove("client_id").filter(|v| !v.is_empty()),
            client_secret: form.remove("client_secret").filter(|v| !v.is_empty()),
        };
        let client = self.authenticate_client(tenant, &creds).await?;
        let token = form
            .remove("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is missing"))?;
        let now = self.now();
        if let Some(rt) = self
            .store()
            .refresh_token(&tenant.id, &hash_token(&token))
            .await?
        {
            if rt.client_id == client.client_id {
                self.store().revoke_grant(&rt.grant_id, now).await?;
            }
            return Ok(());
        }
        let keys = self.keys().tenant(tenant).await?;
        if let Ok(claims) = keys.verify(&token, "at+jwt", &tenant.issuer, None, Some(now))
            && claims.get("client_id").and_then(|c| c.as_str()) == Some(client.client_id.as_str())
            && let Some(gid) = claims.get("gid").and_then(|g| g.as_str())
        {
            self.store().revoke_grant(gid, now).await?;
        }
        Ok(())
    }
}
