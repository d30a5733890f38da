//! Applications (OAuth clients): the wire types and CRUD here; the Auth0 compatibility policy
//! (which Auth0 fields are accepted, ignored or refused) in `auth0`, field validators in
//! `checks`, grants of clients to APIs in `grants`.

mod auth0;
mod checks;
mod grants;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Admin, AdminError, internal};
use crate::crypto::{hash_token, random_token};
use crate::domain::{AppType, DisplayName, GrantType, Tenant};
use crate::store::{ClientRecord, JsonText, NewClient, StoreError};

use auth0::Auth0Settings;
pub use auth0::{HARDENING_AUTH0_CLIENT_FIELDS, IGNORED_AUTH0_CLIENT_FIELDS, parse_auth0_body};
use checks::{
    check_callbacks, check_grant_types, check_logout_urls, check_metadata, is_public_method,
};
pub use grants::{ClientGrantView, NewClientGrant};

/// A client as the Management API shows it (never its secret).
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// Client id.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Exact callback URLs.
    pub callbacks: Vec<String>,
    /// Exact URLs the browser may be sent to after logging out (RP-Initiated Logout).
    pub allowed_logout_urls: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// `client_secret_basic` (also accepts `client_secret_post`) or `none` for public clients.
    pub token_endpoint_auth_method: String,
    /// Tenant-defined metadata.
    #[schema(value_type = Object)]
    pub client_metadata: Value,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// The secret: only in the responses of create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Auth0's application type, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub app_type: Option<AppType>,
    /// Auth0's first-party flag (stored and shown; consent is asked the same way).
    pub is_first_party: bool,
    /// Always true: Wardstone only speaks OIDC-conformant flows.
    pub oidc_conformant: bool,
    /// Free text.
    pub description: String,
    /// Logo URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// ID token settings: `lifetime_in_seconds` when set for this client (otherwise the
    /// server's default applies).
    #[schema(value_type = Object)]
    pub jwt_configuration: Value,
}

/// Auth0's `jwt_configuration`: the ID token lifetime is honoured; `alg` must be the tenant's.
#[warn(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfiguration {
    /// ID token lifetime, 60 to 2592000 seconds.
    pub lifetime_in_seconds: Option<i64>,
    /// Must equal the tenant's signing algorithm when given.
    pub alg: Option<String>,
    /// Accepted and ignored (Auth0: for HS256 secrets, which Wardstone does not use).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub secret_encoded: Option<serde::de::IgnoredAny>,
    /// Accepted and ignored (Auth0: scopes of legacy delegation tokens).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub scopes: Option<serde::de::IgnoredAny>,
}

impl From<ClientRecord> for ClientView {
    fn from(c: ClientRecord) -> Self {
        ClientView {
            callbacks: c.redirect_uris.0.clone(),
            allowed_logout_urls: c.logout_urls.0.clone(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            token_endpoint_auth_method: if c.is_public() {
                "none"
            } else {
                "client_secret_basic"
            }
            .into(),
            client_metadata: Value::Object(c.metadata.0.clone()),
            app_type: c.app_type,
            is_first_party: *c.is_first_party,
            oidc_conformant: true,
            description: c.description.clone(),
            logo_uri: c.logo_uri.clone(),
            jwt_configuration: match c.id_token_lifetime {
                Some(s) => serde_json::json!({ "lifetime_in_seconds": s }),
                None => serde_json::json!({}),
            },
            client_id: c.client_id,
            name: c.name,
            created_at: c.created_at,
            client_secret: None,
        }
    }
}

/// What creating a client takes.
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientInput {
    /// Name shown on login and consent pages.
    pub name: String,
    /// Exact callback URLs.
    #[serde(default)]
    pub callbacks: Vec<String>,
    /// Exact URLs the browser may be sent to after logging out.
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    pub grant_types: Option<Vec<String>>,
    /// `none` makes a public client (no secret, PKCE required); default `client_secret_basic`.
    pub token_endpoint_auth_method: Option<String>,
    /// Metadata (a JSON object, at most 8 KiB).
    #[schema(value_type = Option<Object>)]
    pub client_metadata: Option<Value>,
    /// Auth0's application type: `regular_web`, `spa`, `native` or `non_interactive`. Without
    /// `token_endpoint_auth_method`, `spa` and `native` make a public client; without
    /// `grant_types`, `non_interactive` gets `client_credentials`.
    #[schema(value_type = Option<String>)]
    pub app_type: Option<AppType>,
    /// Auth0's first-party flag (default true).
    pub is_first_party: Option<bool>,
    /// Must be true when given: Wardstone only speaks OIDC-conformant flows.
    pub oidc_conformant: Option<bool>,
    /// Free text, at most 140 characters.
    pub description: Option<String>,
    /// Logo URL (https).
    pub logo_uri: Option<String>,
    /// ID token settings.
    pub jwt_configuration: Option<JwtConfiguration>,
}

/// Credentials a client brings along (an import from Auth0 keeps them, so its apps only change
/// the issuer URL); none given means fresh ones.
#[derive(Debug, Clone, Default)]
pub struct KeptCredentials {
    /// The client id to keep.
    pub client_id: Option<String>,
    /// The secret to keep (stored hashed, as every secret).
    pub client_secret: Option<String>,
}

/// What updating a client may change.
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    /// New name.
    pub name: Option<String>,
    /// New callback list.
    pub callbacks: Option<Vec<String>>,
    /// New post-logout URL list.
    pub allowed_logout_urls: Option<Vec<String>>,
    /// New grant types.
    pub grant_types: Option<Vec<String>>,
    /// New metadata (replaces the old).
    #[schema(value_type = Option<Object>)]
    pub client_metadata: Option<Value>,
    /// `client_secret_basic`, `client_secret_post` (same client) or `none`: a client cannot
    /// change between public and confidential.
    pub token_endpoint_auth_method: Option<String>,
    /// Auth0's application type: `regular_web`, `spa`, `native` or `non_interactive`. Without
    /// `token_endpoint_auth_method`, `spa` and `native` make a public client; without
    /// `grant_types`, `non_interactive` gets `client_credentials`.
    #[schema(value_type = Option<String>)]
    pub app_type: Option<AppType>,
    /// Auth0's first-party flag (default true).
    pub is_first_party: Option<bool>,
    /// Must be true when given: Wardstone only speaks OIDC-conformant flows.
    pub oidc_conformant: Option<bool>,
    /// Free text, at most 140 characters.
    pub description: Option<String>,
    /// Logo URL (https).
    pub logo_uri: Option<String>,
    /// ID token settings.
    pub jwt_configuration: Option<JwtConfiguration>,
}

