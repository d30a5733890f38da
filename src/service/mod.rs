//! The service layer: every administrative operation, shared by the CLI and the Management
//! API so no logic is written twice. Each operation validates its whole input before it writes,
//! and each write is one transaction.

pub mod actions;
pub mod apis;
pub mod clients;
pub mod demo;
pub mod import;
pub mod keys;
pub mod replay;
pub mod roles;
pub mod rules;
pub mod tenants;
pub mod users;

use serde::Serialize;

use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::crypto::{MasterKey, hash_token, random_token};
use crate::domain::{Invalid, KeyStatus, SigningAlg, Tenant, TenantName};
use crate::store::{ClientGrantRecord, JsonText, NewClient, Store, StoreError, TenantRecord};
use crate::tokens::generate_key;

pub use crate::domain::management::{AUDIENCE as MANAGEMENT_AUDIENCE, SCOPES as MANAGEMENT_SCOPES};

/// Why an administrative operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// An uploaded rule module was refused; the message names the problem.
    #[error("rejected module: {0}")]
    InvalidModule(String),
    /// The tenant does not exist.
    #[error("tenant {0:?} does not exist")]
    UnknownTenant(String),
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A unique name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The server cannot do it now (a bounded queue or slot is full); try again later.
    #[error("{0}")]
    Busy(String),
    /// The result would be larger than allowed; the message says what and how large.
    #[error("{0}")]
    TooLarge(String),
    /// A per-tenant cap is reached; the message names it.
    #[error("{0}")]
    LimitReached(String),
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Invalid> for AdminError {
    fn from(e: Invalid) -> Self {
        AdminError::Invalid(e.0)
    }
}

pub(crate) fn internal(e: StoreError) -> AdminError {
    AdminError::Internal(e.into())
}

/// Administrative operations on tenants and everything in them.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    master_key: MasterKey,
    public_url: PublicUrl,
    clock: Clock,
    rules: crate::rules::Rules,
    passwords: crate::passwords::Passwords,
}

/// Credentials of a tenant's Management API client (shown once).
#[derive(Debug, Serialize)]
pub struct ManagementCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// The audience to request tokens for.
    pub audience: String,
}

/// A created tenant.
#[derive(Debug, Serialize)]
pub struct CreatedTenant {
    pub name: String,
    pub issuer: String,
    /// Discovery document URL.
    pub discovery: String,
    /// Id of its current signing key.
    pub signing_key: String,
    pub signing_alg: String,
    /// The Management API client, allowed every Management API scope.
    pub management: ManagementCredentials,
}

impl Admin {
    /// The service over a store; rule uploads are checked by the engine of `rules`.
    pub fn new(
        store: Store,
        master_key: MasterKey,
        public_url: PublicUrl,
        clock: Clock,
        rules: crate::rules::Rules,
        passwords: crate::passwords::Passwords,
    ) -> Self {
        Admin {
            store,
            master_key,
            public_url,
            clock,
            rules,
            passwords,
        }
    }

    /// The service on its own, outside a running server (the CLI's commands, benchmarks): its
    /// own rule engine with `limits`, the system clock.
    pub fn standalone(
        store: Store,
        master_key: MasterKey,
        public_url: PublicUrl,
        limits: crate::rules::Limits,
    ) -> anyhow::Result<Self> {
        let rules = crate::rules::Rules::new(store.clone(), master_key.clone(), limits)?;
        Ok(Admin::new(
            store,
            master_key,
            public_url,
            Clock::System,
            rules,
            crate::passwords::Passwords::default(),
        ))
    }

    /// The tenant named `name`, resolved once for the operations that follow.
    pub async fn resolve(&self, name: &str) -> Result<Tenant, AdminError> {
        let record = self.tenant(name).await?;
        let issuer = self.public_url.issuer(&record.name);
        Ok(record.into_tenant(issuer))
    }

