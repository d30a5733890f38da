//! Lazy migration (SPEC §16): the first login of an imported user who has no password hash here
//! asks the old Auth0 tenant, with Auth0's password-realm grant, whether the password is right.
//!
//! The call leaves the async workers (ureq on the blocking pool), has a deadline, and is
//! bounded like password hashing: a few calls at a time, and beyond that the login hears
//! "busy" at once, so a flood of logins for unmigrated users cannot queue without end. An old
//! tenant that cannot be reached, times out or answers anything but a clear yes or no makes the
//! login "try again later" — never a pass. Only users with no hash here are ever sent: a user
//! who has a password in Wardstone is never checked against the old tenant.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::migration::{LazyMigration, PASSWORD_REALM_GRANT};
use crate::passwords::Busy;

/// How long the old tenant has to answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// What the old tenant said about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldAnswer {
    /// It issued tokens: the password is right.
    Accepted,
    /// It refused the credentials (`invalid_grant`, a blocked user, …): a wrong password.
    Refused,
    /// No answer, or not a clear one: the login cannot be decided now.
    Unavailable,
}

/// The bounded client for old tenants (one per node).
#[derive(Clone)]
pub struct OldTenants {
    slots: Arc<tokio::sync::Semaphore>,
    agent: ureq::Agent,
}

impl Default for OldTenants {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(DEADLINE))
            .max_redirects(0)
            .http_status_as_error(false)
            .max_response_header_size(64 << 10)
            .user_agent("wardstone-lazy-migration/1")
            .build();
        OldTenants {
            slots: Arc::new(tokio::sync::Semaphore::new(4 * cores)),
            agent: config.into(),
        }
    }
}

impl OldTenants {
    /// Asks the old tenant whether `password` is `username`'s.
    /// `user_id` is the imported user's: only an ID token for that very `sub` is a yes (the
    /// old tenant's database could hold someone else under the same email — a signup made
    /// after the export, a social user imported without a password). `ip` is the browser's,
    /// passed on as `auth0-forwarded-for` so the old tenant's brute-force protection counts
    /// each visitor, not Wardstone's one address (the client needs "Trust Token Endpoint IP
    /// Header" in Auth0 for it to count).
    pub async fn check(
        &self,
        migration: &LazyMigration,
        username: &str,
        password: &str,
        user_id: &str,
        ip: &str,
    ) -> Result<OldAnswer, Busy> {
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| Busy)?;
        let agent = self.agent.clone();
        let m = migration.clone();
        let (username, password, user_id, ip) = (
            username.to_string(),
            password.to_string(),
            user_id.to_string(),
            ip.to_string(),
        );
        let asked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            ask(&agent, &m, &username, &password, &user_id, &ip)
        })
        .await;
        Ok(asked.unwrap_or(OldAnswer::Unavailable))
    }
}

fn ask(
    agent: &ureq::Agent,
    m: &LazyMigration,
    username: &str,
    password: &str,
    user_id: &str,
    ip: &str,
) -> OldAnswer {
    let sent = agent
        .post(&m.token_endpoint)
        .header("auth0-forwarded-for", ip)
        .send_form([
            ("grant_type", PASSWORD_REALM_GRANT),
            ("username", username),
            ("password", password),
            ("realm", m.realm.as_str()),
            ("client_id", m.client_id.as_str()),
            ("client_secret", m.client_secret.as_str()),
            ("scope", "openid"),
        ]);
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(endpoint = %m.token_endpoint, error = %e, "the old tenant did not answer a lazy-migration check");
            return OldAnswer::Unavailable;
        }
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    match status {
        200 => match id_token_subject(&body) {
            Some(sub) if sub == user_id => OldAnswer::Accepted,
            Some(sub) => {
                tracing::warn!(endpoint = %m.token_endpoint, imported = %user_id, old = %sub, "the old tenant accepted the password for another user with this email; refused");
                OldAnswer::Refused
            }
            None => {
                tracing::warn!(endpoint = %m.token_endpoint, "the old tenant answered without an ID token (is `openid` allowed for the migration client?)");
                OldAnswer::Unavailable
            }
        },
        // Auth0 answers a wrong password (and a blocked user) with 403 invalid_grant.
        400 | 401 | 403
            if matches!(
                body.get("error").and_then(|e| e.as_str()),
                Some("invalid_grant" | "access_denied" | "invalid_user_password" | "unauthorized")
            ) =>
        {
            OldAnswer::Refused
        }
        403 if body.get("error").and_then(|e| e.as_str()) == Some("mfa_required") => {
            // The password may be right, but nothing ties it to this user without an ID token:
            // the operator must exempt the migration client from MFA in the old tenant.
            tracing::warn!(endpoint = %m.token_endpoint, "the old tenant asks for MFA on lazy-migration checks; exempt the migration client from MFA there");
            OldAnswer::Unavailable
        }
        _ => {
            // A misconfigured client (invalid_client, unauthorized_client for the grant) or an
            // outage must not read as a wrong password: the operator has to hear of it.
            tracing::warn!(endpoint = %m.token_endpoint, status, error = ?body.get("error"), "the old tenant gave no clear answer to a lazy-migration check");
            OldAnswer::Unavailable
        }
    }
}

/// The `sub` of the ID token in a token response. Its signature is not checked: it comes
/// straight from the old tenant's token endpoint over the connection this server opened (OIDC
/// Core 3.1.3.7 allows it).
fn id_token_subject(body: &serde_json::Value) -> Option<String> {
    use base64::Engine;
    let token = body.get("id_token")?.as_str()?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_comes_from_the_id_token() {
        use base64::Engine;
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let token = format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256"})),
            enc(serde_json::json!({"sub": "auth0|abc"}))
        );
        assert_eq!(
            id_token_subject(&serde_json::json!({"id_token": token})).as_deref(),
            Some("auth0|abc")
        );
        assert_eq!(
            id_token_subject(&serde_json::json!({"access_token": "x"})),
            None
        );
        assert_eq!(
            id_token_subject(&serde_json::json!({"id_token": "garbage"})),
            None
        );
    }
}
