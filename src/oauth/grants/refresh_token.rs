use crate::crypto::hash_token;
use crate::domain::RequestInfo;
use crate::domain::ScopeSet;
use crate::oauth::claims::{ClaimsFor, Decided};
use crate::oauth::issuer::{Issue, IssueError, Rotation, TokenResponse};
use crate::oauth::{ErrorCode, OAuthError, Provider, Tenant};
use crate::rules::Protocol;
use crate::store::ClientRecord;

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

impl Provider {
    /// Refreshes (RFC 6749 §6) with rotation: each refresh token works once; presenting a
    /// rotated one revokes its whole family (Security BCP §4.14.2) — unless it is the same
    /// client retrying within the grace period a rotation whose answer it never got (the
    /// node that rotated died, the network dropped the response): then the successor that
    /// rotation made, still unused, is replaced by a new one. Within those seconds a thief
    /// holding the previous token could do the same; the legitimate client's next use of its
    /// own token then looks like reuse and revokes the family, so the window stays short.
    pub(super) async fn refresh_token_grant(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        refresh_token: &str,
        scope: Option<&str>,
        request: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.allows_grant(crate::domain::GrantType::RefreshToken) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the client may not use this grant",
            ));
        }
        let now = self.now();
        let hash = hash_token(refresh_token);
        let Some(record) = self.store().refresh_token(&tenant.id, &hash).await? else {
            return Err(invalid_grant("the refresh token is invalid"));
        };
        if record.client_id != client.client_id {
            return Err(invalid_grant("the refresh token is invalid"));
        }
        if self
            .store()
            .grant_is_revoked(&tenant.id, &record.grant_id)
            .await?
        {
            return Err(invalid_grant("the refresh token has been revoked"));
        }
        let grace = self.lifetimes().refresh_reuse_grace;
        let rotation = match (record.rotated_at, &record.successor_hash) {
            (None, _) => Rotation::From(&hash),
            (Some(at), Some(successor)) if grace > 0 && now - at <= grace => Rotation::Retry {
                previous: &hash,
                successor,
            },
            (Some(_), _) => {
                self.store().revoke_grant(&record.grant_id, now).await?;
                tracing::warn!(tenant = %tenant.name, client = %client.client_id, "rotated refresh token reused; family revoked");
                return Err(invalid_grant("the refresh token has already been used"));
            }
        };
        if now >= record.expires_at {
            return Err(invalid_grant("the refresh token has expired"));
        }
        let granted = record.scope.clone();
        let scope = match scope {
            None => granted.clone(),
            Some(s) => {
                let asked = ScopeSet::parse(s)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
                if !asked.is_subset(&granted) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "scope exceeds what was granted",
                    ));
                }
                asked
            }
        };
        let Some(user) = self.store().user(&tenant.id, &record.user_id).await? else {
            return Err(invalid_grant("the user no longer exists"));
        };
        // Roles are read again and the rules and actions run again: a permission taken away,
        // or a rule that now denies, stops at the next refresh.
        let decided = self
            .decide_claims(
                tenant,
                ClaimsFor {
                    user: &user,
                    client,
                    protocol: Protocol::Refresh,
                    request: request.clone(),
                    session_id: record.session_id.as_deref(),
                    auth_time: record.auth_time,
                    scope,
                    audience: record.audience.as_deref(),
                    ceiling: Some(&granted),
                    roles: None,
                },
                None,
            )
            .await?;
        let (extra, scope) = match decided {
            Decided::Tokens { claims, scope } => (claims, scope),
            Decided::Denied(message) => {
                return Err(OAuthError::new(ErrorCode::AccessDenied, message));
            }
            Decided::Failed(execution_id) => {
                return Err(OAuthError::new(
                    ErrorCode::ServerError,
                    format!(
                        "a rule or action failed; the tenant can look up execution {execution_id}"
                    ),
                ));
            }
            // Refreshes are not interactive: the runtime refuses a redirect there.
            Decided::Redirect { .. } => {
                return Err(OAuthError::internal(
                    "an action redirected during a refresh",
                ));
            }
        };
        let issued = self
            .issue_tokens(Issue {
                tenant,
                client,
                user: &user,
                scope: &scope,
                refresh_scope: &granted,
                audience: record.audience.as_deref(),
                auth_time: record.auth_time,
                nonce: None,
                grant_id: &record.grant_id,
                session_id: record.session_id.as_deref(),
                extra_claims: &extra,
                rotation,
            })
            .await;
        match issued {
            Ok(tokens) => Ok(tokens),
            Err(IssueError::AlreadyRotated) => {
                // Two uses of one refresh token: the second is a replay.
                self.store().revoke_grant(&record.grant_id, now).await?;
                Err(invalid_grant("the refresh token has already been used"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
