//! The authorizer: `/authorize`, the login and consent steps, and issuing one-time codes.
//!
//! [`request`] parses and checks an authorization request into a typed value; [`login`] and
//! [`consent`] are the two steps a browser may be sent through; this module decides the next
//! step and issues the code. A request that needs a step is kept in a database-backed login
//! transaction (so any node can serve any step), bound to the browser that started it by a
//! cookie; its forms carry a CSRF token derived from the transaction id. Answers say what
//! happened ([`Outcome`], [`Problem`], [`LoginProblem`]); `http/` decides how that looks.

mod consent;
mod lazy;
mod login;
mod request;
mod resume;
pub mod throttle;

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

/// What the HTTP layer knows about the browser.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// The browser-binding cookie, if present.
    pub browser_id: Option<String>,
    /// The SSO session cookie, if present.
    pub session_id: Option<String>,
    /// Client address (through trusted proxies, see `http/`).
    pub ip: String,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Host` header.
    pub hostname: Option<String>,
    /// The device cookie: accounts that signed in from this browser (see [`throttle`]).
    pub device: Option<String>,
    /// HTTP method of the request.
    pub method: String,
    /// The first language of `Accept-Language`.
    pub language: Option<String>,
}

impl Browser {
    /// What rules and actions are told of this request, with `query`'s parameters.
    pub fn request_info(&self, query: std::collections::BTreeMap<String, String>) -> RequestInfo {
        RequestInfo {
            ip: self.ip.clone(),
            method: self.method.clone(),
            hostname: self.hostname.clone().unwrap_or_default(),
            user_agent: self.user_agent.clone().unwrap_or_default(),
            language: self.language.clone().unwrap_or_default(),
            query,
            body: Default::default(),
        }
    }
}

/// Cookies the HTTP layer must set with the response.
#[derive(Debug, Clone, Default)]
pub struct CookieChanges {
    /// A new browser-binding cookie value.
    pub browser_id: Option<String>,
    /// A new SSO session cookie value.
    pub session_id: Option<String>,
    /// A new device cookie value.
    pub device: Option<String>,
}

/// A browser's live SSO session and its user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SessionRecord,
    /// Its user, read with it.
    pub user: UserRecord,
}

/// Why a login form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProblem {
    /// Unknown user or wrong password (one answer for both).
    WrongCredentials,
    /// The username or password is longer than any real one.
    TooLong,
    /// Too many attempts for this account or from this address; try again after `retry_after`
    /// seconds.
    Throttled {
        /// Seconds.
        retry_after: i64,
    },
    /// Every password check is busy; try again after `retry_after` seconds.
    Busy {
        /// Seconds.
        retry_after: i64,
    },
    /// The user's password is still with the old Auth0 tenant (lazy migration), which gave no
    /// clear answer; try again after `retry_after` seconds.
    Unavailable {
        /// Seconds.
        retry_after: i64,
    },
}

impl LoginProblem {
    /// The message shown on the form.
    pub fn message(self) -> &'static str {
        match self {
            LoginProblem::WrongCredentials => "Wrong email or password.",
            LoginProblem::TooLong => "That email or password is too long.",
            LoginProblem::Throttled { .. } => {
                "Too many failed attempts. Wait a few minutes and try again."
            }
            LoginProblem::Busy { .. } => "The server is busy. Wait a moment and try again.",
            LoginProblem::Unavailable { .. } => {
                "Your account is being moved and could not be checked right now. Try again in a few minutes."
            }
        }
    }
}

/// The login form to render.
#[derive(Debug, Clone, Serialize)]
pub struct LoginForm {
    /// Transaction id.
    pub tx: String,
    pub csrf: String,
    /// The application's name.
    pub client_name: String,
    /// Prefilled username (`login_hint`, or what was typed).
    pub username: String,
    /// Message after a failed attempt.
    pub error: Option<&'static str>,
    /// Why the form is shown again.
    #[serde(skip)]
    pub problem: Option<LoginProblem>,
}

/// The consent form to render.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentForm {
    /// Transaction id.
    pub tx: String,
    pub csrf: String,
    /// The application's name.
    pub client_name: String,
    /// Who is consenting.
    pub user_email: String,
    /// The API the application will call, if any.
    pub api_name: Option<String>,
    /// Requested permissions.
    pub scopes: Vec<ScopeLine>,
}

/// Why a step cannot go on; shown on an error page, never sent to the client's redirect_uri.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The request is malformed or names an unknown client or callback.
    BadRequest(String),
    /// The login transaction expired, is unknown, or belongs to another browser.
    Expired,
    /// The form could not be verified (CSRF).
    Forbidden,
    /// Our failure (the cause is logged).
    Internal,
}

impl Problem {
    /// Text safe to show.
    pub fn message(&self) -> &str {
        match self {
            Problem::BadRequest(m) => m,
            Problem::Expired => {
                "This sign-in request has expired or is not valid in this browser. Go back to the application and start again."
            }
            Problem::Forbidden => {
                "The form could not be verified (missing or invalid CSRF token). Go back to the application and start again."
            }
            Problem::Internal => "Something went wrong on our side. Try again later.",
        }
    }
}

/// What to answer the browser.
#[derive(Debug)]
pub enum Outcome {
    /// An error page.
    Problem(Problem),
    /// 303 to this URL (the client's redirect_uri or our own next step).
    Redirect(String),
    /// Show the login form.
    Login(LoginForm),
    /// Show the consent form.
    Consent(ConsentForm),
}

/// An answer plus the cookies to set with it.
#[derive(Debug)]
pub struct Answer {
    /// What to show.
    pub outcome: Outcome,
    pub cookies: CookieChanges,
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        Answer {
            outcome,
            cookies: CookieChanges::default(),
        }
    }
}

impl From<Problem> for Answer {
    fn from(problem: Problem) -> Self {
        Outcome::Problem(problem).into()
    }
}

impl Provider {
    /// `GET`/`POST /authorize` with its parameters in order of arrival.
    pub async fn authorize(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        browser: &Browser,
    ) -> Answer {
        match self.authorize_inner(tenant, pairs, browser).await {
            Ok(answer) => answer,
            Err(e) => {
                let _ = OAuthError::internal(format!("{e:#}"));
                Problem::Internal.into()
            }
        }
    }

    async fn authorize_inner(
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
        let session = self.current_session(tenant, browser).await?;
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
            if self
                .needs_consent(tenant, &request, &signed_in.user.user_id)
                .await?
            {
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
            && !self
                .needs_consent(tenant, &request, &signed_in.user.user_id)
                .await?
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
        let requested = request.scope.clone();
        let granted = self
            .store()
            .consent(
                &tenant.id,
                user_id,
                &request.client_id,
                request.audience.as_deref().unwrap_or(""),
            )
            .await?;
        Ok(match granted {
            Some(g) => !requested.is_subset(&g),
            None => true,
        })
    }

    /// The browser's live SSO session and its user (a session of a deleted or blocked user is
    /// no session).
    async fn current_session(
        &self,
        tenant: &Tenant,
        browser: &Browser,
    ) -> anyhow::Result<Option<SignedIn>> {
        let Some(id) = &browser.session_id else {
            return Ok(None);
        };
        if id.len() > 100 {
            return Ok(None);
        }
        let Some(session) = self
            .store()
            .session(&tenant.id, &hash_token(id), self.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.store().user(&tenant.id, &session.user_id).await? else {
            return Ok(None);
        };
        if user.blocked != 0 {
            return Ok(None);
        }
        Ok(Some(SignedIn { session, user }))
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

    /// Authentication and consent are done: run the rules and actions, issue the code and send
    /// the browser back (or, when an action redirects, park the login until `/continue`).
    async fn finish(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let SignedIn { session, user } = signed_in;
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
                },
                None,
            )
            .await?;
        self.conclude(tenant, client, request, signed_in, browser, decided)
            .await
    }

    /// What the claims step decided, as the browser's answer: the client's callback with a
    /// code or an error, or the page an action sends the user to.
    async fn conclude(
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
    async fn issue_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        claims: serde_json::Value,
        scope: ScopeSet,
    ) -> anyhow::Result<Answer> {
        let SignedIn { session, user } = signed_in;
        let code = random_token(32);
        let now = self.now();
        self.store()
            .insert_code(&CodeRecord {
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
