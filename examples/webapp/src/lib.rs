//! A sample regular (server-side) web app: it signs users in through Wardstone with the
//! authorization code grant using the `openidconnect` relying-party library (discovery, state,
//! nonce, PKCE, ID-token validation), keeps every token in its own server-side session (the
//! browser holds only a random session id), calls an API with the access token, refreshes, and
//! logs out through OpenID Connect RP-Initiated Logout. It is written only against Wardstone's
//! public HTTP interfaces: copy it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

/// How the app is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tenant's issuer.
    pub issuer: String,
    /// This app's client id.
    pub client_id: String,
    /// This app's client secret.
    pub client_secret: String,
    /// This app's own URL without a trailing slash (callback: `{base_url}/callback`; after a
    /// logout Wardstone sends the browser to `{base_url}/`).
    pub base_url: String,
    /// The API the app calls.
    pub api_url: String,
    /// The API's identifier, requested as the token's audience.
    pub audience: String,
    /// Scopes of the API to request.
    pub scope: String,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

const SESSION_COOKIE: &str = "demo_webapp_session";

/// A login on its way through Wardstone.
struct Pending {
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

/// What the app knows about a browser. Tokens stay here, never in the browser.
#[derive(Default)]
struct Session {
    /// Protects the app's own forms.
    csrf: String,
    pending: Option<Pending>,
    user: Option<SignedIn>,
    /// The last thing to tell the user (an API answer, an error, a notice).
    notice: Option<String>,
    error: Option<String>,
    api_answer: Option<String>,
}

struct SignedIn {
    name: String,
    email: String,
    id_token: String,
    access_token: String,
    refresh_token: Option<String>,
}

struct App {
    config: Config,
    http: reqwest::Client,
    provider: Mutex<Option<(Client, Option<String>)>>,
    sessions: Mutex<HashMap<String, Session>>,
    pages: minijinja::Environment<'static>,
}

/// Serves the app on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> anyhow::Result<()> {
    axum::serve(listener, router(config)).await?;
    Ok(())
}

/// The app's routes.
pub fn router(config: Config) -> Router {
    let mut pages = minijinja::Environment::new();
    pages
        .add_template("index.html", include_str!("../templates/index.html"))
        .expect("the template is valid");
    let app = Arc::new(App {
        config,
        http: reqwest::Client::builder()
            // The relying party must not follow redirects (openidconnect's advice).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a default HTTP client"),
        provider: Mutex::new(None),
        sessions: Mutex::new(HashMap::new()),
        pages,
    });
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/callback", get(callback))
        .route("/call-api", post(call_api))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .with_state(app)
}

fn random() -> String {
    CsrfToken::new_random().secret().clone()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .flatten()
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

impl App {
    /// The relying-party client, from discovery on first use (the issuer may start after us).
    async fn client(&self) -> anyhow::Result<(Client, Option<String>)> {
        let mut cached = self.provider.lock().await;
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await?;
        // RP-Initiated Logout's endpoint is not part of the core metadata type.
        let discovery: Value = self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer
            ))
            .send()
            .await?
            .json()
            .await?;
        let end_session = discovery["end_session_endpoint"].as_str().map(String::from);
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(format!(
            "{}/callback",
            self.config.base_url
        ))?);
        *cached = Some((client, end_session));
        Ok(cached.clone().expect("just set"))
    }

    /// The browser's session id, or a new one with its `Set-Cookie`.
    async fn session(&self, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
        let mut sessions = self.sessions.lock().await;
        if let Some(id) = session_id(headers).filter(|id| sessions.contains_key(id)) {
            return (id, None);
        }
        let id = random();
        sessions.insert(
            id.clone(),
            Session {
                csrf: random(),
                ..Session::default()
            },
        );
        let cookie = cookie::Cookie::build((SESSION_COOKIE, id.clone()))
            .path("/")
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .build();
        (id, HeaderValue::from_str(&cookie.to_string()).ok())
    }

    /// Checks the form's CSRF token against the browser's session.
    async fn checked(&self, headers: &HeaderMap, form: &CsrfForm) -> Option<String> {
        let id = session_id(headers)?;
        let sessions = self.sessions.lock().await;
        let s = sessions.get(&id)?;
        (s.csrf == form.csrf).then_some(id)
    }

    async fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        self.sessions.lock().await.get_mut(id).map(f)
    }
}

