//! What kind of application a client is (Auth0's `app_type`).

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Auth0's `app_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum AppType {
    /// A server-side web app (confidential).
    RegularWeb,
    /// A browser app (public, PKCE).
    Spa,
    /// A mobile or desktop app (public, PKCE).
    Native,
    /// A machine-to-machine client (client_credentials).
    NonInteractive,
}

impl AppType {
    /// The stored and shown value.
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::RegularWeb => "regular_web",
            AppType::Spa => "spa",
            AppType::Native => "native",
            AppType::NonInteractive => "non_interactive",
        }
    }

    /// Parses one of Auth0's values.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Ok(match s {
            "regular_web" => AppType::RegularWeb,
            "spa" => AppType::Spa,
            "native" => AppType::Native,
            "non_interactive" => AppType::NonInteractive,
            _ => {
                return Err(Invalid(format!(
                    "unsupported app_type {s:?}; use regular_web, spa, native or non_interactive"
                )));
            }
        })
    }
}

impl TryFrom<String> for AppType {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        AppType::parse(&s).map_err(|e| e.0)
    }
}
