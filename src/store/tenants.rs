use sqlx::FromRow;

use super::{ClientGrantRecord, NewClient, SigningKeyRecord, Store, StoreResult, map_unique};

/// A tenant row.
#[derive(Debug, Clone, FromRow)]
pub struct TenantRecord {
    /// Internal id.
    pub id: String,
    /// The tenant's name, part of its issuer URL.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// Bumped by every change to the tenant's rules or rule settings.
    pub rules_generation: i64,
}

impl Store {
    /// Creates a tenant together with its first signing key and its Management API client,
    /// atomically.
    pub async fn create_tenant(
        &self,
        tenant: &TenantRecord,
        key: &SigningKeyRecord,
        management: &NewClient,
        grant: &ClientGrantRecord,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO tenant (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        Self::insert_signing_key(&mut tx, key).await?;
        sqlx::query(
            "INSERT INTO client (client_id, tenant_id, name, secret_hash, redirect_uris, grant_types, metadata, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, '{}', $7)",
        )
        .bind(&management.client_id)
        .bind(&management.tenant_id)
        .bind(&management.name)
        .bind(&management.secret_hash)
        .bind(super::json_text(&management.redirect_uris))
        .bind(super::json_text(&management.grant_types))
        .bind(management.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO client_grant (id, tenant_id, client_id, audience, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&grant.id)
        .bind(&grant.tenant_id)
        .bind(&grant.client_id)
        .bind(&grant.audience)
        .bind(&grant.scopes)
        .bind(grant.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finds a tenant by name.
    pub async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        Ok(sqlx::query_as::<_, TenantRecord>(
            "SELECT id, name, created_at, rules_generation FROM tenant WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?)
    }
}
