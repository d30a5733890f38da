//! OAuth 2.0 protocol logic (RFC 6749, 7636, 7009, 9207) with OIDC on top. Nothing here knows
//! about axum or HTTP types: handlers pass plain values in and render what comes back.
//!
//! Vocabulary (after oxide-auth): the *registrar* checks clients and redirect URIs
//! ([`registrar`]), the *authorizer* runs the browser part of the code flow and issues
//! one-time codes ([`authorize`]), the *issuer* mints tokens ([`grants`], [`issuer`]).

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod grants;
pub mod introspect;
pub mod issuer;
pub mod rbac;
pub mod registrar;
pub mod revoke;
pub mod scopes;

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Lifetimes, PublicUrl};
use crate::crypto::MasterKey;
use crate::store::{Store, StoreError, TenantRecord};
use crate::tokens::KeyRing;

/// RFC 6749 (and OIDC Core §3.1.2.6) error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed or missing parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Code or refresh token invalid, expired, revoked or bound elsewhere.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// The user or a rule said no.
    AccessDenied,
    /// Something failed on our side.
    ServerError,
    /// `prompt=none` and no session.
    LoginRequired,
    /// `prompt=none` and consent missing.
    ConsentRequired,
    /// `prompt=none` and an action needs the user (a redirect).
    InteractionRequired,
    /// `request` objects are not supported.
    RequestNotSupported,
    /// `request_uri` is not supported.
    RequestUriNotSupported,
}

impl ErrorCode {
    /// The RFC 6749 `error` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// A protocol error: its `Display` is the RFC error code.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Human-readable text for the developer; never internals.
    pub description: String,
    /// For `invalid_client`: whether the client tried HTTP Basic (then a 401 carries
    /// `WWW-Authenticate: Basic`).
    pub used_basic_auth: bool,
    /// For `server_error`: what went wrong, for the log written where the error is rendered
    /// (`http/`); the client never sees it.
    pub cause: Option<String>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: clean_description(&description.into()),
            used_basic_auth: false,
            cause: None,
        }
    }

    /// `server_error` with its cause, which is logged when the error is rendered and never
    /// shown.
    pub fn internal(cause: impl fmt::Display) -> Self {
        OAuthError {
            cause: Some(cause.to_string()),
            ..OAuthError::new(
                ErrorCode::ServerError,
                "the server could not handle the request",
            )
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::internal(e)
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        OAuthError::internal(format!("{e:#}"))
    }
}

/// RFC 6749 §4.1.2.1 and §5.2 allow only `%x20-21 / %x23-5B / %x5D-7E` in
/// `error_description`; descriptions may quote request input or a rule's message, so anything
/// else is replaced.
fn clean_description(text: &str) -> String {
    text.chars()
        .take(500)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_keep_to_the_allowed_characters() {
        let e = OAuthError::new(ErrorCode::InvalidScope, "bad \"scope\" \\ é\n");
        assert_eq!(e.description, "bad 'scope' / ??");
    }
}

pub use crate::domain::Tenant;

/// The authorization server: shared state behind every protocol operation.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<ProviderInner>,
}

struct ProviderInner {
    store: Store,
    rules: crate::rules::Rules,
    passwords: crate::passwords::Passwords,
    keys: KeyRing,
    clients: registrar::ClientCache,
    clock: Clock,
    public_url: PublicUrl,
    lifetimes: Lifetimes,
    mac_key: aws_lc_rs::hmac::Key,
    master_key: MasterKey,
    old_tenants: authorize::OldTenants,
}

impl Provider {
    /// Builds the provider.
    pub fn new(
        store: Store,
        master_key: MasterKey,
        clock: Clock,
        public_url: PublicUrl,
        lifetimes: Lifetimes,
        rules: crate::rules::Rules,
        passwords: crate::passwords::Passwords,
    ) -> Self {
        // Every node derives the same key, so CSRF tokens and browser bindings made by one
        // verify on all. (One derivation for the whole server: `MasterKey::derive_hmac_key`.)
        let mac_key = master_key.derive_hmac_key("wardstone csrf v1");
        Provider {
            inner: Arc::new(ProviderInner {
                keys: KeyRing::new(store.clone(), master_key.clone()),
                master_key,
                clients: registrar::client_cache(),
                store,
                rules,
                passwords,
                clock,
                public_url,
                lifetimes,
                mac_key,
                old_tenants: Default::default(),
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The master key (seals what flows park in the database).
    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.inner.master_key
    }

    /// Counts one `metric` of `tenant` today (usage, SPEC §18); written off the request path.
    pub fn count_usage(&self, tenant: &Tenant, metric: crate::domain::usage::Metric) {
        self.rules()
            .journal()
            .count(&tenant.id, self.now(), &[(metric, 1)]);
    }

    pub fn rules(&self) -> &crate::rules::Rules {
        &self.inner.rules
    }

    /// The bounded client that asks old Auth0 tenants (lazy migration).
    pub(crate) fn old_tenants(&self) -> &authorize::OldTenants {
        &self.inner.old_tenants
    }

    /// The password hashing threads.
    pub fn passwords(&self) -> &crate::passwords::Passwords {
        &self.inner.passwords
    }

    /// Tenant signing keys.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The counters of the node's generation caches (clients, keys, rule sets), for `/metrics`.
    pub fn cache_counters(&self) -> Vec<crate::cache::CacheCounters> {
        vec![
            self.inner.clients.counters(),
            self.inner.keys.cache_counters(),
            self.inner.rules.cache_counters(),
        ]
    }

    fn clients_cache(&self) -> &registrar::ClientCache {
        &self.inner.clients
    }

    /// Current time from the injected clock.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The public base URL.
    pub fn public_url(&self) -> &PublicUrl {
        &self.inner.public_url
    }

    /// Lifetimes in force.
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.inner.lifetimes
    }

    /// Resolves a tenant by the name in the URL.
    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self
            .inner
            .store
            .tenant_by_name(name)
            .await?
            .map(|t: TenantRecord| {
                let issuer = self.inner.public_url.issuer(&t.name);
                t.into_tenant(issuer)
            }))
    }

    /// HMAC of `value` under a key derived from the master key, separated by `purpose`.
    pub(crate) fn mac(&self, purpose: &str, value: &str) -> String {
        use base64::Engine;
        let tag = aws_lc_rs::hmac::sign(
            &self.inner.mac_key,
            format!("{purpose}\0{value}").as_bytes(),
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The CSRF token of a login transaction: an HMAC of its id, so nothing is stored.
    pub(crate) fn csrf_token(&self, transaction_id: &str) -> String {
        self.mac("csrf", transaction_id)
    }

    /// A new browser-binding id: random, with our MAC, so a planted value is never accepted.
    pub(crate) fn new_browser_id(&self) -> String {
        let id = crate::crypto::random_token(24);
        format!("{id}.{}", self.mac("browser", &id))
    }

    /// Whether a browser-binding id is one this server issued.
    pub(crate) fn browser_id_is_ours(&self, value: &str) -> bool {
        value.len() <= 200
            && value.split_once('.').is_some_and(|(id, tag)| {
                crate::crypto::ct_eq(self.mac("browser", id).as_bytes(), tag.as_bytes())
            })
    }
}
