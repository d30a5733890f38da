//! Browser-facing steps: `/authorize`, the login form, the consent form and logout.

use axum::Form;
use axum::extract::{FromRequestParts, Query, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::{AppState, CurrentTenant, client_ip};
use crate::domain::usage::Metric;
use crate::oauth::Tenant;
use crate::oauth::authorize::{
    Answer, Browser, ConsentSubmission, LoginProblem, LoginSubmission, Outcome, Problem,
};
use crate::oidc::logout::{LogoutOutcome, LogoutRequest};

const BROWSER_COOKIE: &str = "wardstone_browser";
const SESSION_COOKIE: &str = "wardstone_session";
const DEVICE_COOKIE: &str = "wardstone_device";

/// What the protocol layer needs to know about the browser.
pub struct BrowserInfo(pub Browser);

impl FromRequestParts<AppState> for BrowserInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut browser = Browser {
            ip: client_ip(parts, &state.trusted_proxies),
            ..Browser::default()
        };
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for c in Cookie::split_parse(text).flatten() {
                match c.name() {
                    BROWSER_COOKIE => browser.browser_id = Some(c.value().to_string()),
                    SESSION_COOKIE => browser.session_id = Some(c.value().to_string()),
                    DEVICE_COOKIE => browser.device = Some(c.value().to_string()),
                    _ => {}
                }
            }
        }
        let header_text = |h| {
            parts
                .headers
                .get(h)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(String::from)
        };
        browser.user_agent = header_text(header::USER_AGENT);
        browser.hostname = header_text(header::HOST);
        browser.method = parts.method.as_str().to_string();
        browser.language = Some(super::first_language(&parts.headers)).filter(|l| !l.is_empty());
        Ok(BrowserInfo(browser))
    }
}

fn cookie(
    state: &AppState,
    tenant: &Tenant,
    name: &'static str,
    value: String,
    max_age: i64,
) -> HeaderValue {
    let provider = &state.provider;
    let c = Cookie::build((name, value))
        .path(format!(
            "{}/t/{}",
            provider.public_url().path(),
            tenant.name
        ))
        .http_only(true)
        .secure(provider.public_url().is_https())
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie values are base64url")
}

/// The status of a page that reports a problem.
fn problem_status(problem: &Problem) -> StatusCode {
    match problem {
        Problem::BadRequest(_) | Problem::Expired => StatusCode::BAD_REQUEST,
        Problem::Forbidden => StatusCode::FORBIDDEN,
    }
}

fn render(state: &AppState, tenant: &Tenant, answer: Answer) -> Response {
    let mut response = match answer.outcome {
        Outcome::Redirect(url) => match HeaderValue::from_str(&url) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => state
                .pages
                .error(StatusCode::BAD_REQUEST, "Invalid redirect."),
        },
        Outcome::Login(form) => {
            let (status, retry_after) = match form.problem {
                None => (StatusCode::OK, None),
                Some(LoginProblem::WrongCredentials) => (StatusCode::UNAUTHORIZED, None),
                Some(LoginProblem::TooLong) => (StatusCode::BAD_REQUEST, None),
                Some(
                    LoginProblem::Throttled { retry_after } | LoginProblem::Busy { retry_after },
                ) => (StatusCode::TOO_MANY_REQUESTS, Some(retry_after)),
                Some(LoginProblem::Unavailable { retry_after }) => {
                    (StatusCode::SERVICE_UNAVAILABLE, Some(retry_after))
                }
            };
            let mut page = state.pages.render("login.html", status, form);
            if let Some(seconds) = retry_after {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            page
        }
        Outcome::Consent(form) => state.pages.render("consent.html", StatusCode::OK, form),
        Outcome::Problem(problem) => state
            .pages
            .error(problem_status(&problem), problem.message()),
    };
    let lifetimes = state.provider.lifetimes();
    let headers = response.headers_mut();
    if let Some(id) = answer.cookies.browser_id {
        // Lives as long as a session could, so a transaction never outlives its binding.
        headers.append(
            header::SET_COOKIE,
            cookie(state, tenant, BROWSER_COOKIE, id, lifetimes.session),
        );
    }
    if let Some(id) = answer.cookies.session_id {
        headers.append(
            header::SET_COOKIE,
            cookie(state, tenant, SESSION_COOKIE, id, lifetimes.session),
        );
    }
    if let Some(value) = answer.cookies.device {
        headers.append(
            header::SET_COOKIE,
            cookie(
                state,
                tenant,
                DEVICE_COOKIE,
                value,
                crate::oauth::authorize::throttle::DEVICE_COOKIE_SECONDS,
            ),
        );
    }
    response
}

