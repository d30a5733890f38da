//! APIs (resource servers): the audiences tokens are issued for and the scopes they define.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::domain::TokenDialect;

use super::{JsonText, OrConflict, Store, StoreResult};

/// One scope an API defines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScopeDefinition {
    /// The scope token, e.g. `read:messages`.
    pub value: String,
    /// What granting it allows, shown on the consent page.
    pub description: String,
}

/// An API (resource server) as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ResourceServerRecord {
    pub id: String,
    pub tenant_id: String,
    /// The audience value.
    pub identifier: String,
    pub name: String,
    /// The scopes it defines.
    pub scopes: JsonText<Vec<ScopeDefinition>>,
    pub created_at: i64,
    /// Lifetime of access tokens for this API, seconds.
    pub token_lifetime: i64,
    /// 1: only scopes the user's roles permit are granted.
    pub enforce_policies: i64,
    /// Whether its access tokens carry `permissions`.
    pub token_dialect: TokenDialect,
}

impl ResourceServerRecord {
    /// The scopes this API defines.
    pub fn scopes(&self) -> &[ScopeDefinition] {
        &self.scopes
    }
}

pub(super) const RS_COLUMNS: &str = "id, tenant_id, identifier, name, scopes, created_at, token_lifetime, enforce_policies, token_dialect";

impl Store {
    pub async fn insert_resource_server(&self, r: &ResourceServerRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resource_server (id, tenant_id, identifier, name, scopes, created_at, token_lifetime, enforce_policies, token_dialect) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.identifier)
        .bind(&r.name)
        .bind(&r.scopes)
        .bind(r.created_at)
        .bind(r.token_lifetime)
        .bind(r.enforce_policies)
        .bind(r.token_dialect.as_str())
        .execute(&self.writer)
        .await
        .or_conflict()?;
        Ok(())
    }

    /// The API of a tenant whose identifier is `identifier`.
    pub async fn resource_server_by_identifier(
        &self,
        tenant_id: &str,
        identifier: &str,
    ) -> StoreResult<Option<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 AND identifier = $2"
        ))
        .bind(tenant_id)
        .bind(identifier)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// APIs of a tenant.
    pub async fn list_resource_servers(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Vec<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// One API by id.
    pub async fn resource_server(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Option<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Renames an API or replaces its scopes.
    pub async fn update_resource_server(&self, r: &ResourceServerRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE resource_server SET name = $1, scopes = $2, token_lifetime = $5, enforce_policies = $6, \
             token_dialect = $7 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&r.name)
        .bind(&r.scopes)
        .bind(&r.tenant_id)
        .bind(&r.id)
        .bind(r.token_lifetime)
        .bind(r.enforce_policies)
        .bind(r.token_dialect.as_str())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an API and the client grants for it.
    pub async fn delete_resource_server(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Never the Management API's grants, whatever identifier the API has.
        sqlx::query(
            "DELETE FROM client_grant WHERE tenant_id = $1 AND audience <> 'urn:wardstone:management' \
             AND audience IN (SELECT identifier FROM resource_server WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM role_permission WHERE tenant_id = $1 \
             AND resource_server_identifier IN (SELECT identifier FROM resource_server WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM resource_server WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
