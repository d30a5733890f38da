//! The tenant's own Management API, defined once for the token endpoint (which issues its
//! tokens), the Management API (which checks them) and the service layer (which grants it).

use super::Tenant;

/// How the Management API is named in client grants: its URL follows the public URL, which an
/// admin may change, so grants do not store it. Identifiers under `urn:wardstone:` are reserved.
pub const AUDIENCE: &str = "urn:wardstone:management";

/// The prefix of identifiers no tenant API may use.
pub const RESERVED_PREFIX: &str = "urn:wardstone:";

/// The scopes of the Management API.
pub const SCOPES: &[&str] = &[
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "read:rules",
    "create:rules",
    "update:rules",
    "delete:rules",
    "read:rules_configs",
    "create:rules_configs",
    "update:rules_configs",
    "delete:rules_configs",
    "read:logs",
    "read:roles",
    "create:roles",
    "update:roles",
    "delete:roles",
    "read:signing_keys",
    "create:signing_keys",
    "update:signing_keys",
    "read:tenant_settings",
    "update:tenant_settings",
    "read:actions",
    "create:actions",
    "update:actions",
    "delete:actions",
    "read:stats",
];

/// The Management API's URL, which is also the `aud` of its tokens: `{issuer}/api/v2/`.
pub fn url(tenant: &Tenant) -> String {
    tenant.url("/api/v2/")
}

/// The `sub` of a client_credentials token: `{client_id}@clients` (as Auth0).
pub fn client_subject(client_id: &str) -> String {
    format!("{client_id}@clients")
}
