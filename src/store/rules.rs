use sqlx::FromRow;

use super::{Store, StoreResult, map_unique};

/// A rule's metadata (without its module bytes).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct RuleRecord {
    /// `rul_...` id.
    pub id: String,
    /// Owning tenant.
    #[serde(skip)]
    pub tenant_id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// Position in the pipeline (ascending).
    #[serde(rename = "order")]
    pub rule_order: i64,
    /// 1 when enabled.
    #[serde(serialize_with = "as_bool")]
    pub enabled: i64,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

/// An execution log row.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ExecutionRow {
    /// Execution id.
    pub id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule name at the time.
    pub rule_name: String,
    /// `oidc-basic-profile`, `oauth2-refresh-token`, or `test`.
    pub protocol: String,
    /// `ok`, `denied` or `failed:<reason>`.
    pub outcome: String,
    /// Duration in µs.
    pub duration_us: i64,
    /// Fuel used.
    pub fuel: i64,
    /// JSON array of log lines.
    pub logs: String,
    /// When.
    pub created_at: i64,
}

const RULE_COLUMNS: &str =
    "id, tenant_id, name, rule_order, enabled, sha256, size, created_at, updated_at";

impl Store {
    /// Inserts a rule with its module.
    pub async fn insert_rule(&self, r: &RuleRecord, module: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rule (id, tenant_id, name, rule_order, enabled, sha256, module, size, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.name)
        .bind(r.rule_order)
        .bind(r.enabled)
        .bind(&r.sha256)
        .bind(module)
        .bind(r.size)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// The rules of a tenant in pipeline order (`enabled_only` for the login path).
    pub async fn rules(&self, tenant_id: &str, enabled_only: bool) -> StoreResult<Vec<RuleRecord>> {
        let filter = if enabled_only { "AND enabled = 1" } else { "" };
        Ok(sqlx::query_as::<_, RuleRecord>(&format!(
            "SELECT {RULE_COLUMNS} FROM rule WHERE tenant_id = $1 {filter} ORDER BY rule_order, created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One rule of a tenant.
    pub async fn rule(&self, tenant_id: &str, id: &str) -> StoreResult<Option<RuleRecord>> {
        Ok(sqlx::query_as::<_, RuleRecord>(&format!(
            "SELECT {RULE_COLUMNS} FROM rule WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Enables or disables a rule; false when it does not exist.
    pub async fn set_rule_enabled(
        &self,
        tenant_id: &str,
        id: &str,
        enabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE rule SET enabled = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(i64::from(enabled))
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a rule; false when it does not exist.
    pub async fn delete_rule(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM rule WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a sealed configuration value.
    pub async fn set_rule_config(
        &self,
        tenant_id: &str,
        key: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rule_config (tenant_id, config_key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, config_key) DO UPDATE SET value = $3, updated_at = $4",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(sealed)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a configuration value; false when it was not set.
    pub async fn unset_rule_config(&self, tenant_id: &str, key: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM rule_config WHERE tenant_id = $1 AND config_key = $2")
            .bind(tenant_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every (key, sealed value) of a tenant, by key.
    pub async fn rule_configs(&self, tenant_id: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT config_key, value FROM rule_config WHERE tenant_id = $1 ORDER BY config_key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Records executions.
    pub async fn insert_executions(
        &self,
        tenant_id: &str,
        rows: &[ExecutionRow],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO rule_execution (id, tenant_id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&r.id)
            .bind(tenant_id)
            .bind(&r.rule_id)
            .bind(&r.rule_name)
            .bind(&r.protocol)
            .bind(&r.outcome)
            .bind(r.duration_us)
            .bind(r.fuel)
            .bind(&r.logs)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Newest executions of a tenant first.
    pub async fn executions(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<ExecutionRow>> {
        Ok(sqlx::query_as::<_, ExecutionRow>(
            "SELECT id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at \
             FROM rule_execution WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Drops executions older than `before` and keeps at most `keep` per tenant.
    pub async fn prune_executions(&self, before: i64, keep: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM rule_execution WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM rule_execution WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY tenant_id ORDER BY created_at DESC, id) AS n FROM rule_execution) ranked WHERE n > $1)",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
