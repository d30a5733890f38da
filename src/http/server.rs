//! Server-wide routes: health, readiness, metrics, the stylesheet and the demo callback page.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, JsonError};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the database answers and the start-up warm-up of the rule module cache is
/// over (a load balancer then sends logins only to a node that will not make them wait).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.provider.rules().is_warm() {
        return JsonError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "warming the rule module cache",
        )
        .into_response();
    }
    match state.provider.store().ping().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            JsonError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unreachable",
            )
            .into_response()
        }
    }
}

/// `GET /metrics` (OpenMetrics text, which Prometheus scrapes).
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Counts every routed request by its route template (never the raw path: unbounded) and
/// status.
pub async fn count_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.metrics.http(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /assets/style.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        super::pages::STYLESHEET,
    )
        .into_response()
}

/// Anything else.
pub async fn not_found() -> Response {
    JsonError::not_found("no such endpoint").into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /demo/callback`: where the demo app lands; shows the code and how to redeem it.
pub async fn demo_callback(
    State(state): State<AppState>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(demo) = &state.demo else {
        return JsonError::not_found("the demo is not enabled (start with --demo)").into_response();
    };
    // The page builds a shell command: only a well-formed code may appear in it, and the
    // secret stays in the terminal that started the server.
    let code = q
        .code
        .filter(|c| {
            c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_default();
    let curl = format!(
        "curl -s -u '{}:CLIENT_SECRET' \\\n  -d grant_type=authorization_code \\\n  -d code='{}' \\\n  --data-urlencode redirect_uri='{}' \\\n  {}/oauth/token",
        demo.client_id, code, demo.redirect_uri, demo.issuer
    );
    state.pages.render(
        "demo_callback.html",
        StatusCode::OK,
        json!({
            "code": code,
            "state": q.state,
            "error": q.error,
            "error_description": q.error_description,
            "curl": curl,
            "code_ttl": state.provider.lifetimes().code,
        }),
    )
}
