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
    pub async fn check(
        &self,
        migration: &LazyMigration,
        username: &str,
        password: &str,
    ) -> Result<OldAnswer, Busy> {
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| Busy)?;
        let agent = self.agent.clone();
        let m = migration.clone();
        let (username, password) = (username.to_string(), password.to_string());
        let asked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            ask(&agent, &m, &username, &password)
        })
        .await;
        Ok(asked.unwrap_or(OldAnswer::Unavailable))
    }
}

fn ask(agent: &ureq::Agent, m: &LazyMigration, username: &str, password: &str) -> OldAnswer {
    let sent = agent.post(&m.token_endpoint).send_form([
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
        200 if body.get("access_token").and_then(|t| t.as_str()).is_some() => OldAnswer::Accepted,
        // Auth0 answers a wrong password (and a blocked user) with 403 invalid_grant.
        400 | 401 | 403
            if matches!(
                body.get("error").and_then(|e| e.as_str()),
                Some("invalid_grant" | "access_denied" | "invalid_user_password" | "unauthorized")
            ) =>
        {
            OldAnswer::Refused
        }
        _ => {
            // A misconfigured client (invalid_client, unauthorized_client for the grant) or an
            // outage must not read as a wrong password: the operator has to hear of it.
            tracing::warn!(endpoint = %m.token_endpoint, status, error = ?body.get("error"), "the old tenant gave no clear answer to a lazy-migration check");
            OldAnswer::Unavailable
        }
    }
}
