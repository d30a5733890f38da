//! Role-based access control per API (Auth0's `enforce_policies` and `token_dialect`).

use serde_json::{Value, json};

use super::{Provider, Tenant};
use crate::domain::{ScopeSet, TokenDialect};

/// What the user's roles allow for the API of one grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Rbac {
    /// The scope after RBAC: with policies enforced, the API's scopes the user's roles do not
    /// permit are dropped; other scopes (`openid`, `profile`, ...) are untouched.
    pub scope: ScopeSet,
    /// With the `access_token_authz` dialect: every permission the user's roles give for the
    /// API, for the access token's `permissions` claim.
    pub permissions: Option<Vec<String>>,
}

impl Rbac {
    /// Puts `permissions` into the access token's extra claims. Rules cannot set that claim
    /// (it is restricted), so this is the only writer.
    pub fn add_claims(&self, claims: &mut Value) {
        if let Some(p) = &self.permissions {
            claims["access_token"]["permissions"] = json!(p);
        }
    }
}

impl Provider {
    /// Applies the API's RBAC settings to `scope` for `user_id`. Reads the user's permissions
    /// only for an API that uses them.
    pub async fn rbac(
        &self,
        tenant: &Tenant,
        user_id: &str,
        audience: Option<&str>,
        scope: ScopeSet,
    ) -> anyhow::Result<Rbac> {
        let unchanged = |scope| Rbac {
            scope,
            permissions: None,
        };
        let Some(audience) = audience else {
            return Ok(unchanged(scope));
        };
        let Some(api) = self
            .store()
            .resource_server_by_identifier(&tenant.id, audience)
            .await?
        else {
            return Ok(unchanged(scope));
        };
        let enforce = api.enforce_policies != 0;
        let authz = api.token_dialect == TokenDialect::AccessTokenAuthz;
        if !enforce && !authz {
            return Ok(unchanged(scope));
        }
        // Only permissions for scopes the API still defines count: a scope removed from the
        // API is gone from roles' effect at once, even before its rows are cleaned up.
        let defined = |s: &str| api.scopes().iter().any(|d| d.value == s);
        let permitted: Vec<String> = self
            .store()
            .user_permissions(&tenant.id, user_id, audience)
            .await?
            .into_iter()
            .filter(|p| defined(p))
            .collect();
        let scope = if enforce {
            // OIDC scopes pass; API scopes need a permission; anything else (a scope the API
            // no longer defines, carried by a refresh token) is dropped.
            scope.filter(|s| {
                crate::oauth::scopes::is_oidc_scope(s)
                    || (defined(s) && permitted.iter().any(|p| p == s))
            })
        } else {
            scope
        };
        Ok(Rbac {
            scope,
            permissions: authz.then_some(permitted),
        })
    }

    /// The scopes a grant of `user_id` for `audience` may hold: the OpenID Connect scopes and
    /// the API's own — with policies enforced, only those the user's roles permit. What
    /// actions may add (`api.accessToken.addScope`) stays within this.
    pub async fn grantable(
        &self,
        tenant: &Tenant,
        user_id: &str,
        audience: Option<&str>,
    ) -> anyhow::Result<ScopeSet> {
        let oidc: ScopeSet = crate::oauth::scopes::OIDC_SCOPES
            .iter()
            .map(|(s, _)| s.to_string())
            .collect();
        let Some(audience) = audience else {
            return Ok(oidc);
        };
        let Some(api) = self
            .store()
            .resource_server_by_identifier(&tenant.id, audience)
            .await?
        else {
            return Ok(oidc);
        };
        let defined: ScopeSet = api.scopes().iter().map(|d| d.value.clone()).collect();
        let api_scopes = if api.enforce_policies != 0 {
            let permitted = self
                .store()
                .user_permissions(&tenant.id, user_id, audience)
                .await?;
            defined.filter(|s| permitted.iter().any(|p| p == s))
        } else {
            defined
        };
        Ok(oidc.union(&api_scopes))
    }
}
