//! Newtypes that parse at the edge: once a value has one of these types it is valid.

pub mod action;
mod client;
pub mod execution;
mod grant;
pub mod management;
pub mod migration;
pub mod net;
mod redirect_uri;
mod request;
mod rule;
mod scope;
mod signing;
mod tenant;
pub mod usage;
mod user;

pub use action::TriggerId;
pub use client::AppType;
pub use grant::GrantType;
pub use net::{AllowedHost, PrivateRanges};
pub use redirect_uri::RedirectUri;
pub use request::RequestInfo;
pub use rule::OnFailure;
pub use scope::ScopeSet;
pub use signing::{KeyStatus, SigningAlg, TokenDialect};
pub use tenant::Tenant;
pub use user::Profile;

use std::fmt;

/// Why a value from outside was refused; the text is safe to show to whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// A tenant's name: 3–63 of lowercase letters, digits and `-`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    /// Parses a tenant name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(3..=63).contains(&s.len()) || !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(invalid(format!(
                "invalid tenant name {s:?}: use 3 to 63 lowercase letters, digits or '-', not starting or ending with '-'"
            )));
        }
        Ok(TenantName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, trimmed and lowercased. Deliberately loose (one `@`, a dotted domain,
/// no spaces): the only real check of an address is sending mail to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email address.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim().to_lowercase();
        let bad = || invalid(format!("invalid email address {s:?}"));
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password a user may set: 8 to 1024 characters.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Parses a new password.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let n = s.chars().count();
        if n < 8 {
            return Err(invalid("password must be at least 8 characters"));
        }
        if n > 1024 {
            return Err(invalid("password must be at most 1024 characters"));
        }
        Ok(Password(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name (client, API, user): 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name; `what` names the field in the error.
    pub fn parse(what: &str, s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(invalid(format!(
                "invalid {what} {s:?}: use 1 to 200 characters without control characters"
            )));
        }
        Ok(DisplayName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identifier of an API (resource server): an absolute URI without fragment, as Auth0
/// recommends, used verbatim as the access token's `aud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiIdentifier(String);

impl ApiIdentifier {
    /// Parses an API identifier.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let url = url::Url::parse(s)
            .map_err(|_| invalid(format!("invalid API identifier {s:?}: use an absolute URL")))?;
        if url.fragment().is_some() || s.len() > 600 {
            return Err(invalid(format!(
                "invalid API identifier {s:?}: no fragment, at most 600 characters"
            )));
        }
        Ok(ApiIdentifier(s.to_string()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_follow_the_rules() {
        for ok in ["abc", "acme-corp", "a1-b2", &"a".repeat(63)] {
            assert!(TenantName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "-abc",
            "abc-",
            "a_b",
            "a b",
            "",
            &"a".repeat(64),
            "émile",
        ] {
            assert!(TenantName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "a@b",
            "a b@x.com",
            "a@@x.com",
            "a@x.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_a_minimum_length() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("long enough").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn api_identifiers_are_absolute_urls() {
        assert!(ApiIdentifier::parse("https://api.example.com/").is_ok());
        assert!(ApiIdentifier::parse("urn:my:api").is_ok());
        assert!(ApiIdentifier::parse("my-api").is_err());
        assert!(ApiIdentifier::parse("https://x/#frag").is_err());
    }
}
