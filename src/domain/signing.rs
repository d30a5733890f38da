//! A tenant's JWS algorithm and where a key stands in its rotation.

use std::fmt;

use super::{Invalid, invalid};

/// The JWS algorithm a tenant signs with (RFC 7518 §3.1, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048: what every relying party accepts.
    #[default]
    Rs256,
    /// ECDSA P-256 with SHA-256: ~19× faster to sign than RS256 on this kind of machine.
    Es256,
    /// Ed25519: ~40× faster to sign than RS256.
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, in the order discovery lists them.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// Parses the JWS name (`RS256`, `ES256`, `EdDSA`).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "RS256" => Ok(SigningAlg::Rs256),
            "ES256" => Ok(SigningAlg::Es256),
            "EdDSA" => Ok(SigningAlg::EdDsa),
            other => Err(invalid(format!(
                "unsupported signing algorithm {other:?}; use RS256, ES256 or EdDSA"
            ))),
        }
    }

    /// The JWS `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }
}

impl TryFrom<String> for SigningAlg {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a signing key stands. `Next`, `Current` and `Previous` are published in the JWKS and
/// verify; only `Current` signs; `Retired` and `Revoked` do neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published ahead of time so relying parties know it before it signs.
    Next,
    /// Signs new tokens.
    Current,
    /// Signed until the last rotation; its tokens still verify.
    Previous,
    /// Two rotations old: no longer published or accepted.
    Retired,
    /// Withdrawn by the tenant: its tokens stop verifying at once.
    Revoked,
}

impl KeyStatus {
    /// Parses the stored value.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Ok(match s {
            "next" => KeyStatus::Next,
            "current" => KeyStatus::Current,
            "previous" => KeyStatus::Previous,
            "retired" => KeyStatus::Retired,
            "revoked" => KeyStatus::Revoked,
            other => return Err(invalid(format!("unknown key status {other:?}"))),
        })
    }

    /// The stored value (a column of `signing_key` rows: renaming one breaks them).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Next => "next",
            KeyStatus::Current => "current",
            KeyStatus::Previous => "previous",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }

    /// Whether the key is in the JWKS and verifies tokens.
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyStatus::Next | KeyStatus::Current | KeyStatus::Previous
        )
    }
}

impl TryFrom<String> for KeyStatus {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

/// What an API's access tokens say about the user's permissions (Auth0's `token_dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenDialect {
    /// Scopes only.
    #[default]
    AccessToken,
    /// Scopes, and `permissions`: every permission the user's roles give for the API.
    AccessTokenAuthz,
}

impl TokenDialect {
    /// Parses the stored or sent value.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "access_token" => Ok(TokenDialect::AccessToken),
            "access_token_authz" => Ok(TokenDialect::AccessTokenAuthz),
            other => Err(invalid(format!(
                "unsupported token_dialect {other:?}; use access_token or access_token_authz"
            ))),
        }
    }

    /// The stored value (a column of `resource_server` rows: renaming one breaks them).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenDialect::AccessToken => "access_token",
            TokenDialect::AccessTokenAuthz => "access_token_authz",
        }
    }
}
