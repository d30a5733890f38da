//! The only module that knows axum: routes, extractors, cookies and rendering of the
//! protocols' error formats. Handlers are thin: parse, call [`crate::oauth`], render.

mod authorize;
mod error;
mod management;
mod oidc;
mod pages;
mod server;
mod token;

pub use error::JsonError;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::oauth::{Provider, Tenant};
use crate::service::demo::Demo;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The authorization server.
    pub provider: Provider,
    pub pages: Arc<pages::Pages>,
    /// Demo credentials when running with `--demo`.
    pub demo: Option<Arc<Demo>>,
    /// The service layer (Management API).
    pub admin: crate::service::Admin,
    /// The Management API's OpenAPI document.
    pub openapi: Arc<utoipa::openapi::OpenApi>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// What `/metrics` exposes.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl FromRef<AppState> for Provider {
    fn from_ref(state: &AppState) -> Provider {
        state.provider.clone()
    }
}

/// The Management API's OpenAPI document, built from the handlers' annotations.
pub fn management_openapi() -> Arc<utoipa::openapi::OpenApi> {
    management::router().1
}

/// Builds the whole router.
pub fn router(state: AppState) -> Router {
    let oauth = Router::new()
        .route(
            "/t/{tenant}/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/t/{tenant}/login",
            get(authorize::login_page).post(authorize::login_submit),
        )
        .route(
            "/t/{tenant}/consent",
            get(authorize::consent_page).post(authorize::consent_submit),
        )
        .route(
            "/t/{tenant}/oidc/logout",
            get(authorize::logout_get).post(authorize::logout_post),
        )
        .route(
            "/t/{tenant}/continue",
            get(authorize::continue_get).post(authorize::continue_post),
        )
        .route("/t/{tenant}/oauth/token", post(token::token))
        .route("/t/{tenant}/oauth/revoke", post(token::revoke))
        .route("/t/{tenant}/oauth/introspect", post(token::introspect))
        .route(
            "/t/{tenant}/userinfo",
            get(oidc::userinfo_get).post(oidc::userinfo_post),
        )
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(oidc::discovery),
        )
        .route("/t/{tenant}/.well-known/jwks.json", get(oidc::jwks))
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    let (management, _) = management::router();
    // Browsers that once reached an https deployment never try it over plain http again.
    let hsts = state.provider.public_url().is_https().then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    Router::new()
        .merge(oauth)
        .nest("/t/{tenant}/api/v2", management)
        .route("/assets/style.css", get(server::stylesheet))
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/demo/callback", get(server::demo_callback))
        .fallback(server::not_found)
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server::count_request,
        ))
        .layer(TraceLayer::new_for_http())
        // Probes stay out of the request trace: a load balancer polls them every few seconds,
        // and a 503 while the module cache warms up is expected, not an error to log.
        .route("/healthz", get(server::healthz))
        .route("/readyz", get(server::readyz))
        .route("/metrics", get(server::metrics))
        .layer(tower::util::option_layer(hsts))
        .with_state(state)
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// The tenant named in the path; unknown tenants answer 404.
pub struct CurrentTenant(pub Tenant);

impl FromRequestParts<AppState> for CurrentTenant {
    type Rejection = JsonError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| JsonError::not_found("unknown tenant"))?;
        let name = params
            .iter()
            .find(|(k, _)| k == "tenant")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| JsonError::not_found("unknown tenant"))?;
        match state.provider.tenant(name).await {
            Ok(Some(t)) => Ok(CurrentTenant(t)),
            Ok(None) => Err(JsonError::not_found("unknown tenant")),
            Err(e) => Err(JsonError::internal(e)),
        }
    }
}

/// The client's address (see [`client_ip`]).
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_ip(parts, &state.trusted_proxies)))
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the nearest
/// address in `X-Forwarded-For` that is not one of the trusted proxies (addresses further left
/// were written by the client and prove nothing).
/// The first language of `Accept-Language` (`en-US` of `en-US,en;q=0.9`), or empty.
pub(crate) fn first_language(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|l| l.split(';').next().unwrap_or_default().trim())
        .filter(|l| l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> String {
    let Some(peer) = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return String::new();
    };
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}

/// The page renderer for a public URL (stylesheet links follow its path prefix).
pub fn pages_for(public_url: &crate::config::PublicUrl) -> pages::Pages {
    pages::Pages::new(public_url.path())
}
