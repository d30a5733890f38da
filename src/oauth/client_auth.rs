//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and `none` for public clients.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{ErrorCode, OAuthError, Provider, Tenant};
use crate::crypto::{ct_eq, hash_token};
use crate::store::ClientRecord;

/// The credentials a request presented.
#[derive(Debug, Default, Clone)]
pub struct PresentedCredentials {
    /// The raw `Authorization` header, if any.
    pub authorization: Option<String>,
    /// `client_id` from the body.
    pub client_id: Option<String>,
    /// `client_secret` from the body.
    pub client_secret: Option<String>,
}

fn invalid_client(basic: bool, description: &str) -> OAuthError {
    OAuthError {
        used_basic_auth: basic,
        ..OAuthError::new(ErrorCode::InvalidClient, description)
    }
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

impl Provider {
    /// Authenticates the client of a token-endpoint request.
    pub async fn authenticate_client(
        &self,
        tenant: &Tenant,
        creds: &PresentedCredentials,
    ) -> Result<Arc<ClientRecord>, OAuthError> {
        let basic_header = creds
            .authorization
            .as_deref()
            .filter(|h| h.trim_start().to_ascii_lowercase().starts_with("basic "));
        let (client_id, secret, basic) = match basic_header {
            Some(h) => {
                if creds.client_secret.is_some() {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidRequest,
                        "use one client authentication method, not both Basic and client_secret",
                    ));
                }
                let (id, secret) = parse_basic(h)
                    .ok_or_else(|| invalid_client(true, "malformed Basic credentials"))?;
                if creds
                    .client_id
                    .as_deref()
                    .is_some_and(|body_id| body_id != id)
                {
                    return Err(invalid_client(
                        true,
                        "client_id does not match the Basic credentials",
                    ));
                }
                (id, Some(secret), true)
            }
            None => {
                let id = creds
                    .client_id
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| invalid_client(false, "client authentication is required"))?;
                (id, creds.client_secret.clone(), false)
            }
        };
        let client = self.client(tenant, &client_id).await?;
        // Hash even for unknown clients so the answer takes the same time.
        let presented = secret.as_deref().map(hash_token);
        let Some(client) = client else {
            return Err(invalid_client(basic, "client authentication failed"));
        };
        match (&client.secret_hash, &presented) {
            (Some(stored), Some(given)) if ct_eq(stored, given) => Ok(client),
            (None, None) => Ok(client),
            _ => Err(invalid_client(basic, "client authentication failed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:p%3Ass+word"));
        assert_eq!(parse_basic(&h), Some(("my id".into(), "p:ss word".into())));
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
    }
}