#[derive(Serialize)]
struct Page {
    signed_in: bool,
    name: String,
    email: String,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    api_answer: Option<String>,
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (id, set_cookie) = app.session(&headers).await;
    let page = app
        .with_session(&id, |s| Page {
            signed_in: s.user.is_some(),
            name: s.user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
            email: s.user.as_ref().map(|u| u.email.clone()).unwrap_or_default(),
            csrf: s.csrf.clone(),
            notice: s.notice.take(),
            error: s.error.take(),
            api_answer: s.api_answer.clone(),
        })
        .await
        .expect("the session was just made");
    let html = app
        .pages
        .get_template("index.html")
        .and_then(|t| t.render(&page));
    let mut response = match html {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    };
    if let Some(c) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Starts a login: state, nonce and PKCE are kept in the session; the browser goes to
/// Wardstone's authorization endpoint.
async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = app.checked(&headers, &form).await else {
        return Redirect::to("/").into_response();
    };
    let (client, _) = match app.client().await {
        Ok(c) => c,
        Err(e) => return fail(&app, &id, format!("The issuer cannot be reached: {e}")).await,
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("audience", app.config.audience.clone())
        .set_pkce_challenge(challenge);
    for s in app.config.scope.split_whitespace() {
        request = request.add_scope(Scope::new(s.to_string()));
    }
    let (url, state, nonce) = request.url();
    app.with_session(&id, |s| {
        s.pending = Some(Pending {
            state,
            nonce,
            verifier,
        })
    })
    .await;
    Redirect::to(url.as_str()).into_response()
}

async fn fail(app: &App, id: &str, message: String) -> Response {
    app.with_session(id, |s| s.error = Some(message)).await;
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Wardstone sends the browser back here with a code (or an error, e.g. a rule's denial).
async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(id) = session_id(&headers) else {
        return Redirect::to("/").into_response();
    };
    let Some(Some(pending)) = app.with_session(&id, |s| s.pending.take()).await else {
        return fail(&app, &id, "No login was in progress.".into()).await;
    };
    if q.state.as_deref() != Some(pending.state.secret().as_str()) {
        return fail(
            &app,
            &id,
            "The login's state does not match; try again.".into(),
        )
        .await;
    }
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or_default();
        return fail(
            &app,
            &id,
            format!("Wardstone did not sign you in ({error}): {why}"),
        )
        .await;
    }
    let Some(code) = q.code else {
        return fail(&app, &id, "The callback carries no code.".into()).await;
    };
    let signed_in = async {
        let (client, _) = app.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&app.http)
            .await?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| anyhow::anyhow!("no ID token"))?;
        let claims = id_token.claims(&client.id_token_verifier(), &pending.nonce)?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default();
        let email = claims.email().map(|e| e.to_string()).unwrap_or_default();
        anyhow::Ok(SignedIn {
            name,
            email,
            id_token: id_token.to_string(),
            access_token: tokens.access_token().secret().clone(),
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        })
    }
    .await;
    match signed_in {
        Ok(user) => {
            app.with_session(&id, |s| {
                s.user = Some(user);
                s.api_answer = None;
            })
            .await;
            Redirect::to("/").into_response()
        }
        Err(e) => fail(&app, &id, format!("The sign-in failed: {e:#}")).await,
    }
}

/// Calls the API with the session's access token and keeps its answer for the page.
async fn call_api(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = app.checked(&headers, &form).await else {
        return Redirect::to("/").into_response();
    };
    let Some(Some(token)) = app
        .with_session(&id, |s| s.user.as_ref().map(|u| u.access_token.clone()))
        .await
    else {
        return fail(&app, &id, "Log in first.".into()).await;
    };
    let answer = async {
        let resp = app
            .http
            .get(&app.config.api_url)
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::Ok(format!(
            "HTTP {status}\n{}",
            serde_json::to_string_pretty(&body)?
        ))
    }
    .await;
    match answer {
        Ok(text) => {
            app.with_session(&id, |s| s.api_answer = Some(text)).await;
            Redirect::to("/").into_response()
        }
        Err(e) => fail(&app, &id, format!("The API cannot be reached: {e}")).await,
    }
}

/// Uses the refresh token (Wardstone runs the tenant's rules again).
async fn refresh(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = app.checked(&headers, &form).await else {
        return Redirect::to("/").into_response();
    };
    let Some(Some(refresh_token)) = app
        .with_session(&id, |s| {
            s.user.as_ref().and_then(|u| u.refresh_token.clone())
        })
        .await
    else {
        return fail(&app, &id, "There is no refresh token; log in first.".into()).await;
    };
    let refreshed = async {
        let (client, _) = app.client().await?;
        let tokens = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token))?
            .request_async(&app.http)
            .await?;
        anyhow::Ok((
            tokens.access_token().secret().clone(),
            tokens.refresh_token().map(|r| r.secret().clone()),
        ))
    }
    .await;
    match refreshed {
        Ok((access, refresh)) => {
            app.with_session(&id, |s| {
                if let Some(u) = s.user.as_mut() {
                    u.access_token = access;
                    if refresh.is_some() {
                        u.refresh_token = refresh;
                    }
                }
                s.notice = Some("Tokens refreshed.".into());
            })
            .await;
            Redirect::to("/").into_response()
        }
        Err(e) => fail(&app, &id, format!("The refresh failed: {e:#}")).await,
    }
}

/// Ends the app's session, then Wardstone's (RP-Initiated Logout), which sends the browser
/// back to this app's home page.
async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = app.checked(&headers, &form).await else {
        return Redirect::to("/").into_response();
    };
    let session = app.sessions.lock().await.remove(&id);
    let id_token = session.and_then(|s| s.user).map(|u| u.id_token);
    let end_session = match app.client().await {
        Ok((_, end_session)) => end_session,
        Err(_) => None,
    };
    match (end_session, id_token) {
        (Some(endpoint), Some(hint)) => {
            let Ok(mut url) = url::Url::parse(&endpoint) else {
                return Redirect::to("/").into_response();
            };
            url.query_pairs_mut()
                .append_pair("id_token_hint", &hint)
                .append_pair(
                    "post_logout_redirect_uri",
                    &format!("{}/", app.config.base_url),
                )
                .append_pair("state", &random());
            Redirect::to(url.as_str()).into_response()
        }
        _ => Redirect::to("/").into_response(),
    }
}
