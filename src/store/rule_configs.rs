//! Rule settings (`configuration`): values sealed with the master key. Every write bumps the
//! tenant's rules generation, as rules carry the settings into the pipeline.

use super::tenants::{Generation, bump_generation};
use super::{Store, StoreResult};

impl Store {
    /// Sets a sealed configuration value.
    ///
    /// Refused (nothing written) when the tenant would have more than `max_count` settings or
    /// more than `max_bytes` of values, counted before sealing (`overhead` bytes per value).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_rule_config(
        &self,
        tenant_id: &str,
        key: &str,
        sealed: &[u8],
        overhead: i64,
        max_count: i64,
        max_bytes: i64,
        now: i64,
    ) -> StoreResult<Result<(), String>> {
        let mut tx = self.writer.begin().await?;
        // The generation first: it serializes this tenant's setting writes across nodes.
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        let (count, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM rule_config WHERE tenant_id = $1 AND config_key <> $2",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let value_bytes = sealed.len() as i64 - overhead;
        if count + 1 > max_count {
            tx.rollback().await?;
            return Ok(Err(format!(
                "this tenant already has {count} rule settings, the most allowed; remove one first"
            )));
        }
        let total = bytes - count * overhead + value_bytes;
        if total > max_bytes {
            tx.rollback().await?;
            return Ok(Err(format!(
                "rule settings would take {total} bytes together; at most {max_bytes} are allowed"
            )));
        }
        sqlx::query(
            "INSERT INTO rule_config (tenant_id, config_key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, config_key) DO UPDATE SET value = $3, updated_at = $4",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Removes a configuration value; false when it was not set.
    pub async fn unset_rule_config(&self, tenant_id: &str, key: &str) -> StoreResult<bool> {
        let statement =
            sqlx::query("DELETE FROM rule_config WHERE tenant_id = $1 AND config_key = $2")
                .bind(tenant_id)
                .bind(key);
        self.change_one_row(tenant_id, Generation::Rules, statement)
            .await
    }

    /// Every (key, sealed value) of a tenant, by key.
    pub async fn rule_configs(&self, tenant_id: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT config_key, value FROM rule_config WHERE tenant_id = $1 ORDER BY config_key",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }
}
