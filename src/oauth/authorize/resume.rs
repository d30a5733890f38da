//! Redirect actions (SPEC §15): `api.redirect.sendUserTo` pauses a login; the browser comes
//! back to `{issuer}/continue?state=…`, where the paused run resumes.
//!
//! The paused run is kept as a login transaction whose id is the `state` handed to the
//! external page: stored hashed, sealed with the master key, bound to the browser that
//! started it, expiring like any login transaction, and deleted by the first `/continue` that
//! uses it (single use). A forged, replayed, expired or foreign `state` — or one brought back
//! by a browser whose session is gone or belongs to someone else — is an error page.

use std::collections::BTreeMap;

use super::{
    Answer, AuthorizationRequest, Browser, Outcome, Problem, SignedIn, TRANSACTIONS_PER_BROWSER,
};
use crate::crypto::{ct_eq, hash_token};
use crate::oauth::claims::ClaimsFor;
use crate::oauth::{Provider, Tenant};
use crate::rules::{Protocol, Resume};
use crate::store::{ClientRecord, LoginTransactionRecord};

/// The AAD that binds a sealed paused run to its tenant and transaction.
fn resume_aad(tenant: &Tenant, id_hash: &[u8]) -> String {
    format!("resume:{}:{}", tenant.id, crate::crypto::hex(id_hash))
}

impl Provider {
    /// Parks a login a rule or an action redirected: stores the paused run and sends the
    /// browser to the URL asked for (which carries `state`).
    pub(super) async fn pause(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        browser: &Browser,
        url: &str,
        resume: &Resume,
    ) -> anyhow::Result<Answer> {
        let mut answer: Answer = Outcome::Redirect(url.to_string()).into();
        // The SSO fast path may come without a binding cookie: give the browser one now.
        let browser_id = match &browser.browser_id {
            Some(id) if self.browser_id_is_ours(id) => id.clone(),
            _ => {
                let id = self.new_browser_id();
                answer.cookies.browser_id = Some(id.clone());
                id
            }
        };
        let now = self.now();
        let id_hash = hash_token(&resume.state);
        let sealed = self.master_key().seal(
            &resume_aad(tenant, &id_hash),
            serde_json::to_string(resume)?.as_bytes(),
        );
        let record = LoginTransactionRecord {
            id_hash,
            tenant_id: tenant.id.clone(),
            client_id: client.client_id.clone(),
            request: serde_json::to_string(request)?,
            browser_hash: hash_token(&browser_id),
            logged_in_at: Some(now),
            consented_at: Some(now),
            created_at: now,
            expires_at: now + self.lifetimes().login_transaction,
            resume: Some(sealed),
        };
        self.store()
            .insert_login_transaction(&record, TRANSACTIONS_PER_BROWSER)
            .await?;
        if resume.rules {
            tracing::info!(tenant = %tenant.name, "login paused by a rule's context.redirect");
        } else {
            tracing::info!(tenant = %tenant.name, action = %resume.action_id, "login paused by a redirect action");
        }
        Ok(answer)
    }

    /// `GET`/`POST {issuer}/continue`: resumes a paused login with the parameters the external
    /// page sent back (`state`, and what the action reads, such as a session token).
    pub async fn continue_login(
        &self,
        tenant: &Tenant,
        params: Vec<(String, String)>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        // What an external page sends back is bounded like any authorize parameter.
        if params.len() > 50 || params.iter().any(|(k, v)| k.len() > 100 || v.len() > 8192) {
            return Ok(Problem::BadRequest("Too many or too long parameters.".into()).into());
        }
        // A form posted from the external site carries none of our `SameSite=Lax` cookies; a
        // top-level GET does. Send the browser round once as a GET with the same parameters
        // (Auth0's pattern posts back; its parameters then arrive as `event.request.query`).
        if browser.method.eq_ignore_ascii_case("POST") && browser.browser_id.is_none() {
            let mut url = url::Url::parse(&format!("{}/continue", tenant.issuer))?;
            url.query_pairs_mut().extend_pairs(params.iter());
            return Ok(Outcome::Redirect(url.to_string()).into());
        }
        let state = params
            .iter()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if state.is_empty() || state.len() > 100 {
            return Ok(Problem::Expired.into());
        }
        let id_hash = hash_token(&state);
        let Some(tx) = self
            .store()
            .login_transaction(&tenant.id, &id_hash, self.now())
            .await?
        else {
            return Ok(Problem::Expired.into());
        };
        let bound = browser
            .browser_id
            .as_deref()
            .is_some_and(|b| ct_eq(&hash_token(b), &tx.browser_hash));
        let Some(sealed) = tx.resume.as_ref().filter(|_| bound) else {
            return Ok(Problem::Expired.into());
        };
        // Single use: the first `/continue` that deletes it wins; a replay finds nothing.
        if !self.store().delete_login_transaction(&tx.id_hash).await? {
            return Ok(Problem::Expired.into());
        }
        let resume: Resume = serde_json::from_slice(
            &self
                .master_key()
                .open(&resume_aad(tenant, &tx.id_hash), sealed)
                .map_err(|e| anyhow::anyhow!("cannot open a paused login: {e:?}"))?,
        )?;
        let request: AuthorizationRequest = serde_json::from_str(&tx.request)?;
        let Some(client) = self.client(tenant, &tx.client_id).await? else {
            return Ok(Problem::Expired.into());
        };
        // The login continues only for the user whose session paused it, still signed in here.
        let Some(signed_in) = self.current_session(tenant, browser).await? else {
            return Ok(Problem::Expired.into());
        };
        if resume.user["user_id"].as_str() != Some(signed_in.user.user_id.as_str()) {
            return Ok(Problem::Expired.into());
        }
        let SignedIn {
            session,
            user,
            roles,
        } = &signed_in;
        let sid = super::session_public_id(&session.id_hash);
        let (query, body): (BTreeMap<String, String>, BTreeMap<String, String>) =
            if browser.method.eq_ignore_ascii_case("POST") {
                (
                    BTreeMap::from([("state".to_string(), state)]),
                    params.into_iter().collect(),
                )
            } else {
                (params.into_iter().collect(), BTreeMap::new())
            };
        let mut info = browser.request_info(query);
        info.body = body;
        let decided = self
            .decide_claims(
                tenant,
                ClaimsFor {
                    user,
                    client: &client,
                    protocol: Protocol::Login,
                    request: info,
                    session_id: Some(&sid),
                    auth_time: session.auth_time,
                    scope: request.scope.clone(),
                    audience: request.audience.as_deref(),
                    ceiling: None,
                    roles: roles.as_deref(),
                },
                Some(&resume),
            )
            .await?;
        self.conclude(tenant, &client, &request, &signed_in, browser, decided)
            .await
    }
}
