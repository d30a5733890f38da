//! Auth0 Actions' vocabulary: the triggers Wardstone runs, and the shapes of an action's
//! dependencies and secret names.

use serde::{Deserialize, Serialize};

use super::{Invalid, invalid};

/// A trigger Wardstone runs actions for (Auth0's trigger ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TriggerId {
    /// After a login, at the authorization code grant and at every refresh.
    PostLogin,
    /// Before a client credentials grant's access token is signed.
    CredentialsExchange,
}

/// Auth0 triggers Wardstone does not run (an import reports them as skipped).
pub const UNSUPPORTED_TRIGGERS: &[&str] = &[
    "pre-user-registration",
    "post-user-registration",
    "post-change-password",
    "send-phone-message",
    "password-reset-post-challenge",
    "iga-approval",
    "iga-certification",
    "iga-fulfillment-assignment",
    "iga-fulfillment-execution",
    "custom-email-provider",
    "custom-phone-provider",
    "custom-token-exchange",
    "event-stream",
];

impl TriggerId {
    /// Every trigger Wardstone runs.
    pub const ALL: [TriggerId; 2] = [TriggerId::PostLogin, TriggerId::CredentialsExchange];

    /// Parses Auth0's id.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "post-login" => Ok(TriggerId::PostLogin),
            "credentials-exchange" => Ok(TriggerId::CredentialsExchange),
            other if UNSUPPORTED_TRIGGERS.contains(&other) => Err(invalid(format!(
                "trigger {other:?} is not supported by Wardstone; use post-login or credentials-exchange"
            ))),
            other => Err(invalid(format!(
                "unknown trigger {other:?}; use post-login or credentials-exchange"
            ))),
        }
    }

    /// Auth0's id.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerId::PostLogin => "post-login",
            TriggerId::CredentialsExchange => "credentials-exchange",
        }
    }

    /// The version of the trigger Auth0 shows for new actions.
    pub fn current_version(self) -> &'static str {
        match self {
            TriggerId::PostLogin => "v3",
            TriggerId::CredentialsExchange => "v2",
        }
    }

    /// The handler an action exports for this trigger.
    pub fn entry_point(self) -> &'static str {
        match self {
            TriggerId::PostLogin => "onExecutePostLogin",
            TriggerId::CredentialsExchange => "onExecuteCredentialsExchange",
        }
    }
}

impl std::fmt::Display for TriggerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for TriggerId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        TriggerId::parse(&s).map_err(|e| e.0)
    }
}

impl From<TriggerId> for String {
    fn from(v: TriggerId) -> String {
        v.as_str().to_string()
    }
}

/// An npm dependency an action declares (Auth0's `{name, version}`).
#[warn(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// The package.
    pub name: String,
    /// The version asked for.
    #[serde(default)]
    pub version: String,
    /// Auth0's private registry URL (accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
}

/// A secret of an action as shown: its name and when it was set, never its value.
#[warn(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretName {
    /// The secret's name (`event.secrets.NAME`).
    pub name: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
}