fn internal(state: &AppState, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "authorization step failed");
    state.pages.error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. Try again later.",
    )
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// `GET /authorize`.
pub async fn authorize_get(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    match state.provider.authorize(&tenant, pairs, &browser).await {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

/// `POST /authorize` (form-encoded, OIDC Core §3.1.2.1).
pub async fn authorize_post(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    body: axum::body::Bytes,
) -> Response {
    match state
        .provider
        .authorize(&tenant, pairs(&body), &browser)
        .await
    {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

/// `GET /continue?state=…`: the browser back from a redirect action's page.
pub async fn continue_get(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.unwrap_or_default().as_bytes());
    match state
        .provider
        .continue_login(&tenant, params, &browser)
        .await
    {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

/// `POST /continue` (form-encoded: `state` and what the action reads).
pub async fn continue_post(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    body: axum::body::Bytes,
) -> Response {
    match state
        .provider
        .continue_login(&tenant, pairs(&body), &browser)
        .await
    {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

#[derive(Deserialize)]
pub struct TxQuery {
    #[serde(default)]
    tx: String,
}

/// `GET /login?tx=`.
pub async fn login_page(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    Query(q): Query<TxQuery>,
) -> Response {
    match state.provider.login_page(&tenant, &q.tx, &browser).await {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

/// `POST /login`.
pub async fn login_submit(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    Form(form): Form<LoginSubmission>,
) -> Response {
    match state.provider.login(&tenant, form, &browser).await {
        Ok(answer) => {
            state.metrics.login(match &answer.outcome {
                Outcome::Login(form) => match form.problem {
                    None => "shown",
                    Some(LoginProblem::WrongCredentials) => "wrong_credentials",
                    Some(LoginProblem::TooLong) => "too_long",
                    Some(LoginProblem::Throttled { .. }) => "throttled",
                    Some(LoginProblem::Busy { .. }) => "busy",
                    Some(LoginProblem::Unavailable { .. }) => "migration_unavailable",
                },
                Outcome::Redirect(_) | Outcome::Consent(_) => {
                    state.provider.count_usage(&tenant, Metric::Logins);
                    "success"
                }
                Outcome::Problem(_) => "refused",
            });
            render(&state, &tenant, answer)
        }
        Err(e) => {
            state.metrics.login("error");
            internal(&state, e)
        }
    }
}

/// `GET /consent?tx=`.
pub async fn consent_page(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    Query(q): Query<TxQuery>,
) -> Response {
    match state.provider.consent_page(&tenant, &q.tx, &browser).await {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

/// `POST /consent`.
pub async fn consent_submit(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    Form(form): Form<ConsentSubmission>,
) -> Response {
    match state.provider.consent(&tenant, form, &browser).await {
        Ok(answer) => render(&state, &tenant, answer),
        Err(e) => internal(&state, e),
    }
}

fn logout(state: &AppState, tenant: &Tenant, outcome: anyhow::Result<LogoutOutcome>) -> Response {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return internal(state, e),
    };
    let ends_session = outcome.ends_session();
    let mut response = match outcome {
        LogoutOutcome::Redirect(url) => match HeaderValue::from_str(&url) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => state
                .pages
                .error(StatusCode::BAD_REQUEST, "Invalid redirect."),
        },
        LogoutOutcome::LoggedOut => {
            state
                .pages
                .render("logged_out.html", StatusCode::OK, minijinja::context! {})
        }
        LogoutOutcome::Confirm(form) => state.pages.render("logout.html", StatusCode::OK, form),
        LogoutOutcome::Problem(message) => state.pages.error(StatusCode::BAD_REQUEST, &message),
    };
    if ends_session {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie(state, tenant, SESSION_COOKIE, String::new(), 0),
        );
    }
    response
}

async fn end_session(
    state: &AppState,
    tenant: &Tenant,
    browser: &Browser,
    pairs: Vec<(String, String)>,
) -> Response {
    let outcome = match LogoutRequest::parse(pairs) {
        Ok(request) => {
            state
                .provider
                .end_session(tenant, request, browser.session_id.as_deref())
                .await
        }
        Err(message) => Ok(LogoutOutcome::Problem(message)),
    };
    logout(state, tenant, outcome)
}

/// `GET /oidc/logout` (RP-Initiated Logout 1.0).
pub async fn logout_get(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    end_session(&state, &tenant, &browser, pairs).await
}

/// `POST /oidc/logout`: the same, form-encoded; also where the confirmation form posts.
pub async fn logout_post(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    BrowserInfo(browser): BrowserInfo,
    body: axum::body::Bytes,
) -> Response {
    end_session(&state, &tenant, &browser, pairs(&body)).await
}
