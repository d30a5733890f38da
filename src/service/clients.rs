//! Applications (OAuth clients) and their grants to APIs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Admin, AdminError, MANAGEMENT_AUDIENCE, internal, json_err};
use crate::crypto::{hash_token, random_token};
use crate::domain::{DisplayName, RedirectUri, ScopeSet, Tenant};
use crate::store::{ClientGrantRecord, ClientRecord, NewClient, StoreError};

const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// A client as the Management API shows it (never its secret).
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
}

impl From<ClientRecord> for ClientView {
    fn from(c: ClientRecord) -> Self {
        ClientView {
            callbacks: c.redirect_uris(),
            allowed_logout_urls: c.logout_urls(),
            grant_types: serde_json::from_str(&c.grant_types).unwrap_or_default(),
            token_endpoint_auth_method: if c.is_public() {
                "none"
            } else {
                "client_secret_basic"
            }
            .into(),
            client_metadata: serde_json::from_str(&c.metadata).unwrap_or_default(),
            client_id: c.client_id,
            name: c.name,
            created_at: c.created_at,
            client_secret: None,
        }
    }
}

/// What creating a client takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
}

/// What updating a client may change.
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
}

/// A client grant as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientGrantView {
    /// `cgr_...` id.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The API identifier.
    pub audience: String,
    /// Scopes the client may request.
    pub scope: Vec<String>,
}

/// What granting a client access to an API takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientGrant {
    /// The client.
    pub client_id: String,
    /// The API identifier.
    pub audience: String,
    /// Scopes of that API the client may request.
    #[serde(default)]
    pub scope: Vec<String>,
}

fn check_grant_types(types: &[String], public: bool) -> Result<(), AdminError> {
    for t in types {
        if !GRANT_TYPES.contains(&t.as_str()) {
            return Err(AdminError::Invalid(format!(
                "unsupported grant type {t:?}; use authorization_code, refresh_token or client_credentials"
            )));
        }
    }
    if public && types.iter().any(|t| t == "client_credentials") {
        return Err(AdminError::Invalid(
            "public clients cannot use client_credentials".into(),
        ));
    }
    Ok(())
}

fn check_metadata(v: &Value) -> Result<String, AdminError> {
    if !v.is_object() {
        return Err(AdminError::Invalid(
            "client_metadata must be a JSON object".into(),
        ));
    }
    let text = v.to_string();
    if text.len() > 8192 {
        return Err(AdminError::Invalid(
            "client_metadata is larger than 8 KiB".into(),
        ));
    }
    Ok(text)
}

