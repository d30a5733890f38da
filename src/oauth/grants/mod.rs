//! The token endpoint: one module per grant type, dispatched on a parsed request.

mod authorization_code;
mod client_credentials;
mod refresh_token;

use std::collections::HashMap;

use super::client_auth::PresentedCredentials;
use super::issuer::TokenResponse;
use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::domain::RequestInfo;

/// A token request, parsed from the form body.
#[derive(Debug)]
pub enum TokenRequest {
    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        code: String,
        /// Must equal the one of the authorization request.
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// `grant_type=client_credentials` (RFC 6749 §4.4).
    ClientCredentials {
        /// The API identifier.
        audience: Option<String>,
        /// Optional narrower scope.
        scope: Option<String>,
    },
    /// `grant_type=refresh_token` (RFC 6749 §6).
    RefreshToken {
        refresh_token: String,
        /// Optional narrower scope.
        scope: Option<String>,
    },
}

/// Parses the form pairs of a token request: the client's credentials, and the grant (or why
/// it is malformed). The grant is judged only after the client is authenticated, so a bad
/// client always hears `invalid_client` first. Repeated parameters are refused (RFC 6749 §3.2).
pub fn parse_token_request(
    pairs: Vec<(String, String)>,
    authorization: Option<String>,
) -> (Result<TokenRequest, OAuthError>, PresentedCredentials) {
    let mut form: HashMap<String, String> = HashMap::new();
    let mut repeated = None;
    for (k, v) in pairs {
        if form.insert(k.clone(), v).is_some() && repeated.is_none() {
            repeated = Some(k);
        }
    }
    let take =
        |form: &mut HashMap<String, String>, k: &str| form.remove(k).filter(|v| !v.is_empty());
    let creds = PresentedCredentials {
        authorization,
        client_id: take(&mut form, "client_id"),
        client_secret: take(&mut form, "client_secret"),
    };
    if let Some(k) = repeated {
        let err = OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("parameter {k} is repeated"),
        );
        return (Err(err), creds);
    }
    (parse_grant(form), creds)
}

fn parse_grant(mut form: HashMap<String, String>) -> Result<TokenRequest, OAuthError> {
    let take =
        |form: &mut HashMap<String, String>, k: &str| form.remove(k).filter(|v| !v.is_empty());
    let missing = |k: &str| OAuthError::new(ErrorCode::InvalidRequest, format!("{k} is missing"));
    let request = match take(&mut form, "grant_type").as_deref() {
        None => return Err(missing("grant_type")),
        Some("authorization_code") => TokenRequest::AuthorizationCode {
            code: take(&mut form, "code").ok_or_else(|| missing("code"))?,
            redirect_uri: take(&mut form, "redirect_uri"),
            code_verifier: take(&mut form, "code_verifier"),
        },
        Some("client_credentials") => TokenRequest::ClientCredentials {
            audience: take(&mut form, "audience"),
            scope: take(&mut form, "scope"),
        },
        Some("refresh_token") => TokenRequest::RefreshToken {
            refresh_token: take(&mut form, "refresh_token")
                .ok_or_else(|| missing("refresh_token"))?,
            scope: take(&mut form, "scope"),
        },
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {other} is not supported"),
            ));
        }
    };
    Ok(request)
}

impl Provider {
    /// `POST /oauth/token`.
    pub async fn token(
        &self,
        tenant: &Tenant,
        pairs: Vec<(String, String)>,
        authorization: Option<String>,
        request: &RequestInfo,
    ) -> Result<TokenResponse, OAuthError> {
        let (grant, creds) = parse_token_request(pairs, authorization);
        let client = self.authenticate_client(tenant, &creds).await?;
        match grant? {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.authorization_code_grant(
                    tenant,
                    &client,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                )
                .await
            }
            TokenRequest::ClientCredentials { audience, scope } => {
                self.client_credentials_grant(
                    tenant,
                    &client,
                    audience.as_deref(),
                    scope.as_deref(),
                    request,
                )
                .await
            }
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.refresh_token_grant(tenant, &client, &refresh_token, scope.as_deref(), request)
                    .await
            }
        }
    }
}
