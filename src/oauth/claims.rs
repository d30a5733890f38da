//! The one step between "the user is authenticated" and "mint these tokens", shared by the
//! authorization code grant (at `/authorize` and `/continue`) and the refresh token grant:
//! the API's RBAC narrows the scope, the tenant's post-login rules and actions run, the scopes
//! actions added are granted only within what the client may be granted, and RBAC's
//! `permissions` claim is added last (no rule or action can set it).

use serde_json::Value;

use super::{Provider, Tenant};
use crate::domain::{RequestInfo, ScopeSet};
use crate::rules::{LoginInput, Protocol, Resume, TriggerOutcome};
use crate::store::{ClientRecord, UserRecord};

/// What the claims step decided.
#[derive(Debug)]
pub enum Decided {
    /// Mint tokens with these extra claims (`{"id_token":{}, "access_token":{}}`) and scope.
    Tokens {
        /// Extra claims per token.
        claims: Value,
        scope: ScopeSet,
    },
    /// A rule or action denied access with this message.
    Denied(String),
    /// A rule or action failed; the tenant finds it under this execution id.
    Failed(String),
    /// An action sent the browser away (interactive logins only).
    Redirect {
        /// Where to.
        url: String,
        /// The paused run.
        resume: Box<Resume>,
    },
}

/// The login a claims step is for.
pub struct ClaimsFor<'a> {
    pub user: &'a UserRecord,
    pub client: &'a ClientRecord,
    /// Login or refresh.
    pub protocol: Protocol,
    /// The request that triggered it.
    pub request: RequestInfo,
    /// The SSO session's public id.
    pub session_id: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The scope asked for (after consent) or kept (at refresh).
    pub scope: ScopeSet,
    /// The API the access token is for.
    pub audience: Option<&'a str>,
    /// Scopes this grant can never exceed (a refresh token's grant).
    pub ceiling: Option<&'a ScopeSet>,
    /// The user's role names, when already read with the session.
    pub roles: Option<&'a [String]>,
}

impl Provider {
    /// Runs the claims step for `of`; with `resume`, continues a run an action paused.
    pub async fn decide_claims(
        &self,
        tenant: &Tenant,
        of: ClaimsFor<'_>,
        resume: Option<&Resume>,
    ) -> anyhow::Result<Decided> {
        let rbac = self
            .rbac(tenant, &of.user.user_id, of.audience, of.scope)
            .await?;
        let input = LoginInput {
            tenant_id: &tenant.id,
            tenant_name: &tenant.name,
            issuer: &tenant.issuer,
            rules_generation: tenant.rules_generation,
            protocol: of.protocol,
            user: of.user,
            client: of.client,
            request: of.request,
            session_id: of.session_id,
            auth_time: of.auth_time,
            scope: &rbac.scope,
            audience: of.audience,
            roles: of.roles,
            now: self.now(),
        };
        let outcome = match resume {
            None => self.rules().post_login(input).await?,
            Some(r) => self.rules().resume_post_login(input, r).await?,
        };
        match outcome {
            TriggerOutcome::Allow {
                mut claims,
                scope,
                added_scopes,
            } => {
                // The run's scope holds what actions added; keep those only within what the
                // client may be granted (and, at refresh, within the original grant).
                let mut scope = scope;
                if !added_scopes.is_empty() {
                    let grantable = self
                        .grantable(tenant, &of.user.user_id, of.audience)
                        .await?;
                    let within =
                        |s: &str| grantable.contains(s) && of.ceiling.is_none_or(|c| c.contains(s));
                    let dropped: Vec<&String> =
                        added_scopes.iter().filter(|s| !within(s)).collect();
                    if !dropped.is_empty() {
                        tracing::warn!(tenant = %tenant.name, scopes = ?dropped, "scopes added by actions were not granted: the client may not be granted them");
                        scope = scope.filter(|s| !dropped.iter().any(|d| *d == s));
                    }
                }
                rbac.add_claims(&mut claims);
                Ok(Decided::Tokens { claims, scope })
            }
            TriggerOutcome::Deny { message, .. } => Ok(Decided::Denied(message)),
            TriggerOutcome::Fail { execution_id } => Ok(Decided::Failed(execution_id)),
            TriggerOutcome::Redirect { url, resume } => Ok(Decided::Redirect { url, resume }),
        }
    }
}