fn check_callbacks(
    callbacks: &[String],
    grant_types: &[String],
) -> Result<Vec<String>, AdminError> {
    if callbacks.is_empty() && grant_types.iter().any(|g| g == "authorization_code") {
        return Err(AdminError::Invalid(
            "at least one callback URL is required for authorization_code".into(),
        ));
    }
    if callbacks.len() > 100 {
        return Err(AdminError::Invalid("at most 100 callback URLs".into()));
    }
    Ok(callbacks
        .iter()
        .map(|c| RedirectUri::parse(c).map(|r| r.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Post-logout redirect URLs follow the callbacks' rules (https except loopback, exact match).
fn check_logout_urls(urls: &[String]) -> Result<Vec<String>, AdminError> {
    if urls.len() > 100 {
        return Err(AdminError::Invalid("at most 100 logout URLs".into()));
    }
    Ok(urls
        .iter()
        .map(|u| RedirectUri::parse(u).map(|r| r.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()?)
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
            NewClientInput {
                name: name.to_string(),
                callbacks: callbacks.to_vec(),
                allowed_logout_urls: vec![],
                grant_types: None,
                token_endpoint_auth_method: Some(
                    if public {
                        "none"
                    } else {
                        "client_secret_basic"
                    }
                    .into(),
                ),
                client_metadata: None,
            },
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
        let name = DisplayName::parse("client name", &input.name)?;
        let public = match input.token_endpoint_auth_method.as_deref() {
            None | Some("client_secret_basic") | Some("client_secret_post") => false,
            Some("none") => true,
            Some(other) => {
                return Err(AdminError::Invalid(format!(
                    "unsupported token_endpoint_auth_method {other:?}; use client_secret_basic, client_secret_post or none"
                )));
            }
        };
        let grant_types = input
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        check_grant_types(&grant_types, public)?;
        let callbacks = check_callbacks(&input.callbacks, &grant_types)?;
        let logout_urls = check_logout_urls(&input.allowed_logout_urls)?;
        let metadata = input
            .client_metadata
            .as_ref()
            .map(check_metadata)
            .transpose()?;
        let secret = (!public).then(|| random_token(32));
        let record = NewClient {
            client_id: random_token(16),
            tenant_id: tenant.id.clone(),
            name: name.as_str().to_string(),
            secret_hash: secret.as_deref().map(hash_token),
            redirect_uris: callbacks,
            grant_types,
            logout_urls,
            created_at: self.clock.now(),
        };
        self.store
            .insert_client(&record, metadata.as_deref().unwrap_or("{}"))
            .await
            .map_err(internal)?;
        let stored = self.client_record(&tenant.id, &record.client_id).await?;
        Ok(ClientView {
            client_secret: secret,
            ..ClientView::from(stored)
        })
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

    /// One client.
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
        let grant_types: Vec<String> = match patch.grant_types {
            Some(g) => g,
            None => serde_json::from_str(&record.grant_types).unwrap_or_default(),
        };
        check_grant_types(&grant_types, record.is_public())?;
        if !grant_types.iter().any(|g| g == "client_credentials")
            && self.is_management_client(tenant, client_id).await?
        {
            return Err(AdminError::Invalid(
                "the Management API client must keep the client_credentials grant".into(),
            ));
        }
        let callbacks = patch.callbacks.unwrap_or_else(|| record.redirect_uris());
        let callbacks = check_callbacks(&callbacks, &grant_types)?;
        record.redirect_uris = serde_json::to_string(&callbacks).map_err(json_err)?;
        record.grant_types = serde_json::to_string(&grant_types).map_err(json_err)?;
        if let Some(urls) = &patch.allowed_logout_urls {
            record.logout_urls =
                serde_json::to_string(&check_logout_urls(urls)?).map_err(json_err)?;
        }
        if let Some(m) = &patch.client_metadata {
            record.metadata = check_metadata(m)?;
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

    fn grant_view(&self, tenant: &Tenant, g: ClientGrantRecord) -> ClientGrantView {
        ClientGrantView {
            audience: if g.audience == MANAGEMENT_AUDIENCE {
                self.management_audience(&tenant.name)
            } else {
                g.audience
            },
            scope: serde_json::from_str(&g.scopes).unwrap_or_default(),
            id: g.id,
            client_id: g.client_id,
        }
    }

    /// Whether `client_id` is the tenant's Management API client.
    pub async fn is_management_client(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> Result<bool, AdminError> {
        Ok(self
            .store
            .client_grant_for(&tenant.id, client_id, MANAGEMENT_AUDIENCE)
            .await
            .map_err(internal)?
            .is_some())
    }

    /// Lets a confidential client get tokens for an API (client_credentials) with some of its
    /// scopes. Grants to the Management API itself cannot be made here.
    pub async fn create_client_grant(
        &self,
        tenant: &Tenant,
        input: NewClientGrant,
    ) -> Result<ClientGrantView, AdminError> {
        if input.audience == self.management_audience(&tenant.name)
            || input.audience == MANAGEMENT_AUDIENCE
        {
            return Err(AdminError::Invalid(
                "access to the Management API cannot be granted through the API".into(),
            ));
        }
        let client = self.client_record(&tenant.id, &input.client_id).await?;
        if client.is_public() {
            return Err(AdminError::Invalid(
                "public clients cannot use client_credentials".into(),
            ));
        }
        let Some(api) = self
            .store
            .resource_server_by_identifier(&tenant.id, &input.audience)
            .await
            .map_err(internal)?
        else {
            return Err(AdminError::NotFound(format!(
                "no API with identifier {:?}",
                input.audience
            )));
        };
        let defined: Vec<String> = api.scopes().into_iter().map(|d| d.value).collect();
        for s in &input.scope {
            ScopeSet::parse(s)?;
            if !defined.contains(s) {
                return Err(AdminError::Invalid(format!(
                    "scope {s:?} is not defined by {}",
                    api.identifier
                )));
            }
        }
        let record = ClientGrantRecord {
            id: format!("cgr_{}", random_token(12)),
            tenant_id: tenant.id.clone(),
            client_id: input.client_id,
            audience: input.audience,
            scopes: serde_json::to_string(&input.scope).map_err(json_err)?,
            created_at: self.clock.now(),
        };
        match self.store.insert_client_grant(&record).await {
            Ok(()) => Ok(self.grant_view(tenant, record)),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(
                "this client already has a grant for this API".into(),
            )),
            Err(e) => Err(internal(e)),
        }
    }

    /// Client grants of a tenant.
    pub async fn list_client_grants(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<ClientGrantView>, AdminError> {
        let grants = self
            .store
            .list_client_grants(&tenant.id)
            .await
            .map_err(internal)?;
        Ok(grants
            .into_iter()
            .map(|g| self.grant_view(tenant, g))
            .collect())
    }

    /// Removes a client grant.
    pub async fn delete_client_grant(&self, tenant: &Tenant, id: &str) -> Result<(), AdminError> {
        if !self
            .store
            .delete_client_grant(&tenant.id, id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!(
                "client grant {id:?} does not exist"
            )));
        }
        Ok(())
    }
}
