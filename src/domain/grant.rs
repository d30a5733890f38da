//! The grant types Wardstone issues tokens for: what a client may use, what the token endpoint
//! runs, what usage counts.

use serde::{Deserialize, Serialize};

/// The grant types Wardstone issues tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`.
    ClientCredentials,
}

impl GrantType {
    /// Every grant type, in the order usage lists them.
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The `grant_type` parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    /// The grant type a `grant_type` parameter names, if Wardstone issues for it.
    pub fn parse(value: &str) -> Option<GrantType> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}