impl NewClientInput {
    /// The CLI's kind of application: interactive grants, confidential (client_secret_basic)
    /// unless `public`.
    pub fn interactive(name: String, callbacks: Vec<String>, public: bool) -> Self {
        NewClientInput {
            name,
            callbacks,
            grant_types: None,
            token_endpoint_auth_method: Some(
                if public {
                    "none"
                } else {
                    "client_secret_basic"
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

impl Admin {
    /// Registers an application with the CLI's options: interactive grants, confidential
    /// unless `public`.
    pub async fn create_client(
        &self,
        tenant: &Tenant,
        name: &str,
        callbacks: &[String],
        public: bool,
    ) -> Result<ClientView, AdminError> {
        self.create_client_with(
            tenant,
            NewClientInput::interactive(name.to_string(), callbacks.to_vec(), public),
        )
        .await
    }

    /// Registers an application. Confidential clients get a 256-bit secret, stored hashed and
    /// returned only here.
    pub async fn create_client_with(
        &self,
        tenant: &Tenant,
        input: NewClientInput,
    ) -> Result<ClientView, AdminError> {
        let (record, secret) = self.new_client_record(tenant, input, KeptCredentials::default())?;
        self.insert_new_client(tenant, record, secret).await
    }

    pub(crate) async fn insert_new_client(
        &self,
        tenant: &Tenant,
        record: NewClient,
        secret: Option<String>,
    ) -> Result<ClientView, AdminError> {
        match self.store.insert_client(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "client_id {:?} is taken",
                    record.client_id
                )));
            }
            Err(e) => return Err(internal(e)),
        }
        let stored = self.client_record(&tenant.id, &record.client_id).await?;
        Ok(ClientView {
            client_secret: secret,
            ..ClientView::from(stored)
        })
    }

    /// Checks a new client and makes its row (and its secret, shown once) without writing:
    /// the importer checks every client of an export this way before it writes anything.
    pub(crate) fn new_client_record(
        &self,
        tenant: &Tenant,
        input: NewClientInput,
        kept: KeptCredentials,
    ) -> Result<(NewClient, Option<String>), AdminError> {
        let name = DisplayName::parse("client name", &input.name)?;
        let public = match input.token_endpoint_auth_method.as_deref() {
            None => matches!(input.app_type, Some(AppType::Spa | AppType::Native)),
            Some(method) => is_public_method(method)?,
        };
        let auth0 = Auth0Settings::check(
            tenant,
            &Auth0Settings::default(),
            input.app_type,
            input.is_first_party,
            input.oidc_conformant,
            input.description.as_deref(),
            input.logo_uri.as_deref(),
            input.jwt_configuration.as_ref(),
        )?;
        let grant_types = match &input.grant_types {
            Some(named) => check_grant_types(named, public)?,
            None if input.app_type == Some(AppType::NonInteractive) => {
                check_grant_types(&["client_credentials".into()], public)?
            }
            None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        };
        let callbacks = check_callbacks(&input.callbacks, &grant_types)?;
        let logout_urls = check_logout_urls(&input.allowed_logout_urls)?;
        let metadata = input
            .client_metadata
            .as_ref()
            .map(check_metadata)
            .transpose()?
            .unwrap_or_default();
        if let Some(id) = &kept.client_id
            && (id.is_empty()
                || id.len() > 128
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(AdminError::Invalid(format!(
                "client_id {id:?}: 1 to 128 letters, digits, '-', '_' or '.'"
            )));
        }
        let secret = match (public, kept.client_secret) {
            (true, _) => None,
            (false, Some(s)) if s.len() >= 16 && s.len() <= 512 => Some(s),
            (false, Some(_)) => {
                return Err(AdminError::Invalid(
                    "client_secret must be 16 to 512 characters".into(),
                ));
            }
            (false, None) => Some(random_token(32)),
        };
        let record = NewClient {
            client_id: kept.client_id.unwrap_or_else(|| random_token(16)),
            tenant_id: tenant.id.clone(),
            name: name.as_str().to_string(),
            secret_hash: secret.as_deref().map(hash_token),
            redirect_uris: callbacks,
            grant_types,
            logout_urls,
            metadata,
            app_type: auth0.app_type,
            is_first_party: auth0.is_first_party,
            description: auth0.description,
            logo_uri: auth0.logo_uri,
            id_token_lifetime: auth0.id_token_lifetime,
            created_at: self.clock.now(),
        };
        Ok((record, secret))
    }

    async fn client_record(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> Result<ClientRecord, AdminError> {
        self.store
            .client(tenant_id, client_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("client {client_id:?} does not exist")))
    }

    /// Clients of a tenant.
    pub async fn list_clients(
        &self,
        tenant: &Tenant,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ClientView>, AdminError> {
        Ok(self
            .store
            .list_clients(&tenant.id, offset, limit)
            .await
            .map_err(internal)?
            .into_iter()
            .map(ClientView::from)
            .collect())
    }

    pub async fn get_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> Result<ClientView, AdminError> {
        Ok(self.client_record(&tenant.id, client_id).await?.into())
    }

    /// Changes a client's name, callbacks, logout URLs, grant types or metadata.
    pub async fn update_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
        patch: ClientPatch,
    ) -> Result<ClientView, AdminError> {
        let mut record = self.client_record(&tenant.id, client_id).await?;
        if let Some(name) = &patch.name {
            record.name = DisplayName::parse("client name", name)?
                .as_str()
                .to_string();
        }
        if let Some(method) = &patch.token_endpoint_auth_method
            && is_public_method(method)? != record.is_public()
        {
            return Err(AdminError::Invalid(
                "token_endpoint_auth_method cannot turn a public client into a confidential one or back; create a new client".into(),
            ));
        }
        let auth0 = Auth0Settings::check(
            tenant,
            &Auth0Settings::of(&record),
            patch.app_type,
            patch.is_first_party,
            patch.oidc_conformant,
            patch.description.as_deref(),
            patch.logo_uri.as_deref(),
            patch.jwt_configuration.as_ref(),
        )?;
        record.app_type = auth0.app_type;
        record.is_first_party = auth0.is_first_party.into();
        record.description = auth0.description;
        record.logo_uri = auth0.logo_uri;
        record.id_token_lifetime = auth0.id_token_lifetime;
        let grant_types = match &patch.grant_types {
            Some(named) => check_grant_types(named, record.is_public())?,
            None => record.grant_types.0.clone(),
        };
        if !grant_types.contains(&GrantType::ClientCredentials)
            && self.is_management_client(tenant, client_id).await?
        {
            return Err(AdminError::Invalid(
                "the Management API client must keep the client_credentials grant".into(),
            ));
        }
        let callbacks = patch
            .callbacks
            .unwrap_or_else(|| record.redirect_uris.0.clone());
        let callbacks = check_callbacks(&callbacks, &grant_types)?;
        record.redirect_uris = JsonText(callbacks);
        record.grant_types = JsonText(grant_types);
        if let Some(urls) = &patch.allowed_logout_urls {
            record.logout_urls = JsonText(check_logout_urls(urls)?);
        }
        if let Some(m) = &patch.client_metadata {
            record.metadata = JsonText(check_metadata(m)?);
        }
        if !self.store.update_client(&record).await.map_err(internal)? {
            return Err(AdminError::NotFound(format!(
                "client {client_id:?} does not exist"
            )));
        }
        Ok(record.into())
    }

    /// Deletes a client and everything issued to it. The Management API client cannot be
    /// deleted: the tenant would lose its only way in.
    pub async fn delete_client(&self, tenant: &Tenant, client_id: &str) -> Result<(), AdminError> {
        if self.is_management_client(tenant, client_id).await? {
            return Err(AdminError::Invalid(
                "the Management API client cannot be deleted".into(),
            ));
        }
        if !self
            .store
            .delete_client(&tenant.id, client_id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!(
                "client {client_id:?} does not exist"
            )));
        }
        Ok(())
    }

    /// Replaces a confidential client's secret and returns the new one (shown only here).
    pub async fn rotate_client_secret(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> Result<ClientView, AdminError> {
        let record = self.client_record(&tenant.id, client_id).await?;
        if record.is_public() {
            return Err(AdminError::Invalid("public clients have no secret".into()));
        }
        let secret = random_token(32);
        if !self
            .store
            .set_client_secret(&tenant.id, client_id, &hash_token(&secret))
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!(
                "client {client_id:?} does not exist"
            )));
        }
        Ok(ClientView {
            client_secret: Some(secret),
            ..record.into()
        })
    }
}
