//! The authorization request: parsed from the query (or form) into a typed value, checked
//! against the client and the tenant's APIs, and kept small. Unknown parameters are ignored,
//! as OpenID Connect requires, and never stored; every stored value has a size cap, so an
//! anonymous request cannot make the server keep more than a few hundred bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Problem;
use crate::domain::ScopeSet;
use crate::oauth::registrar::redirect_uri_is_registered;
use crate::oauth::scopes::grantable;
use crate::oauth::{ErrorCode, OAuthError, Provider, Tenant};
use crate::store::ClientRecord;

/// A validated authorization request, as kept in the login transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// Exact, registered redirect URI.
    pub redirect_uri: String,
    /// Scopes that exist for this request (unknown ones dropped).
    pub scope: ScopeSet,
    /// Opaque client state, echoed back.
    pub state: Option<String>,
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
    /// The request's recognized parameters (rules see them as `context.request.query`).
    pub query: BTreeMap<String, String>,
}

/// The parameters Wardstone understands and the longest value kept for each. Values beyond
/// their cap are refused; parameters not listed are ignored.
const PARAMETERS: &[(&str, usize)] = &[
    ("response_type", 50),
    ("response_mode", 50),
    ("client_id", 200),
    ("redirect_uri", 2000),
    ("scope", 2000),
    ("state", 2000),
    ("nonce", 500),
    ("audience", 2000),
    ("code_challenge", 128),
    ("code_challenge_method", 20),
    ("prompt", 100),
    ("max_age", 20),
    ("login_hint", 254),
    ("id_token_hint", 8000),
    ("request", 0),
    ("request_uri", 0),
];

/// Parameters not passed to rules: `id_token_hint` is a whole ID token.
const NOT_FOR_RULES: &[&str] = &["id_token_hint", "request", "request_uri"];

/// Why a request is refused: on a page (the client or callback is not trustworthy), or by
/// redirect to the client with an RFC 6749 error.
pub(super) enum Rejection {
    Page(Problem),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

/// Whether `s` is a PKCE verifier or challenge: 43–128 unreserved characters (RFC 7636 §4.1).
pub fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl Provider {
    /// Checks an authorization request. The outer error is an internal failure; the inner
    /// one says whether the problem may be reported by redirect (and where) or only on a page.
    pub(super) async fn parse_authorization_request(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
    ) -> anyhow::Result<Result<(Arc<ClientRecord>, AuthorizationRequest), Rejection>> {
        let mut query: BTreeMap<String, String> = BTreeMap::new();
        let mut duplicated: Option<String> = None;
        let mut too_long: Option<(&str, usize)> = None;
        for (k, v) in pairs {
            let Some((name, cap)) = PARAMETERS.iter().find(|(p, _)| *p == k) else {
                continue;
            };
            if query.contains_key(*name) && duplicated.is_none() {
                duplicated = Some(name.to_string());
            }
            if v.len() > *cap.max(&1) && too_long.is_none() {
                too_long = Some((name, *cap));
            }
            query.insert(name.to_string(), v);
        }
        let get = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
        let page = |m: &str| Ok(Err(Rejection::Page(Problem::BadRequest(m.to_string()))));

        if matches!(duplicated.as_deref(), Some("client_id" | "redirect_uri")) {
            return page("The request repeats a parameter (client_id or redirect_uri).");
        }
        if let Some(("client_id" | "redirect_uri", _)) = too_long {
            return page("The request's client_id or redirect_uri is too long.");
        }
        let Some(client_id) = get("client_id") else {
            return page("The request has no client_id.");
        };
        let Some(client) = self.client(tenant, &client_id).await? else {
            return page("Unknown application (client_id).");
        };
        let Some(redirect_uri) = get("redirect_uri") else {
            return page("The request has no redirect_uri.");
        };
        if !redirect_uri_is_registered(&client, &redirect_uri) {
            return page("The redirect_uri is not registered for this application.");
        }
        // From here on the callback is trusted: errors go back to the client. A state that is
        // too long is not echoed back.
        let state = get("state").filter(|s| s.len() <= 2000);
        let bad = |code: ErrorCode, m: &str| {
            Ok(Err(Rejection::Redirect {
                redirect_uri: redirect_uri.clone(),
                state: state.clone(),
                error: OAuthError::new(code, m),
            }))
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
        if let Some((name, cap)) = too_long {
            return bad(
                ErrorCode::InvalidRequest,
                &format!("{name} is longer than {cap} characters"),
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
        if !client.allows_grant(crate::domain::GrantType::AuthorizationCode) {
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
                Some(api) => api.scopes().to_vec(),
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
        let hinted_sub = match get("id_token_hint") {
            None => None,
            Some(hint) => {
                let keys = self.keys().tenant(tenant).await?;
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
            scope,
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
            query: query
                .into_iter()
                .filter(|(k, _)| !NOT_FOR_RULES.contains(&k.as_str()))
                .collect(),
        };
        Ok(Ok((client, request)))
    }
}
