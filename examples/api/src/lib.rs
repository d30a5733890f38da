//! A sample API that accepts Wardstone's access tokens: RFC 9068 JWTs verified against the
//! tenant's JWKS (found through discovery, cached, fetched again when a token names an unknown
//! key), with `typ`, `iss`, `aud`, `exp` and the required scope checked, and RFC 6750 errors.
//! It is written only against Wardstone's public HTTP interfaces: copy it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// What the API trusts.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tenant's issuer (`iss` of the tokens; discovery hangs below it).
    pub issuer: String,
    /// This API's identifier: tokens must name it in `aud`.
    pub audience: String,
    /// The scope a token needs to call the API.
    pub scope: String,
}

/// A JWKS fetched less often than this is not fetched again for an unknown key, so a flood of
/// made-up key ids cannot make the API hammer the issuer.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

struct Api {
    config: Config,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> anyhow::Result<()> {
    axum::serve(listener, router(config)).await?;
    Ok(())
}

/// The API's routes: `GET /` answers the caller's validated claims.
pub fn router(config: Config) -> Router {
    let api = Arc::new(Api {
        config,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a default HTTP client"),
        keys: Mutex::new(Keys {
            by_kid: HashMap::new(),
            fetched: None,
        }),
    });
    Router::new().route("/", get(hello)).with_state(api)
}

/// Why a request is refused, as RFC 6750 §3 says.
enum Refusal {
    /// No token: a bare challenge.
    Missing,
    /// A token that is not valid here.
    Invalid(String),
    /// A valid token without the required scope.
    InsufficientScope(String),
    /// The issuer's keys could not be fetched.
    Unavailable(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="demo-api""#.to_string(),
                json!({"error": "invalid_request", "error_description": "an access token is required"}),
            ),
            Refusal::Invalid(why) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    r#"Bearer realm="demo-api", error="invalid_token", error_description="{}""#,
                    why.replace(['"', '\\'], "'")
                ),
                json!({"error": "invalid_token", "error_description": why}),
            ),
            Refusal::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!(r#"Bearer realm="demo-api", error="insufficient_scope", scope="{scope}""#),
                json!({"error": "insufficient_scope", "error_description": format!("the token lacks the scope {scope}")}),
            ),
            Refusal::Unavailable(why) => {
                tracing::warn!(error = %why, "cannot fetch the issuer's keys");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable"})),
                )
                    .into_response();
            }
        };
        let mut response = (status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

async fn hello(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Json<Value>, Refusal> {
    let token = bearer(&headers).ok_or(Refusal::Missing)?;
    let claims = api.verify(token).await?;
    Ok(Json(json!({
        "message": "Hello from the demo API",
        "subject": claims["sub"],
        "claims": claims,
    })))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Api {
    async fn verify(&self, token: &str) -> Result<Value, Refusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Refusal::Invalid("malformed token".into()))?;
        // RFC 9068 §4: the type tells an access token from an ID token.
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(Refusal::Invalid("not an access token (typ)".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::Invalid("no key id".into()))?;
        let (key, alg) = self.key(&kid).await?;
        if header.alg != alg {
            return Err(Refusal::Invalid("unexpected algorithm".into()));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        let granted = data.claims["scope"].as_str().unwrap_or_default();
        if !granted.split(' ').any(|s| s == self.config.scope) {
            return Err(Refusal::InsufficientScope(self.config.scope.clone()));
        }
        Ok(data.claims)
    }

    /// The key named `kid`, fetching the JWKS when it is unknown (a rotation happened).
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), Refusal> {
        let mut keys = self.keys.lock().await;
        if let Some(k) = keys.by_kid.get(kid) {
            return Ok(k.clone());
        }
        if keys.fetched.is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH) {
            return Err(Refusal::Invalid("unknown key".into()));
        }
        keys.fetched = Some(Instant::now());
        keys.by_kid = self
            .fetch_jwks()
            .await
            .map_err(|e| Refusal::Unavailable(format!("{e:#}")))?;
        keys.by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| Refusal::Invalid("unknown key".into()))
    }

    async fn fetch_jwks(&self) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
        let discovery: Value = self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("discovery has no jwks_uri"))?;
        let set: JwkSet = self
            .http
            .get(jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            let alg = match &jwk.common.key_algorithm {
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(alg) => alg,
                    Err(_) => continue,
                },
                None => match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    _ => continue,
                },
            };
            keys.insert(kid, (key, alg));
        }
        Ok(keys)
    }
}
