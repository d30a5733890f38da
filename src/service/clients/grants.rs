//! Grants of clients to APIs (client_credentials), the Management API's own among them.

use serde::{Deserialize, Serialize};

use crate::crypto::random_token;
use crate::domain::{ScopeSet, Tenant};
use crate::service::{Admin, AdminError, MANAGEMENT_AUDIENCE, internal};
use crate::store::{ClientGrantRecord, JsonText, StoreError};

/// A client grant as shown.
#[warn(missing_docs)]
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
#[warn(missing_docs)]
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

impl Admin {
    fn grant_view(&self, tenant: &Tenant, g: ClientGrantRecord) -> ClientGrantView {
        ClientGrantView {
            audience: if g.audience == MANAGEMENT_AUDIENCE {
                crate::domain::management::url(tenant)
            } else {
                g.audience
            },
            scope: g.scopes.0.clone(),
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
        if input.audience == crate::domain::management::url(tenant)
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
        let defined: Vec<String> = api.scopes().iter().map(|d| d.value.clone()).collect();
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
            scopes: JsonText(input.scope.clone()),
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
