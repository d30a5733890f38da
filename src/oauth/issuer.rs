//! The issuer: mints access tokens (RFC 9068), ID tokens (OIDC Core) and refresh tokens.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Provider, Tenant};
use crate::crypto::{hash_token, random_token};
use crate::domain::{ScopeSet, SigningAlg};
use crate::store::{ClientRecord, RefreshTokenRecord, UserRecord};

/// The successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    pub scope: String,
    /// ID token when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Refresh token when `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Everything a token issuance depends on.
pub struct Issue<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a ClientRecord,
    pub user: &'a UserRecord,
    /// Granted scopes (of this access token).
    pub scope: &'a ScopeSet,
    /// Scopes of the refresh token to issue: the grant's full scope, even when this access
    /// token was narrowed (RFC 6749 §6).
    pub refresh_scope: &'a ScopeSet,
    /// API identifier, if any.
    pub audience: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// OIDC nonce (code grant only).
    pub nonce: Option<&'a str>,
    /// The grant (refresh-token family).
    pub grant_id: &'a str,
    /// Public session id.
    pub session_id: Option<&'a str>,
    /// Extra claims: `{"id_token": {...}, "access_token": {...}}`.
    pub extra_claims: &'a Value,
    /// What happens to the refresh token being exchanged, if any.
    pub rotation: Rotation<'a>,
}

/// How a refresh replaces the token it was given.
#[derive(Debug, Clone, Copy)]
pub enum Rotation<'a> {
    /// No refresh token was exchanged (a code was).
    None,
    /// The token (by hash) is marked rotated in the transaction that stores its successor.
    From(&'a [u8]),
    /// A retry with the token `previous` whose rotation already made `successor` (its answer
    /// was lost): the unused successor is replaced.
    Retry {
        /// The token presented again.
        previous: &'a [u8],
        /// What its first rotation issued.
        successor: &'a [u8],
    },
}

/// Why tokens were not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The refresh token being exchanged had been rotated by someone else meanwhile (a
    /// replay: the refresh grant revokes the grant).
    #[error("the refresh token was already rotated")]
    AlreadyRotated,
    /// The store, the keys or the signing thread failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for IssueError {
    fn from(e: crate::store::StoreError) -> Self {
        IssueError::Internal(e.into())
    }
}

impl From<IssueError> for super::OAuthError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::AlreadyRotated => super::OAuthError::internal(e),
            IssueError::Internal(e) => e.into(),
        }
    }
}

/// Claims a user's profile contributes for the granted scopes (OIDC Core §5.4).
pub fn profile_claims(user: &UserRecord, scope: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    if scope.contains("profile") {
        for (name, value) in user.profile.fields() {
            let claim = if name == "username" {
                "preferred_username"
            } else {
                name
            };
            if let Some(v) = value {
                claims.insert(claim.into(), json!(v));
            }
        }
        claims.insert("updated_at".into(), json!(user.updated_at));
    }
    if scope.contains("email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(*user.email_verified));
    }
    claims
}

