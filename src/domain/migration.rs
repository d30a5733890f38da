//! Lazy migration from an old Auth0 tenant (SPEC §16): the old tenant's token endpoint and the
//! client that may use Auth0's password-realm grant there.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Where and how an imported user without a password hash is checked at first login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LazyMigration {
    /// The old tenant's token endpoint (`https://OLD.auth0.com/oauth/token`).
    pub token_endpoint: String,
    /// A client of the old tenant allowed the password-realm grant.
    pub client_id: String,
    pub client_secret: String,
    /// The old tenant's database connection.
    pub realm: String,
}

/// Auth0's grant that checks a password against one connection.
pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";
/// Auth0's default database connection.
pub const DEFAULT_REALM: &str = "Username-Password-Authentication";

impl LazyMigration {
    /// Checks the operator's flags: `from` is the old tenant's base URL (its `/oauth/token` is
    /// used) or its token endpoint itself.
    pub fn parse(
        from: &str,
        client_id: &str,
        client_secret: &str,
        realm: Option<&str>,
    ) -> Result<Self, Invalid> {
        let url = url::Url::parse(from.trim())
            .map_err(|e| Invalid(format!("--lazy-from {from:?} is not a URL: {e}")))?;
        // Passwords and the client secret travel in this request: https, except to a
        // loopback address (a stand-in on the operator's own machine).
        let loopback = match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback))
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(Invalid(format!(
                "--lazy-from {from:?} must be the old tenant's https URL (e.g. https://old.eu.auth0.com)"
            )));
        }
        let mut endpoint = url.as_str().trim_end_matches('/').to_string();
        if !endpoint.ends_with("/oauth/token") {
            endpoint.push_str("/oauth/token");
        }
        let client_id = client_id.trim();
        if client_id.is_empty() || client_id.len() > 256 {
            return Err(Invalid(
                "--lazy-client-id must be 1 to 256 characters".into(),
            ));
        }
        if client_secret.is_empty() || client_secret.len() > 512 {
            return Err(Invalid(
                "--lazy-client-secret must be 1 to 512 characters".into(),
            ));
        }
        let realm = realm.unwrap_or(DEFAULT_REALM).trim();
        if realm.is_empty() || realm.len() > 128 {
            return Err(Invalid("--lazy-realm must be 1 to 128 characters".into()));
        }
        Ok(LazyMigration {
            token_endpoint: endpoint,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            realm: realm.to_string(),
        })
    }

    /// The additional data its sealed form is bound to (one tenant's row cannot be moved to
    /// another).
    fn aad(tenant_id: &str) -> String {
        format!("wardstone lazy-migration v1 {tenant_id}")
    }

    /// Its stored form: sealed with the master key (it holds the old tenant's client secret).
    pub fn seal(&self, key: &crate::crypto::MasterKey, tenant_id: &str) -> Vec<u8> {
        key.seal(
            &Self::aad(tenant_id),
            &serde_json::to_vec(self).expect("plain data"),
        )
    }

    /// Opens what [`LazyMigration::seal`] stored for `tenant_id`.
    pub fn open(
        key: &crate::crypto::MasterKey,
        tenant_id: &str,
        sealed: &[u8],
    ) -> Result<Self, String> {
        let plain = key
            .open(&Self::aad(tenant_id), sealed)
            .map_err(|e| format!("cannot open the lazy-migration settings: {e:?}"))?;
        serde_json::from_slice(&plain).map_err(|e| format!("corrupt lazy-migration settings: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_tenant_is_a_url_and_its_token_endpoint_is_found() {
        let m = LazyMigration::parse("https://old.eu.auth0.com/", "id", "secret", None).unwrap();
        assert_eq!(m.token_endpoint, "https://old.eu.auth0.com/oauth/token");
        assert_eq!(m.realm, DEFAULT_REALM);
        let m = LazyMigration::parse("http://127.0.0.1:3000/oauth/token", "id", "s", Some("db"))
            .unwrap();
        assert_eq!(m.token_endpoint, "http://127.0.0.1:3000/oauth/token");
        assert!(LazyMigration::parse("old.auth0.com", "id", "s", None).is_err());
        assert!(LazyMigration::parse("ftp://old.auth0.com", "id", "s", None).is_err());
        assert!(LazyMigration::parse("http://old.auth0.com", "id", "s", None).is_err());
        assert!(LazyMigration::parse("https://old.auth0.com", "", "s", None).is_err());
        assert!(LazyMigration::parse("https://old.auth0.com", "id", "", None).is_err());
    }
}
