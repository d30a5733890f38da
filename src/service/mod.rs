//! The service layer: tenant administration shared by the CLI (and, later, the Management API).
//! Each operation validates its whole input before it writes anything.

pub mod demo;
pub mod rules;

use serde::Serialize;

use crate::clock::Clock;
use crate::config::PublicUrl;
use crate::crypto::{MasterKey, hash_password, hash_token, random_bytes, random_token};
use crate::domain::{
    ApiIdentifier, DisplayName, Email, Invalid, Password, RedirectUri, ScopeSet, TenantName,
};
use crate::store::{
    NewClient, NewUser, ResourceServerRecord, ScopeDefinition, Store, StoreError, TenantRecord,
};
use crate::tokens::generate_rsa_key;

/// Why an administrative operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The tenant does not exist.
    #[error("tenant {0:?} does not exist")]
    UnknownTenant(String),
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A unique name is taken.
    #[error("{0}")]
    Conflict(String),
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Invalid> for AdminError {
    fn from(e: Invalid) -> Self {
        AdminError::Invalid(e.0)
    }
}

fn internal(e: StoreError) -> AdminError {
    AdminError::Internal(e.into())
}

/// Administrative operations on tenants and their applications, users and APIs.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    master_key: MasterKey,
    public_url: PublicUrl,
    clock: Clock,
    rules: crate::rules::Rules,
}

/// A created tenant.
#[derive(Debug, Serialize)]
pub struct CreatedTenant {
    /// Name.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Discovery document URL.
    pub discovery: String,
    /// Id of its RS256 signing key.
    pub signing_key: String,
}

/// A created client; the secret is shown only here.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    /// Client id.
    pub client_id: String,
    /// Secret (absent for public clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Name.
    pub name: String,
    /// Registered callbacks.
    pub callbacks: Vec<String>,
    /// Whether the client is public.
    pub public: bool,
}

/// A created user.
#[derive(Debug, Serialize)]
pub struct CreatedUser {
    /// User id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A created API.
#[derive(Debug, Serialize)]
pub struct CreatedApi {
    /// Id.
    pub id: String,
    /// Identifier (audience).
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Scopes it defines.
    pub scopes: Vec<ScopeDefinition>,
}

impl Admin {
    /// The service over a store; rule uploads are checked by the engine of `rules`.
    pub fn new(
        store: Store,
        master_key: MasterKey,
        public_url: PublicUrl,
        clock: Clock,
        rules: crate::rules::Rules,
    ) -> Self {
        Admin {
            store,
            master_key,
            public_url,
            clock,
            rules,
        }
    }

    async fn tenant(&self, name: &str) -> Result<TenantRecord, AdminError> {
        self.store
            .tenant_by_name(name)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::UnknownTenant(name.to_string()))
    }

