use sqlx::FromRow;

use super::{SigningKeyRecord, Store, StoreResult, map_unique};

/// A tenant row.
#[derive(Debug, Clone, FromRow)]
pub struct TenantRecord {
    /// Internal id.
    pub id: String,
    /// The tenant's name, part of its issuer URL.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

impl Store {
    /// Creates a tenant together with its first signing key, atomically.
    pub async fn create_tenant(
        &self,
        tenant: &TenantRecord,
        key: &SigningKeyRecord,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO tenant (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        Self::insert_signing_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finds a tenant by name.
    pub async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        Ok(sqlx::query_as::<_, TenantRecord>(
            "SELECT id, name, created_at FROM tenant WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }
}
