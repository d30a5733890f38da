//! The authorizer: `/authorize`, the login and consent steps, and issuing one-time codes.
//!
//! [`request`] parses and checks an authorization request into a typed value; [`login`] and
//! [`consent`] are the two steps a browser may be sent through; this module decides the next
//! step and issues the code. A request that needs a step is kept in a database-backed login
//! transaction (so any node can serve any step), bound to the browser that started it by a
//! cookie; its forms carry a CSRF token derived from the transaction id. Answers say what
//! happened ([`Outcome`], [`Problem`], [`LoginProblem`]); `http/` decides how that looks.

mod answer;
mod consent;
mod finish;
mod lazy;
mod login;
mod request;
mod resume;
pub mod throttle;

pub use answer::{
    Answer, Browser, ConsentForm, CookieChanges, LoginForm, LoginProblem, Outcome, Problem,
    SignedIn,
};
pub use consent::ConsentSubmission;
pub use lazy::OldTenants;
pub use login::LoginSubmission;
pub use request::{AuthorizationRequest, is_pkce_value};

use std::sync::Arc;

use serde::Serialize;

use super::registrar::with_params;
use super::scopes::ScopeLine;
use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::crypto::{ct_eq, hash_token, random_token};
use crate::domain::{RequestInfo, ScopeSet};
use crate::oauth::claims::{ClaimsFor, Decided};
use crate::rules::Protocol;
use crate::store::{ClientRecord, CodeRecord, LoginTransactionRecord, SessionRecord, UserRecord};
use request::Rejection;

/// Login transactions one browser may have pending; starting another drops its oldest.
const TRANSACTIONS_PER_BROWSER: i64 = 20;

impl Provider {
    /// `GET`/`POST /authorize` with its parameters in order of arrival.
    pub async fn authorize(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let (client, request) = match self.parse_authorization_request(tenant, pairs).await? {
            Ok(ok) => ok,
            Err(Rejection::Page(problem)) => return Ok(problem.into()),
            Err(Rejection::Redirect {
                redirect_uri,
                state,
                error,
            }) => {
                return Ok(Outcome::Redirect(error_redirect(
                    tenant,
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                ))
                .into());
            }
        };
        let audience = request.audience.as_deref().unwrap_or("");
        let (session, granted) = match self
            .session_and_consent(tenant, browser, Some((&request.client_id, audience)))
            .await?
        {
            Some((signed_in, granted)) => (Some(signed_in), granted),
            None => (None, None),
        };
        if request.prompt_none {
            let Some(signed_in) = session else {
                return Ok(self.fail(
                    tenant,
                    &request,
                    ErrorCode::LoginRequired,
                    "the user is not signed in",
                ));
            };
            if self.max_age_exceeded(&request, &signed_in.session)
                || !self.hint_matches(&request, &signed_in.session)
            {
                return Ok(self.fail(
                    tenant,
                    &request,
                    ErrorCode::LoginRequired,
                    "the user must sign in again",
                ));
            }
            if consent_missing(&request, granted.as_ref()) {
                return Ok(self.fail(
                    tenant,
                    &request,
                    ErrorCode::ConsentRequired,
                    "the user has not granted these permissions",
                ));
            }
            return self
                .finish(tenant, &client, &request, &signed_in, browser)
                .await;
        }

        // A browser whose session needs neither a login nor a consent goes straight to its
        // code: no login transaction is stored (the common case of SSO).
        if let Some(signed_in) = &session
            && !self.needs_login(&request, None, &signed_in.session)
            && !request.prompt_consent
            && !consent_missing(&request, granted.as_ref())
        {
            return self
                .finish(tenant, &client, &request, signed_in, browser)
                .await;
        }

        // Start a login transaction bound to this browser.
        let mut cookies = CookieChanges::default();
        let browser_id = match &browser.browser_id {
            Some(id) if self.browser_id_is_ours(id) => id.clone(),
            _ => {
                let id = self.new_browser_id();
                cookies.browser_id = Some(id.clone());
                id
            }
        };
        let tx_id = random_token(24);
        let now = self.now();
        let record = LoginTransactionRecord {
            id_hash: hash_token(&tx_id),
            tenant_id: tenant.id.clone(),
            client_id: client.client_id.clone(),
            request: serde_json::to_string(&request)?,
            browser_hash: hash_token(&browser_id),
            logged_in_at: None,
            consented_at: None,
            created_at: now,
            expires_at: now + self.lifetimes().login_transaction,
            resume: None,
        };
        self.store()
            .insert_login_transaction(&record, TRANSACTIONS_PER_BROWSER)
            .await?;
        let browser = Browser {
            browser_id: Some(browser_id),
            ..browser.clone()
        };
        let mut answer = self
            .proceed(
                tenant, &tx_id, &record, &client, &request, session, &browser,
            )
            .await?;
        if cookies.browser_id.is_some() {
            answer.cookies.browser_id = cookies.browser_id;
        }
        Ok(answer)
    }

    /// Decides the next step of a transaction: login, consent, or the code.
    #[allow(clippy::too_many_arguments)]
    async fn proceed(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        tx: &LoginTransactionRecord,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        session: Option<SignedIn>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let tx_param = [("tx", tx_id)];
        let signed_in = match session {
            Some(s) if !self.needs_login(request, Some(tx), &s.session) => s,
            _ => {
                let url = with_params(&tenant.url("/login"), &tx_param);
                return Ok(Outcome::Redirect(url).into());
            }
        };
        let need_consent = tx.consented_at.is_none()
            && (request.prompt_consent
                || self
                    .needs_consent(tenant, request, &signed_in.user.user_id)
                    .await?);
        if need_consent {
            let url = with_params(&tenant.url("/consent"), &tx_param);
            return Ok(Outcome::Redirect(url).into());
        }
        if !self.store().delete_login_transaction(&tx.id_hash).await? {
            return Ok(Problem::Expired.into());
        }
        self.finish(tenant, client, request, &signed_in, browser)
            .await
    }