    /// Creates a tenant with an RS256 signing key.
    pub async fn create_tenant(&self, name: &str) -> Result<CreatedTenant, AdminError> {
        let name = TenantName::parse(name)?;
        let now = self.clock.now();
        let tenant = TenantRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            created_at: now,
        };
        let key = generate_rsa_key(&tenant.id, &self.master_key, now);
        match self.store.create_tenant(&tenant, &key).await {
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
            issuer,
            name: name.to_string(),
            signing_key: key.kid,
        })
    }

    /// Registers an application. Confidential clients get a 256-bit secret, stored hashed.
    pub async fn create_client(
        &self,
        tenant: &str,
        name: &str,
        callbacks: &[String],
        public: bool,
    ) -> Result<CreatedClient, AdminError> {
        let name = DisplayName::parse("client name", name)?;
        if callbacks.is_empty() {
            return Err(AdminError::Invalid(
                "at least one callback URL is required".into(),
            ));
        }
        let callbacks = callbacks
            .iter()
            .map(|c| RedirectUri::parse(c).map(|r| r.as_str().to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = self.tenant(tenant).await?;
        let secret = (!public).then(|| random_token(32));
        let client_id = random_token(16);
        let record = NewClient {
            client_id: client_id.clone(),
            tenant_id: tenant.id,
            name: name.as_str().to_string(),
            secret_hash: secret.as_deref().map(hash_token),
            redirect_uris: callbacks.clone(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            created_at: self.clock.now(),
        };
        self.store.insert_client(&record).await.map_err(internal)?;
        Ok(CreatedClient {
            client_id,
            client_secret: secret,
            name: record.name,
            callbacks,
            public,
        })
    }

    /// Replaces a confidential client's secret and returns the new one (shown only here).
    pub async fn rotate_client_secret(
        &self,
        tenant: &str,
        client_id: &str,
    ) -> Result<String, AdminError> {
        let tenant = self.tenant(tenant).await?;
        let secret = random_token(32);
        if !self
            .store
            .set_client_secret(&tenant.id, client_id, &hash_token(&secret))
            .await
            .map_err(internal)?
        {
            return Err(AdminError::Invalid(format!(
                "client {client_id:?} does not exist"
            )));
        }
        Ok(secret)
    }

    /// Creates a user with an argon2id password hash.
    pub async fn create_user(
        &self,
        tenant: &str,
        email: &str,
        password: &str,
        name: Option<&str>,
        email_verified: bool,
    ) -> Result<CreatedUser, AdminError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let name = name.map(|n| DisplayName::parse("name", n)).transpose()?;
        let tenant = self.tenant(tenant).await?;
        let pw = password.expose().to_string();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| AdminError::Internal(e.into()))?;
        let user_id = format!("auth0|{}", hex(&random_bytes(12)));
        let record = NewUser {
            user_id: user_id.clone(),
            tenant_id: tenant.id,
            email: email.as_str().to_string(),
            email_verified,
            password_hash,
            name: name.map(|n| n.as_str().to_string()),
            created_at: self.clock.now(),
        };
        match self.store.insert_user(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "a user with email {} already exists",
                    email.as_str()
                )));
            }
            Err(e) => return Err(internal(e)),
        }
        Ok(CreatedUser {
            user_id,
            email: record.email,
            email_verified,
            name: record.name,
        })
    }

    /// Registers an API. Scopes are `VALUE=DESCRIPTION` pairs.
    pub async fn create_api(
        &self,
        tenant: &str,
        identifier: &str,
        name: Option<&str>,
        scopes: &[String],
    ) -> Result<CreatedApi, AdminError> {
        let identifier = ApiIdentifier::parse(identifier)?;
        let name = DisplayName::parse("API name", name.unwrap_or(identifier.as_str()))?;
        let mut defs: Vec<ScopeDefinition> = Vec::new();
        for s in scopes {
            let (value, description) = s.split_once('=').unwrap_or((s.as_str(), ""));
            let parsed = ScopeSet::parse(value)?;
            if parsed.iter().count() != 1 {
                return Err(AdminError::Invalid(format!(
                    "invalid scope {value:?}: use VALUE=DESCRIPTION"
                )));
            }
            if defs.iter().any(|d| d.value == value) {
                return Err(AdminError::Invalid(format!(
                    "scope {value:?} is listed twice"
                )));
            }
            let description = description.trim();
            defs.push(ScopeDefinition {
                value: value.to_string(),
                description: if description.is_empty() {
                    value.to_string()
                } else {
                    description.to_string()
                },
            });
        }
        let tenant = self.tenant(tenant).await?;
        let record = ResourceServerRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.id,
            identifier: identifier.as_str().to_string(),
            name: name.as_str().to_string(),
            scopes: serde_json::to_string(&defs).map_err(|e| AdminError::Internal(e.into()))?,
            created_at: self.clock.now(),
        };
        match self.store.insert_resource_server(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "an API with identifier {} already exists",
                    identifier.as_str()
                )));
            }
            Err(e) => return Err(internal(e)),
        }
        Ok(CreatedApi {
            id: record.id,
            identifier: record.identifier,
            name: record.name,
            scopes: defs,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
