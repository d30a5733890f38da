use crate::crypto::{ct_eq, hash_token, sha256_b64url};
use crate::oauth::authorize::is_pkce_value;
use crate::oauth::issuer::{Issue, Rotation, TokenResponse};
use crate::oauth::{ErrorCode, OAuthError, Provider, Tenant};
use crate::store::{ClientRecord, CodeRecord, RedeemOutcome};

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

impl Provider {
    /// Exchanges a code (RFC 6749 §4.1.3). A replayed code revokes what it issued (§4.1.2).
    pub(super) async fn authorization_code_grant(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        if !client.allows_grant(crate::domain::GrantType::AuthorizationCode) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the client may not use this grant",
            ));
        }
        let now = self.now();
        let code_hash = hash_token(code);
        let Some(redirect) = redirect_uri else {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "redirect_uri is missing",
            ));
        };
        // Every SQLite statement is a hop to its connection's thread: the valid case checks
        // and consumes the code in one statement; any other case is answered below.
        let challenge = code_verifier
            .filter(|v| is_pkce_value(v))
            .map(|v| sha256_b64url(v.as_bytes()));
        if code_verifier.is_none() || challenge.is_some() {
            let redeemed = self
                .store()
                .redeem_code_if_valid(
                    &tenant.id,
                    &code_hash,
                    &client.client_id,
                    redirect,
                    challenge.as_deref(),
                    now,
                )
                .await?;
            if let Some(record) = redeemed {
                return self.issue_for_code(tenant, client, record).await;
            }
        }
        let Some(record) = self.store().code(&tenant.id, &code_hash).await? else {
            return Err(invalid_grant("the code is invalid"));
        };
        // A code presented by another client is not this client's business: refuse without
        // touching it, so a foreign client cannot burn a victim's code.
        if record.client_id != client.client_id {
            return Err(invalid_grant("the code is invalid"));
        }
        if record.consumed_at.is_some() {
            self.store().revoke_grant(&record.grant_id, now).await?;
            tracing::warn!(tenant = %tenant.name, client = %client.client_id, "authorization code replayed; grant revoked");
            return Err(invalid_grant("the code has already been used"));
        }
        if now >= record.expires_at {
            return Err(invalid_grant("the code has expired"));
        }
        if redirect != record.redirect_uri {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&record.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if !is_pkce_value(verifier)
                    || !ct_eq(
                        sha256_b64url(verifier.as_bytes()).as_bytes(),
                        challenge.as_bytes(),
                    )
                {
                    return Err(invalid_grant(
                        "code_verifier does not match the code_challenge",
                    ));
                }
            }
            (Some(_), None) => return Err(invalid_grant("code_verifier is missing")),
            (None, Some(_)) => {
                return Err(invalid_grant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        if self.store().redeem_code(&code_hash, now).await? == RedeemOutcome::AlreadyUsed {
            self.store().revoke_grant(&record.grant_id, now).await?;
            return Err(invalid_grant("the code has already been used"));
        }
        self.issue_for_code(tenant, client, record).await
    }

    /// Issues the tokens of a code just redeemed.
    async fn issue_for_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        record: CodeRecord,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(user) = self.store().user(&tenant.id, &record.user_id).await? else {
            return Err(invalid_grant("the user no longer exists"));
        };
        let scope = record.scope.clone();
        let extra = &record.claims.0;
        Ok(self
            .issue_tokens(Issue {
                tenant,
                client,
                user: &user,
                scope: &scope,
                refresh_scope: &scope,
                audience: record.audience.as_deref(),
                auth_time: record.auth_time,
                nonce: record.nonce.as_deref(),
                grant_id: &record.grant_id,
                session_id: record.session_id.as_deref(),
                extra_claims: extra,
                rotation: Rotation::None,
            })
            .await?)
    }
}
