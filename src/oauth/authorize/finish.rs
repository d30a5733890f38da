//! The end of a login: the claims step (RBAC, rules, actions) run, then a code issued and the
//! browser sent back — or the login parked while an action sends the user elsewhere.

use super::*;

impl Provider {
    /// Authentication and consent are done: run the rules and actions, issue the code and send
    /// the browser back (or, when an action redirects, park the login until `/continue`).
    pub(super) async fn finish(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let SignedIn {
            session,
            user,
            roles,
        } = signed_in;
        let sid = session_public_id(&session.id_hash);
        let decided = self
            .decide_claims(
                tenant,
                ClaimsFor {
                    user,
                    client,
                    protocol: Protocol::Login,
                    request: browser.request_info(request.query.clone()),
                    session_id: Some(&sid),
                    auth_time: session.auth_time,
                    scope: request.scope.clone(),
                    audience: request.audience.as_deref(),
                    ceiling: None,
                    roles: roles.as_deref(),
                },
                None,
            )
            .await?;
        self.conclude(tenant, client, request, signed_in, browser, decided)
            .await
    }

    /// What the claims step decided, as the browser's answer: the client's callback with a
    /// code or an error, or the page an action sends the user to.
    pub(super) async fn conclude(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        browser: &Browser,
        decided: Decided,
    ) -> anyhow::Result<Answer> {
        match decided {
            Decided::Tokens { claims, scope } => {
                self.issue_code(tenant, client, request, signed_in, claims, scope)
                    .await
            }
            Decided::Denied(message) => {
                Ok(self.fail(tenant, request, ErrorCode::AccessDenied, &message))
            }
            Decided::Failed(execution_id) => {
                let description = format!(
                    "a rule or action failed; the tenant can look up execution {execution_id}"
                );
                Ok(self.fail(tenant, request, ErrorCode::ServerError, &description))
            }
            // A silent request cannot show the user anything (OIDC Core §3.1.2.6).
            Decided::Redirect { .. } if request.prompt_none => Ok(self.fail(
                tenant,
                request,
                ErrorCode::InteractionRequired,
                "an action needs to send the user to another page; retry without prompt=none",
            )),
            Decided::Redirect { url, resume } => {
                self.pause(tenant, client, request, browser, &url, &resume)
                    .await
            }
        }
    }

    /// Issues the code for a finished login and sends the browser back to the client.
    pub(super) async fn issue_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        claims: serde_json::Value,
        scope: ScopeSet,
    ) -> anyhow::Result<Answer> {
        let SignedIn { session, user, .. } = signed_in;
        let code = random_token(32);
        let now = self.now();
        self.store()
            .insert_code(CodeRecord {
                code_hash: hash_token(&code),
                tenant_id: tenant.id.clone(),
                grant_id: uuid::Uuid::new_v4().to_string(),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                scope,
                audience: request.audience.clone(),
                nonce: request.nonce.clone(),
                code_challenge: request.code_challenge.clone(),
                auth_time: session.auth_time,
                session_id: Some(session_public_id(&session.id_hash)),
                claims: crate::store::JsonText(claims),
                created_at: now,
                expires_at: now + self.lifetimes().code,
                consumed_at: None,
            })
            .await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", &tenant.issuer));
        Ok(Outcome::Redirect(with_params(&request.redirect_uri, &params)).into())
    }
}
