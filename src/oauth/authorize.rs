//! The authorizer: `/authorize`, the login and consent steps, and issuing one-time codes.
//!
//! A validated request is kept in a database-backed login transaction (so any node can serve
//! any step). The transaction is bound to the browser that started it by a cookie, and its
//! forms carry a CSRF token derived from the transaction id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::registrar::{find_client, redirect_uri_is_registered, with_params};
use super::scopes::{ScopeLine, describe, grantable};
use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::crypto::{ct_eq, hash_token, random_token};
use crate::domain::ScopeSet;
use crate::rules::{Protocol, RequestInfo, RulesOutcome, RunInput};
use crate::store::{ClientRecord, CodeRecord, LoginTransactionRecord, SessionRecord, UserRecord};

/// What the HTTP layer knows about the browser.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// The browser-binding cookie, if present.
    pub browser_id: Option<String>,
    /// The SSO session cookie, if present.
    pub session_id: Option<String>,
    /// Client address.
    pub ip: String,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Host` header.
    pub hostname: Option<String>,
}

/// A browser's live SSO session and its user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: SessionRecord,
    /// Its user, read with it.
    pub user: UserRecord,
}

/// Cookies the HTTP layer must set with the response.
#[derive(Debug, Clone, Default)]
pub struct CookieChanges {
    /// A new browser-binding cookie value.
    pub browser_id: Option<String>,
    /// A new SSO session cookie value.
    pub session_id: Option<String>,
}

/// The login form to render.
#[derive(Debug, Clone, Serialize)]
pub struct LoginForm {
    /// Transaction id.
    pub tx: String,
    /// CSRF token.
    pub csrf: String,
    /// The application's name.
    pub client_name: String,
    /// Prefilled username (`login_hint`, or what was typed).
    pub username: String,
    /// Message after a failed attempt.
    pub error: Option<String>,
}

/// The consent form to render.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentForm {
    /// Transaction id.
    pub tx: String,
    /// CSRF token.
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

/// What to answer the browser.
#[derive(Debug)]
pub enum Outcome {
    /// An error page; never a redirect (unknown client, bad redirect_uri, expired step...).
    ErrorPage {
        /// HTTP status.
        status: u16,
        /// What went wrong, safe to show.
        message: String,
    },
    /// 303 to this URL (the client's redirect_uri or our own next step).
    Redirect(String),
    /// Show the login form with this HTTP status.
    Login(LoginForm, u16),
    /// Show the consent form.
    Consent(ConsentForm),
}

/// An answer plus the cookies to set with it.
#[derive(Debug)]
pub struct Answer {
    /// What to show.
    pub outcome: Outcome,
    /// Cookies to set.
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

fn error_page(status: u16, message: impl Into<String>) -> Answer {
    Outcome::ErrorPage {
        status,
        message: message.into(),
    }
    .into()
}

const EXPIRED: &str = "This sign-in request has expired or is not valid in this browser. Go back to the application and start again.";

/// A validated authorization request, as kept in the login transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// Exact, registered redirect URI.
    pub redirect_uri: String,
    /// Scopes that exist for this request (unknown ones dropped).
    pub scope: String,
    /// Opaque client state, echoed back.
    pub state: Option<String>,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// API identifier the access token is for.
    pub audience: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt=none`.
    pub prompt_none: bool,
    /// `prompt=login`.
    pub prompt_login: bool,
    /// `prompt=consent`.
    pub prompt_consent: bool,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`: the user the client expects.
    #[serde(default)]
    pub hinted_sub: Option<String>,
    /// Every query parameter as received (for rules' `context.request.query`).
    pub query: BTreeMap<String, String>,
}

enum Invalid {
    Page(String),
    Redirect(OAuthError),
}

/// The parameters of a login form post.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginSubmission {
    /// Transaction id.
    #[serde(default)]
    pub tx: String,
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// Email address.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
}

/// The parameters of a consent form post.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsentSubmission {
    /// Transaction id.
    #[serde(default)]
    pub tx: String,
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// `allow` or `deny`.
    #[serde(default)]
    pub decision: String,
}

/// Whether `s` is a PKCE verifier or challenge: 43–128 unreserved characters (RFC 7636 §4.1).
pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
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
                error_page(500, "Something went wrong on our side. Try again later.")
            }
        }
    }

    async fn authorize_inner(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let (client, request) = match self.validate(tenant, pairs).await? {
            Ok(ok) => ok,
            Err((Invalid::Page(message), _)) => return Ok(error_page(400, message)),
            Err((Invalid::Redirect(err), Some(ctx))) => {
                return Ok(Outcome::Redirect(error_redirect(
                    tenant,
                    &ctx.0,
                    ctx.1.as_deref(),
                    &err,
                ))
                .into());
            }
            Err((Invalid::Redirect(_), None)) => return Ok(error_page(400, "Invalid request.")),
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
        };
        self.store().insert_login_transaction(&record).await?;
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
            return Ok(error_page(400, EXPIRED));
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
        let requested = ScopeSet::parse(&request.scope).unwrap_or_default();
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
            Some(g) => !requested.is_subset(&ScopeSet::parse(&g).unwrap_or_default()),
            None => true,
        })
    }

    async fn current_session(
        &self,
        tenant: &Tenant,
        browser: &Browser,
    ) -> anyhow::Result<Option<SignedIn>> {
        let Some(id) = &browser.session_id else {
            return Ok(None);
        };
        let Some(session) = self
            .store()
            .session(&tenant.id, &hash_token(id), self.now())
            .await?
        else {
            return Ok(None);
        };
        // A session whose user was deleted is no session.
        let Some(user) = self.store().user(&tenant.id, &session.user_id).await? else {
            return Ok(None);
        };
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

    /// Authentication and consent are done: issue the code and send the browser back.
    async fn finish(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let SignedIn { session, user } = signed_in;
        let scope = ScopeSet::parse(&request.scope).unwrap_or_default();
        let sid = session_public_id(&session.id_hash);
        let outcome = self
            .rules()
            .run(RunInput {
                tenant_id: &tenant.id,
                tenant_name: &tenant.name,
                rules_generation: tenant.rules_generation,
                protocol: Protocol::Login,
                user,
                client,
                request: RequestInfo {
                    ip: browser.ip.clone(),
                    hostname: browser.hostname.clone().unwrap_or_default(),
                    user_agent: browser.user_agent.clone().unwrap_or_default(),
                    query: request.query.clone(),
                },
                session_id: Some(&sid),
                auth_time: session.auth_time,
                scope: &scope,
                audience: request.audience.as_deref(),
                now: self.now(),
            })
            .await?;
        let (claims, scope) = match outcome {
            RulesOutcome::Allow { claims, scope } => (claims, scope),
            RulesOutcome::Deny { message } => {
                return Ok(self.fail(tenant, request, ErrorCode::AccessDenied, &message));
            }
            RulesOutcome::Fail { execution_id } => {
                let description =
                    format!("a rule failed; the tenant can look up execution {execution_id}");
                return Ok(self.fail(tenant, request, ErrorCode::ServerError, &description));
            }
        };
        let code = self
            .issue_code(tenant, client, request, session, user, &scope, &claims)
            .await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", &tenant.issuer));
        Ok(Outcome::Redirect(with_params(&request.redirect_uri, &params)).into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue_code(
        &self,
        tenant: &Tenant,
        client: &ClientRecord,
        request: &AuthorizationRequest,
        session: &SessionRecord,
        user: &UserRecord,
        scope: &ScopeSet,
        claims: &serde_json::Value,
    ) -> anyhow::Result<String> {
        let code = random_token(32);
        let now = self.now();
        let record = CodeRecord {
            code_hash: hash_token(&code),
            tenant_id: tenant.id.clone(),
            grant_id: uuid::Uuid::new_v4().to_string(),
            client_id: client.client_id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: scope.to_string(),
            audience: request.audience.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            session_id: Some(session_public_id(&session.id_hash)),
            claims: claims.to_string(),
            created_at: now,
            expires_at: now + self.lifetimes().code,
            consumed_at: None,
        };
        self.store().insert_code(&record).await?;
        Ok(code)
    }

    /// Loads a transaction that this browser started; `None` when expired, unknown or foreign.
    async fn transaction(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<Option<(LoginTransactionRecord, AuthorizationRequest, ClientRecord)>> {
        if tx_id.is_empty() || tx_id.len() > 100 {
            return Ok(None);
        }
        let Some(tx) = self
            .store()
            .login_transaction(&tenant.id, &hash_token(tx_id), self.now())
            .await?
        else {
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
        let Some(client) = self.store().client(&tenant.id, &tx.client_id).await? else {
            return Ok(None);
        };
        Ok(Some((tx, request, client)))
    }

    fn csrf_ok(&self, tx_id: &str, presented: &str) -> bool {
        ct_eq(self.csrf_token(tx_id).as_bytes(), presented.as_bytes())
    }

    /// `GET /login?tx=`.
    pub async fn login_page(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let Some((_, request, client)) = self.transaction(tenant, tx_id, browser).await? else {
            return Ok(error_page(400, EXPIRED));
        };
        let form = LoginForm {
            tx: tx_id.to_string(),
            csrf: self.csrf_token(tx_id),
            client_name: client.name,
            username: request.login_hint.unwrap_or_default(),
            error: None,
        };
        Ok(Outcome::Login(form, 200).into())
    }

    /// `POST /login`.
    pub async fn login(
        &self,
        tenant: &Tenant,
        form: LoginSubmission,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        if !self.csrf_ok(&form.tx, &form.csrf) {
            return Ok(error_page(
                403,
                "The form could not be verified (missing or invalid CSRF token). Go back to the application and start again.",
            ));
        }
        let Some((tx, request, client)) = self.transaction(tenant, &form.tx, browser).await? else {
            return Ok(error_page(400, EXPIRED));
        };
        let username = form.username.trim().to_lowercase();
        let retry = |message: &str, status: u16| -> Answer {
            Outcome::Login(
                LoginForm {
                    tx: form.tx.clone(),
                    csrf: form.csrf.clone(),
                    client_name: client.name.clone(),
                    username: form.username.trim().to_string(),
                    error: Some(message.to_string()),
                },
                status,
            )
            .into()
        };
        let now = self.now();
        let lt = self.lifetimes();
        let throttle_key = format!("{username}|{}", browser.ip);
        let window_after = now - lt.throttle_window;
        if self
            .store()
            .login_failures(&tenant.id, &throttle_key, window_after)
            .await?
            >= lt.max_failed_logins
        {
            return Ok(retry(
                "Too many failed attempts. Wait a few minutes and try again.",
                429,
            ));
        }
        let user = self.store().user_by_email(&tenant.id, &username).await?;
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| crate::passwords::dummy_hash().to_string());
        let Ok(verified) = crate::passwords::verify(form.password.clone(), phc).await else {
            return Ok(retry(
                "The server is busy. Wait a moment and try again.",
                429,
            ));
        };
        let user = match user {
            Some(u) if verified => u,
            _ => {
                self.store()
                    .record_login_failure(&tenant.id, &throttle_key, now, window_after)
                    .await?;
                return Ok(retry("Wrong email or password.", 401));
            }
        };
        self.store()
            .clear_login_failures(&tenant.id, &throttle_key)
            .await?;
        self.store()
            .record_login(&tenant.id, &user.user_id, now)
            .await?;
        // The rules see the counters with this login included, as stored.
        let user = UserRecord {
            logins_count: user.logins_count + 1,
            last_login: Some(now),
            ..user
        };
        if let Some(old) = &browser.session_id {
            self.store().delete_session(&hash_token(old)).await?;
        }
        let session_id = random_token(32);
        let session = SessionRecord {
            id_hash: hash_token(&session_id),
            tenant_id: tenant.id.clone(),
            user_id: user.user_id.clone(),
            auth_time: now,
            created_at: now,
            expires_at: now + lt.session,
        };
        self.store().insert_session(&session).await?;
        self.store()
            .mark_transaction_logged_in(&tx.id_hash, now)
            .await?;
        let tx = LoginTransactionRecord {
            logged_in_at: Some(now),
            ..tx
        };
        let mut answer = self
            .proceed(
                tenant,
                &form.tx,
                &tx,
                &client,
                &request,
                Some(SignedIn { session, user }),
                browser,
            )
            .await?;
        answer.cookies.session_id = Some(session_id);
        Ok(answer)
    }

    /// `GET /consent?tx=`.
    pub async fn consent_page(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let Some((_, request, client)) = self.transaction(tenant, tx_id, browser).await? else {
            return Ok(error_page(400, EXPIRED));
        };
        let Some(SignedIn { user, .. }) = self.current_session(tenant, browser).await? else {
            return Ok(
                Outcome::Redirect(with_params(&tenant.url("/login"), &[("tx", tx_id)])).into(),
            );
        };
        let (api_name, api_scopes) = match &request.audience {
            Some(aud) => match self
                .store()
                .resource_server_by_identifier(&tenant.id, aud)
                .await?
            {
                Some(api) => (Some(api.name.clone()), api.scopes()),
                None => (None, vec![]),
            },
            None => (None, vec![]),
        };
        let scopes = describe(
            &ScopeSet::parse(&request.scope).unwrap_or_default(),
            &api_scopes,
        );
        Ok(Outcome::Consent(ConsentForm {
            tx: tx_id.to_string(),
            csrf: self.csrf_token(tx_id),
            client_name: client.name,
            user_email: user.email,
            api_name,
            scopes,
        })
        .into())
    }

    /// `POST /consent`.
    pub async fn consent(
        &self,
        tenant: &Tenant,
        form: ConsentSubmission,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        if !self.csrf_ok(&form.tx, &form.csrf) {
            return Ok(error_page(
                403,
                "The form could not be verified (missing or invalid CSRF token). Go back to the application and start again.",
            ));
        }
        let Some((tx, request, client)) = self.transaction(tenant, &form.tx, browser).await? else {
            return Ok(error_page(400, EXPIRED));
        };
        let Some(session) = self.current_session(tenant, browser).await? else {
            return Ok(
                Outcome::Redirect(with_params(&tenant.url("/login"), &[("tx", &form.tx)])).into(),
            );
        };
        match form.decision.as_str() {
            "allow" => {}
            "deny" => {
                self.store().delete_login_transaction(&tx.id_hash).await?;
                return Ok(self.fail(
                    tenant,
                    &request,
                    ErrorCode::AccessDenied,
                    "the user denied access",
                ));
            }
            _ => return Ok(error_page(400, "Choose Allow or Deny.")),
        }
        let now = self.now();
        let audience = request.audience.as_deref().unwrap_or("");
        let requested = ScopeSet::parse(&request.scope).unwrap_or_default();
        let previous = self
            .store()
            .consent(
                &tenant.id,
                &session.user.user_id,
                &client.client_id,
                audience,
            )
            .await?;
        let all = requested
            .union(&ScopeSet::parse(previous.as_deref().unwrap_or("")).unwrap_or_default());
        self.store()
            .save_consent(
                &tenant.id,
                &session.user.user_id,
                &client.client_id,
                audience,
                &all.to_string(),
                now,
            )
            .await?;
        self.store()
            .mark_transaction_consented(&tx.id_hash, now)
            .await?;
        let tx = LoginTransactionRecord {
            consented_at: Some(now),
            ..tx
        };
        self.proceed(
            tenant,
            &form.tx,
            &tx,
            &client,
            &request,
            Some(session),
            browser,
        )
        .await
    }

    /// Checks an authorization request. The outer error is an internal failure; the inner
    /// one says whether the problem may be reported by redirect (and where) or only on a page.
    #[allow(clippy::type_complexity)]
    async fn validate(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
    ) -> anyhow::Result<
        Result<(ClientRecord, AuthorizationRequest), (Invalid, Option<(String, Option<String>)>)>,
    > {
        let mut query: BTreeMap<String, String> = BTreeMap::new();
        let mut duplicated: Option<String> = None;
        for (k, v) in pairs {
            if query.contains_key(&k) && duplicated.is_none() {
                duplicated = Some(k.clone());
            }
            query.insert(k, v);
        }
        let get = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
        let page = |m: &str| Ok(Err((Invalid::Page(m.to_string()), None)));

        if matches!(duplicated.as_deref(), Some("client_id" | "redirect_uri")) {
            return page("The request repeats a parameter (client_id or redirect_uri).");
        }
        let Some(client_id) = get("client_id") else {
            return page("The request has no client_id.");
        };
        let Some(client) = find_client(self.store(), &tenant.id, &client_id).await? else {
            return page("Unknown application (client_id).");
        };
        let Some(redirect_uri) = get("redirect_uri") else {
            return page("The request has no redirect_uri.");
        };
        if !redirect_uri_is_registered(&client, &redirect_uri) {
            return page("The redirect_uri is not registered for this application.");
        }
        let state = get("state");
        let ctx = Some((redirect_uri.clone(), state.clone()));
        let bad = |code: ErrorCode, m: &str| {
            Ok(Err((
                Invalid::Redirect(OAuthError::new(code, m)),
                ctx.clone(),
            )))
        };

        if let Some(k) = duplicated {
            return bad(
                ErrorCode::InvalidRequest,
                &format!("parameter {k} is repeated"),
            );
        }
        if query.contains_key("request") {
            return bad(
                ErrorCode::RequestNotSupported,
                "request objects are not supported",
            );
        }
        if query.contains_key("request_uri") {
            return bad(
                ErrorCode::RequestUriNotSupported,
                "request_uri is not supported",
            );
        }
        match get("response_type").as_deref() {
            None => return bad(ErrorCode::InvalidRequest, "response_type is missing"),
            Some("code") => {}
            Some(_) => {
                return bad(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                );
            }
        }
        if let Some(mode) = get("response_mode")
            && mode != "query"
        {
            return bad(
                ErrorCode::InvalidRequest,
                "only response_mode=query is supported",
            );
        }
        if !client.allows_grant("authorization_code") {
            return bad(
                ErrorCode::UnauthorizedClient,
                "the client may not use the authorization code grant",
            );
        }
        let requested = match ScopeSet::parse(&get("scope").unwrap_or_default()) {
            Ok(s) => s,
            Err(e) => return bad(ErrorCode::InvalidScope, &e.0),
        };
        let audience = get("audience");
        let api_scopes = match &audience {
            Some(aud) => match self
                .store()
                .resource_server_by_identifier(&tenant.id, aud)
                .await?
            {
                Some(api) => api.scopes(),
                None => {
                    return bad(
                        ErrorCode::InvalidRequest,
                        "audience names no API of this tenant",
                    );
                }
            },
            None => vec![],
        };
        let scope = grantable(&requested, &api_scopes);

        let code_challenge = get("code_challenge");
        let method = get("code_challenge_method");
        match (&code_challenge, method.as_deref()) {
            (None, Some(_)) => {
                return bad(
                    ErrorCode::InvalidRequest,
                    "code_challenge_method without code_challenge",
                );
            }
            (Some(_), None | Some("plain")) => {
                return bad(
                    ErrorCode::InvalidRequest,
                    "PKCE requires code_challenge_method=S256; plain is not allowed",
                );
            }
            (Some(_), Some("S256")) => {}
            (Some(_), Some(_)) => {
                return bad(
                    ErrorCode::InvalidRequest,
                    "unsupported code_challenge_method; use S256",
                );
            }
            (None, None) if client.is_public() => {
                return bad(
                    ErrorCode::InvalidRequest,
                    "public clients must use PKCE (code_challenge with S256)",
                );
            }
            (None, None) => {}
        }
        if let Some(c) = &code_challenge
            && !(c.len() == 43 && is_pkce_value(c))
        {
            return bad(
                ErrorCode::InvalidRequest,
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            );
        }

        let prompts: Vec<String> = get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        for p in &prompts {
            if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
                return bad(
                    ErrorCode::InvalidRequest,
                    &format!("unsupported prompt value {p:?}"),
                );
            }
        }
        let prompt_none = prompts.iter().any(|p| p == "none");
        if prompt_none && prompts.len() > 1 {
            return bad(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values",
            );
        }
        let max_age = match get("max_age") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    return bad(
                        ErrorCode::InvalidRequest,
                        "max_age must be a non-negative integer",
                    );
                }
            },
        };
        for (k, limit) in [("state", 2000), ("nonce", 500), ("login_hint", 254)] {
            if get(k).is_some_and(|v| v.len() > limit) {
                return bad(
                    ErrorCode::InvalidRequest,
                    &format!("{k} is longer than {limit} characters"),
                );
            }
        }
        let hinted_sub = match get("id_token_hint") {
            None => None,
            Some(hint) => {
                let keys = self.keys().tenant(&tenant.id).await?;
                // An expired ID token is still a fine hint (OIDC Core §3.1.2.1).
                match keys.verify(&hint, "JWT", &tenant.issuer, None, None) {
                    Ok(claims) => claims.get("sub").and_then(|s| s.as_str()).map(String::from),
                    Err(_) => {
                        return bad(
                            ErrorCode::InvalidRequest,
                            "id_token_hint is not an ID token of this issuer",
                        );
                    }
                }
            }
        };
        let request = AuthorizationRequest {
            client_id,
            redirect_uri,
            scope: scope.to_string(),
            state,
            nonce: get("nonce"),
            audience,
            code_challenge,
            prompt_none,
            prompt_login: prompts.iter().any(|p| p == "login"),
            prompt_consent: prompts.iter().any(|p| p == "consent"),
            max_age,
            login_hint: get("login_hint"),
            hinted_sub,
            query: query.clone(),
        };
        Ok(Ok((client, request)))
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