impl Provider {
    /// Mints the tokens of one successful grant; stores the refresh token if one is issued.
    pub async fn issue_tokens(&self, i: Issue<'_>) -> Result<TokenResponse, IssueError> {
        let now = self.now();
        let id_lifetime = i
            .client
            .id_token_lifetime
            .unwrap_or(self.lifetimes().access_token);
        // An access token for an API lives as long as that API says (`token_lifetime`).
        let lifetime = match i.audience {
            Some(api) => self
                .store()
                .resource_server_by_identifier(&i.tenant.id, api)
                .await?
                .map(|r| r.token_lifetime)
                .unwrap_or(self.lifetimes().access_token),
            None => self.lifetimes().access_token,
        };
        let keys = self.keys().tenant(i.tenant).await?;
        let signer_alg = keys.signer().alg();
        let userinfo = i.tenant.url("/userinfo");
        let openid = i.scope.contains("openid");
        let aud = match (i.audience, openid) {
            (Some(api), true) => json!([api, userinfo]),
            (Some(api), false) => json!(api),
            (None, _) => json!(userinfo),
        };
        let mut at = Map::new();
        if let Some(extra) = i
            .extra_claims
            .get("access_token")
            .and_then(Value::as_object)
        {
            at.extend(extra.clone());
        }
        at.extend(
            json!({
                "iss": i.tenant.issuer,
                "sub": i.user.user_id,
                "aud": aud,
                "exp": now + lifetime,
                "iat": now,
                "jti": uuid::Uuid::new_v4().to_string(),
                "client_id": i.client.client_id,
                "scope": i.scope.to_string(),
                "auth_time": i.auth_time,
                "gid": i.grant_id,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        let id_claims = openid.then(|| {
            let mut claims = Map::new();
            if let Some(extra) = i.extra_claims.get("id_token").and_then(Value::as_object) {
                claims.extend(extra.clone());
            }
            claims.extend(profile_claims(i.user, i.scope));
            let mut core = json!({
                "iss": i.tenant.issuer,
                "sub": i.user.user_id,
                "aud": i.client.client_id,
                "azp": i.client.client_id,
                "exp": now + id_lifetime,
                "iat": now,
                "auth_time": i.auth_time,
                "amr": ["pwd"],
            });
            if let Some(n) = i.nonce {
                core["nonce"] = json!(n);
            }
            if let Some(sid) = i.session_id {
                core["sid"] = json!(sid);
            }
            claims.extend(core.as_object().cloned().unwrap_or_default());
            claims
        });
        let sign = move || {
            let access_token = keys.signer().sign("at+jwt", &Value::Object(at));
            let id_token = id_claims.map(|mut claims| {
                claims.insert(
                    "at_hash".into(),
                    json!(keys.signer().at_hash(&access_token)),
                );
                keys.signer().sign("JWT", &Value::Object(claims))
            });
            (access_token, id_token)
        };
        // RSA signatures take a few hundred µs of CPU each: off the async workers, so the quick
        // requests sharing them (userinfo, discovery) do not queue behind a burst of them.
        // ES256 and EdDSA sign in 5–25 µs, less than the hop to another thread costs.
        let (access_token, id_token) = if signer_alg == SigningAlg::Rs256 {
            tokio::task::spawn_blocking(move || {
                crate::cpu::run_in_background();
                sign()
            })
            .await
            .map_err(anyhow::Error::from)?
        } else {
            sign()
        };

        let issue_refresh = i.refresh_scope.contains("offline_access")
            && i.client
                .allows_grant(crate::domain::GrantType::RefreshToken);
        let refresh_token = issue_refresh.then(|| random_token(32));
        let record = refresh_token.as_deref().map(|token| RefreshTokenRecord {
            token_hash: hash_token(token),
            tenant_id: i.tenant.id.clone(),
            grant_id: i.grant_id.to_string(),
            client_id: i.client.client_id.clone(),
            user_id: i.user.user_id.clone(),
            scope: i.refresh_scope.clone(),
            audience: i.audience.map(String::from),
            auth_time: i.auth_time,
            session_id: i.session_id.map(String::from),
            created_at: now,
            expires_at: now + self.lifetimes().refresh_token,
            rotated_at: None,
            successor_hash: None,
        });
        match (i.rotation, &record) {
            (Rotation::From(old), new) => {
                if !self
                    .store()
                    .rotate_refresh_token(old, new.as_ref(), now)
                    .await?
                {
                    return Err(IssueError::AlreadyRotated);
                }
            }
            (
                Rotation::Retry {
                    previous,
                    successor,
                },
                new,
            ) => {
                if !self
                    .store()
                    .retry_rotation(previous, successor, new.as_ref(), now)
                    .await?
                {
                    return Err(IssueError::AlreadyRotated);
                }
            }
            (Rotation::None, Some(new)) => self.store().insert_refresh_token(new).await?,
            (Rotation::None, None) => {}
        }
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            scope: i.scope.to_string(),
            id_token,
            refresh_token,
        })
    }
}