    pub(crate) async fn tenant(&self, name: &str) -> Result<TenantRecord, AdminError> {
        self.store
            .tenant_by_name(name)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::UnknownTenant(name.to_string()))
    }

    /// Creates a tenant with signing keys of `alg` (current and next) and a Management API
    /// client allowed every Management API scope, in one transaction.
    pub async fn create_tenant(
        &self,
        name: &str,
        alg: SigningAlg,
    ) -> Result<CreatedTenant, AdminError> {
        let name = TenantName::parse(name)?;
        let now = self.clock.now();
        let tenant = TenantRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            created_at: now,
            rules_generation: 0,
            signing_alg: alg,
            keys_generation: 0,
            clients_generation: 0,
        };
        let keys = self.generate_keys(&tenant.id, alg, now).await?;
        let key = keys[0].clone();
        let secret = random_token(32);
        let client = NewClient {
            client_id: random_token(16),
            tenant_id: tenant.id.clone(),
            name: "Management API client".into(),
            secret_hash: Some(hash_token(&secret)),
            redirect_uris: vec![],
            grant_types: vec![crate::domain::GrantType::ClientCredentials],
            logout_urls: vec![],
            metadata: Default::default(),
            app_type: Some(crate::domain::AppType::NonInteractive),
            is_first_party: true,
            description: "Calls this tenant's Management API".into(),
            logo_uri: None,
            id_token_lifetime: None,
            created_at: now,
        };
        let grant = ClientGrantRecord {
            id: format!("cgr_{}", random_token(12)),
            tenant_id: tenant.id.clone(),
            client_id: client.client_id.clone(),
            audience: MANAGEMENT_AUDIENCE.into(),
            scopes: JsonText(MANAGEMENT_SCOPES.iter().map(ToString::to_string).collect()),
            created_at: now,
        };
        match self
            .store
            .create_tenant(&tenant, &keys, &client, &grant)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "tenant {name} already exists"
                )));
            }
            Err(e) => return Err(internal(e)),
        }
        let issuer = self.public_url.issuer(name.as_str());
        Ok(CreatedTenant {
            discovery: format!("{issuer}/.well-known/openid-configuration"),
            management: ManagementCredentials {
                client_id: client.client_id,
                client_secret: secret,
                audience: crate::domain::management::url(
                    &tenant.clone().into_tenant(issuer.clone()),
                ),
            },
            issuer,
            name: name.to_string(),
            signing_key: key.kid,
            signing_alg: alg.to_string(),
        })
    }
}

impl Admin {
    /// Two fresh keys of `alg`, current then next (RSA generation takes tens of ms: off the
    /// async workers).
    pub(crate) async fn generate_keys(
        &self,
        tenant_id: &str,
        alg: SigningAlg,
        now: i64,
    ) -> Result<[crate::store::SigningKeyRecord; 2], AdminError> {
        let master_key = self.master_key.clone();
        let tenant_id = tenant_id.to_string();
        tokio::task::spawn_blocking(move || {
            [
                generate_key(&tenant_id, alg, KeyStatus::Current, &master_key, now),
                generate_key(&tenant_id, alg, KeyStatus::Next, &master_key, now),
            ]
        })
        .await
        .map_err(|e| AdminError::Internal(e.into()))
    }
}

/// `page` and `per_page` (Auth0's paging) as offset and limit; at most 100 per page.
pub fn paging(page: Option<i64>, per_page: Option<i64>) -> Result<(i64, i64), AdminError> {
    let per_page = per_page.unwrap_or(50);
    let page = page.unwrap_or(0);
    if !(1..=100).contains(&per_page) {
        return Err(AdminError::Invalid(format!(
            "per_page must be 1 to 100, not {per_page}"
        )));
    }
    if !(0..=100_000).contains(&page) {
        return Err(AdminError::Invalid(format!(
            "page must be 0 to 100000, not {page}"
        )));
    }
    Ok((page * per_page, per_page))
}