    /// Whether the user must enter credentials: a login transaction where they already did
    /// never asks again; otherwise `prompt=login`, `max_age` or another hinted user do.
    fn needs_login(
        &self,
        request: &AuthorizationRequest,
        tx: Option<&LoginTransactionRecord>,
        session: &SessionRecord,
    ) -> bool {
        tx.is_none_or(|t| t.logged_in_at.is_none())
            && (request.prompt_login
                || self.max_age_exceeded(request, session)
                || !self.hint_matches(request, session))
    }

    /// Whether the signed-in user is the one `id_token_hint` names (true without a hint).
    fn hint_matches(&self, request: &AuthorizationRequest, session: &SessionRecord) -> bool {
        request
            .hinted_sub
            .as_deref()
            .is_none_or(|sub| sub == session.user_id)
    }

    fn max_age_exceeded(&self, request: &AuthorizationRequest, session: &SessionRecord) -> bool {
        match request.max_age {
            Some(0) => true,
            Some(max) => self.now() - session.auth_time > max,
            None => false,
        }
    }

    async fn needs_consent(
        &self,
        tenant: &Tenant,
        request: &AuthorizationRequest,
        user_id: &str,
    ) -> anyhow::Result<bool> {
        let granted = self
            .store()
            .consent(
                &tenant.id,
                user_id,
                &request.client_id,
                request.audience.as_deref().unwrap_or(""),
            )
            .await?;
        Ok(consent_missing(request, granted.as_ref()))
    }

    /// The browser's live SSO session and its user (a session of a deleted or blocked user is
    /// no session).
    async fn current_session(
        &self,
        tenant: &Tenant,
        browser: &Browser,
    ) -> anyhow::Result<Option<SignedIn>> {
        Ok(self
            .session_and_consent(tenant, browser, None)
            .await?
            .map(|(signed_in, _)| signed_in))
    }

    /// [`Self::current_session`], with the scopes its user granted `consent_for` (client id,
    /// audience or '') read in the same statement.
    async fn session_and_consent(
        &self,
        tenant: &Tenant,
        browser: &Browser,
        consent_for: Option<(&str, &str)>,
    ) -> anyhow::Result<Option<(SignedIn, Option<ScopeSet>)>> {
        let Some(id) = &browser.session_id else {
            return Ok(None);
        };
        if id.len() > 100 {
            return Ok(None);
        }
        let Some(read) = self
            .store()
            .session_with_user(&tenant.id, &hash_token(id), self.now(), consent_for)
            .await?
        else {
            return Ok(None);
        };
        if *read.user.blocked {
            return Ok(None);
        }
        let signed_in = SignedIn {
            session: read.session,
            user: read.user,
            roles: Some(read.roles),
        };
        Ok(Some((signed_in, read.granted)))
    }

    fn fail(
        &self,
        tenant: &Tenant,
        request: &AuthorizationRequest,
        code: ErrorCode,
        description: &str,
    ) -> Answer {
        let err = OAuthError::new(code, description);
        Outcome::Redirect(error_redirect(
            tenant,
            &request.redirect_uri,
            request.state.as_deref(),
            &err,
        ))
        .into()
    }

    /// Loads a transaction that this browser started; `None` when expired, unknown or foreign.
    async fn transaction(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<
        Option<(
            LoginTransactionRecord,
            AuthorizationRequest,
            Arc<ClientRecord>,
        )>,
    > {
        if tx_id.is_empty() || tx_id.len() > 100 {
            return Ok(None);
        }
        let Some(tx) = self
            .store()
            .login_transaction(&tenant.id, &hash_token(tx_id), self.now())
            .await?
            .filter(|tx| tx.resume.is_none())
        else {
            // A paused login waits at `/continue` and is good for nothing else.
            return Ok(None);
        };
        let bound = browser
            .browser_id
            .as_deref()
            .is_some_and(|b| ct_eq(&hash_token(b), &tx.browser_hash));
        if !bound {
            return Ok(None);
        }
        let request: AuthorizationRequest = serde_json::from_str(&tx.request)?;
        let Some(client) = self.client(tenant, &tx.client_id).await? else {
            return Ok(None);
        };
        Ok(Some((tx, request, client)))
    }

    fn csrf_ok(&self, tx_id: &str, presented: &str) -> bool {
        ct_eq(self.csrf_token(tx_id).as_bytes(), presented.as_bytes())
    }
}

/// The redirect carrying an error to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub fn error_redirect(
    tenant: &Tenant,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> String {
    let mut params = vec![
        ("error", err.code.as_str()),
        ("error_description", err.description.as_str()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &tenant.issuer));
    with_params(redirect_uri, &params)
}

/// The public `sid` of a session: derived from, never equal to, the cookie's hash.
pub fn session_public_id(id_hash: &[u8]) -> String {
    crate::crypto::sha256_b64url(id_hash)[..22].to_string()
}

/// Whether the request asks for a scope the user has not granted (`granted`: what they did
/// grant this client for this audience, if anything).
fn consent_missing(request: &AuthorizationRequest, granted: Option<&ScopeSet>) -> bool {
    granted.is_none_or(|g| !request.scope.is_subset(g))
}
