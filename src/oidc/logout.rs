//! OpenID Connect RP-Initiated Logout 1.0: an application sends the browser to
//! `{issuer}/oidc/logout` to end the user's Wardstone session, and may name where the browser
//! goes next. That URL must be registered on the application exactly (`allowed_logout_urls`)
//! — anything else is an error page, never a redirect, or the endpoint would be an open
//! redirector. A request carrying a valid `id_token_hint` for the signed-in user ends the
//! session at once; any other request that would end a session asks the user first (a
//! cross-site link must not be able to log people out).
//!
//! Registered is not enough to be followed: every tenant registers its own logout URLs on the
//! shared origin, and tenant admins are not trusted (SPEC §17). The browser is sent to
//! `post_logout_redirect_uri` only when the request proves the application: a valid
//! `id_token_hint` of that application, or the browser's live session having signed in to that
//! application. Otherwise the logout ends on our own "signed out" page.

use serde::Serialize;
use serde_json::Value;

use crate::crypto::{ct_eq, hash_token};
use crate::oauth::{Provider, Tenant};

/// Longest accepted value of any parameter (an ID token with rule claims fits).
const MAX_PARAMETER: usize = 16 * 1024;

/// The parameters of a logout request (query or form), as sent.
#[derive(Debug, Default)]
pub struct LogoutRequest {
    /// An ID token this tenant issued to the application (expired ones are fine).
    pub id_token_hint: Option<String>,
    /// Where to send the browser afterwards.
    pub post_logout_redirect_uri: Option<String>,
    /// Returned unchanged with the redirect.
    pub state: Option<String>,
    /// The application, when there is no `id_token_hint`.
    pub client_id: Option<String>,
    /// The user confirmed on our page (form post with a valid CSRF token).
    pub csrf: Option<String>,
}

impl LogoutRequest {
    /// Parses the parameters; repeated or oversized ones are refused, unknown ones ignored.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let mut r = LogoutRequest::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "id_token_hint" => &mut r.id_token_hint,
                "post_logout_redirect_uri" => &mut r.post_logout_redirect_uri,
                "state" => &mut r.state,
                "client_id" => &mut r.client_id,
                "csrf" => &mut r.csrf,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("The parameter {k} is repeated."));
            }
            if v.len() > MAX_PARAMETER {
                return Err(format!("The parameter {k} is too long."));
            }
            if !v.is_empty() {
                *slot = Some(v);
            }
        }
        Ok(r)
    }
}

/// The confirmation form.
#[derive(Debug, Serialize)]
pub struct ConfirmLogout {
    /// The application's name, when known.
    pub client_name: Option<String>,
    /// Carried through the form.
    pub client_id: Option<String>,
    /// Carried through the form.
    pub post_logout_redirect_uri: Option<String>,
    /// Carried through the form.
    pub state: Option<String>,
    /// CSRF token bound to the browser's session.
    pub csrf: String,
}

/// What the browser gets.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// The session (if any) is over: send the browser to this registered URL.
    Redirect(String),
    /// The session (if any) is over: show that it is.
    LoggedOut,
    /// Ask the user before ending the session.
    Confirm(ConfirmLogout),
    /// A bad request: an error page with this message, never a redirect.
    Problem(String),
}

impl LogoutOutcome {
    /// Whether the browser's session cookie should be cleared.
    pub fn ends_session(&self) -> bool {
        matches!(self, LogoutOutcome::Redirect(_) | LogoutOutcome::LoggedOut)
    }
}

impl Provider {
    /// Handles a logout request from the browser holding `session_cookie`.
    pub async fn end_session(
        &self,
        tenant: &Tenant,
        request: LogoutRequest,
        session_cookie: Option<&str>,
    ) -> anyhow::Result<LogoutOutcome> {
        let problem = |m: &str| Ok(LogoutOutcome::Problem(m.to_string()));
        // The hint names the application and the user; its signature is all that matters
        // (OpenID Connect lets an expired ID token serve as a hint).
        let hint = match &request.id_token_hint {
            None => None,
            Some(token) => {
                let keys = self.keys().tenant(tenant).await?;
                match keys.verify(token, "JWT", &tenant.issuer, None, None) {
                    Ok(claims) => Some(claims),
                    Err(_) => {
                        return problem("The id_token_hint is not an ID token of this issuer.");
                    }
                }
            }
        };
        let hint_client = hint.as_ref().and_then(|c| match &c["aud"] {
            Value::String(aud) => Some(aud.clone()),
            Value::Array(auds) => auds.first().and_then(Value::as_str).map(String::from),
            _ => None,
        });
        let hint_user = hint
            .as_ref()
            .and_then(|c| c["sub"].as_str())
            .map(String::from);
        let client_id = match (&request.client_id, &hint_client) {
            (Some(given), Some(hinted)) if given != hinted => {
                return problem("The client_id does not match the id_token_hint.");
            }
            (Some(given), _) => Some(given.clone()),
            (None, hinted) => hinted.clone(),
        };
        let client = match &client_id {
            Some(id) => match self.store().client(&tenant.id, id).await? {
                Some(c) => Some(c),
                None => return problem("Unknown application."),
            },
            None => None,
        };
        let redirect = match &request.post_logout_redirect_uri {
            None => None,
            Some(uri) => {
                let Some(client) = &client else {
                    return problem(
                        "A post_logout_redirect_uri needs an id_token_hint or a client_id.",
                    );
                };
                if !client.logout_urls().iter().any(|u| u == uri) {
                    return problem(
                        "The post_logout_redirect_uri is not registered for this application.",
                    );
                }
                let Ok(mut url) = url::Url::parse(uri) else {
                    return problem("The post_logout_redirect_uri is not a URL.");
                };
                if let Some(state) = &request.state {
                    url.query_pairs_mut().append_pair("state", state);
                }
                Some(url.to_string())
            }
        };

        // The application is proven by its own ID token, or by the browser's session having
        // signed in to it; a bare client_id proves nothing.
        let mut proven = hint_client.is_some();
        if let Some(cookie) = session_cookie {
            let id_hash = hash_token(cookie);
            if let Some(session) = self
                .store()
                .session(&tenant.id, &id_hash, self.now())
                .await?
            {
                if let Some(client) = &client_id
                    && !proven
                {
                    let sid = crate::oauth::authorize::session_public_id(&id_hash);
                    proven = self
                        .store()
                        .session_signed_in_to(&tenant.id, &sid, client)
                        .await?;
                }
                let csrf = self.mac("logout", cookie);
                let confirmed = request
                    .csrf
                    .as_deref()
                    .is_some_and(|c| ct_eq(c.as_bytes(), csrf.as_bytes()));
                let hinted_user = hint_user.as_deref() == Some(session.user_id.as_str());
                if !confirmed && !hinted_user {
                    return Ok(LogoutOutcome::Confirm(ConfirmLogout {
                        client_name: client.map(|c| c.name),
                        client_id,
                        post_logout_redirect_uri: request.post_logout_redirect_uri,
                        state: request.state,
                        csrf,
                    }));
                }
                self.store().delete_session(&id_hash).await?;
                tracing::info!(tenant = %tenant.name, "session ended by logout");
            }
        }
        Ok(match redirect {
            Some(url) if proven => LogoutOutcome::Redirect(url),
            Some(_) => {
                tracing::info!(tenant = %tenant.name, "post_logout_redirect_uri not followed: nothing proves the application");
                LogoutOutcome::LoggedOut
            }
            None => LogoutOutcome::LoggedOut,
        })
    }
}
