//! Rules and their versions (their settings are in `rule_configs.rs`, compiled artifacts in
//! `artifacts.rs`, the execution log in `executions.rs`).
//!
//! Every write to a tenant's rules or settings bumps `tenant.rules_generation` in the same
//! transaction: nodes keep rule lists in memory keyed by that generation (see `rules/`).

use sqlx::{Any, FromRow, Transaction};

use crate::domain::OnFailure;

use super::artifacts::ArtifactRecord;
use super::tenants::{Generation, bump_generation};
use super::{Flag, OrConflict, Store, StoreError, StoreResult};

/// A rule's metadata (without its module bytes).
#[derive(Debug, Clone, FromRow)]
pub struct RuleRecord {
    /// `rul_...` id.
    pub id: String,
    pub tenant_id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// Position in the pipeline (ascending).
    pub rule_order: i64,
    /// Whether the rule runs.
    pub enabled: Flag,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The current version (1 at upload, +1 for every module change or rollback).
    pub version: i64,
    /// What a failure of this rule does to the login.
    pub on_failure: OnFailure,
}

/// One stored version of a rule's module (shown as `service::rules::RuleVersionView`).
#[derive(Debug, Clone, FromRow)]
pub struct RuleVersionRecord {
    pub version: i64,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    pub created_at: i64,
}

/// Why a rule write wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleWriteError {
    /// The name is taken.
    Conflict,
    /// The tenant already has this many rules.
    TooManyRules(i64),
}

/// A tenant's enabled rules and sealed settings, read after the tenant row the request read
/// (so at least as new as its `rules_generation`, which the cache stamps them with).
#[derive(Debug, Clone)]
pub struct RuleSetRows {
    /// Enabled rules in pipeline order.
    pub rules: Vec<RuleRecord>,
    /// (key, sealed value) by key.
    pub configs: Vec<(String, Vec<u8>)>,
    /// The tenant's outbound allow-list.
    pub allowed_hosts: Vec<crate::domain::AllowedHost>,
    /// Runs the tenant records (0: off).
    pub recording_keep: i64,
    /// Bound actions with their live versions, per trigger in order.
    pub actions: Vec<super::BoundActionRow>,
}

const RULE_COLUMNS: &str = "id, tenant_id, name, rule_order, enabled, sha256, size, created_at, updated_at, \
    version, on_failure";
async fn insert_version(
    tx: &mut Transaction<'_, Any>,
    r: &RuleRecord,
    version: i64,
    module: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rule_version (tenant_id, rule_id, version, sha256, module, size, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&r.tenant_id)
    .bind(&r.id)
    .bind(version)
    .bind(&r.sha256)
    .bind(module)
    .bind(r.size)
    .bind(r.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The stored versions of a rule of the tenant, newest first.
    pub async fn rule_versions(
        &self,
        tenant_id: &str,
        rule_id: &str,
    ) -> StoreResult<Vec<RuleVersionRecord>> {
        Ok(sqlx::query_as::<_, RuleVersionRecord>(
            "SELECT version, sha256, size, created_at FROM rule_version WHERE tenant_id = $1 AND rule_id = $2 \
             ORDER BY version DESC",
        )
        .bind(tenant_id)
        .bind(rule_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The module of one version of a rule of the tenant.
    pub async fn rule_version_module(
        &self,
        tenant_id: &str,
        rule_id: &str,
        version: i64,
    ) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT module FROM rule_version WHERE tenant_id = $1 AND rule_id = $2 AND version = $3",
        )
        .bind(tenant_id)
        .bind(rule_id)
        .bind(version)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Inserts a rule (version 1) with its module and its compiled artifact, in one
    /// transaction, unless the tenant already has `max_rules`.
    pub async fn insert_rule(
        &self,
        r: &RuleRecord,
        module: &[u8],
        artifact: &ArtifactRecord,
        max_rules: i64,
    ) -> StoreResult<Result<(), RuleWriteError>> {
        let mut tx = self.writer.begin().await?;
        // The generation first: it takes the tenant's row (PostgreSQL) or the write lock
        // (SQLite), so two uploads cannot both pass the count below.
        bump_generation(&mut tx, &r.tenant_id, Generation::Rules).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rule WHERE tenant_id = $1")
            .bind(&r.tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max_rules {
            tx.rollback().await?;
            return Ok(Err(RuleWriteError::TooManyRules(max_rules)));
        }
        let inserted = sqlx::query(
            "INSERT INTO rule (id, tenant_id, name, rule_order, enabled, sha256, module, size, created_at, updated_at, version, on_failure) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11)",
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
        .bind(r.on_failure.as_str())
        .execute(&mut *tx)
        .await
        .or_conflict();
        if let Err(StoreError::Conflict) = inserted {
            tx.rollback().await?;
            return Ok(Err(RuleWriteError::Conflict));
        }
        inserted?;
        insert_version(&mut tx, r, 1, module).await?;
        super::artifacts::put_artifact(&mut tx, artifact, r.created_at).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Changes a rule; a new module (with its artifact) replaces the module and its hash in
    /// the same statement, so a login sees the old module or the new one, never a mix.
    /// A new module is a new version; versions beyond the newest `keep_versions` are pruned
    /// (never the current one).
    pub async fn update_rule(
        &self,
        r: &RuleRecord,
        module: Option<(&[u8], &ArtifactRecord)>,
        keep_versions: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = match module {
            Some((bytes, artifact)) => {
                super::artifacts::put_artifact(&mut tx, artifact, r.updated_at).await?;
                sqlx::query(
                    "UPDATE rule SET name = $1, rule_order = $2, enabled = $3, updated_at = $4, sha256 = $5, module = $6, size = $7, \
                     version = version + 1, on_failure = $10 WHERE tenant_id = $8 AND id = $9",
                )
                .bind(&r.name)
                .bind(r.rule_order)
                .bind(r.enabled)
                .bind(r.updated_at)
                .bind(&r.sha256)
                .bind(bytes)
                .bind(r.size)
                .bind(&r.tenant_id)
                .bind(&r.id)
                .bind(r.on_failure.as_str())
                .execute(&mut *tx)
                .await
            }
            None => {
                sqlx::query(
                    "UPDATE rule SET name = $1, rule_order = $2, enabled = $3, updated_at = $4, on_failure = $7 \
                     WHERE tenant_id = $5 AND id = $6",
                )
                .bind(&r.name)
                .bind(r.rule_order)
                .bind(r.enabled)
                .bind(r.updated_at)
                .bind(&r.tenant_id)
                .bind(&r.id)
                .bind(r.on_failure.as_str())
                .execute(&mut *tx)
                .await
            }
        }
        .or_conflict()?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some((bytes, _)) = module {
            let version: i64 =
                sqlx::query_scalar("SELECT version FROM rule WHERE tenant_id = $1 AND id = $2")
                    .bind(&r.tenant_id)
                    .bind(&r.id)
                    .fetch_one(&mut *tx)
                    .await?;
            insert_version(&mut tx, r, version, bytes).await?;
            sqlx::query("DELETE FROM rule_version WHERE rule_id = $1 AND version <= $2")
                .bind(&r.id)
                .bind(version - keep_versions.max(1))
                .execute(&mut *tx)
                .await?;
        }
        bump_generation(&mut tx, &r.tenant_id, Generation::Rules).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The rules of a tenant in pipeline order (`enabled_only` for the login path).
    pub async fn rules(&self, tenant_id: &str, enabled_only: bool) -> StoreResult<Vec<RuleRecord>> {
        let filter = if enabled_only { "AND enabled = 1" } else { "" };
        Ok(sqlx::query_as::<_, RuleRecord>(&format!(
            "SELECT {RULE_COLUMNS} FROM rule WHERE tenant_id = $1 {filter} ORDER BY rule_order, created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// What a login needs of a tenant's rules and actions: its outbound reach and recording
    /// bound, the enabled rules, the sealed settings and the bound actions.
    pub async fn rule_set(&self, tenant_id: &str) -> StoreResult<RuleSetRows> {
        let row: Option<(super::JsonText<Vec<crate::domain::AllowedHost>>, i64)> =
            sqlx::query_as("SELECT allowed_hosts, recording_keep FROM tenant WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.reader)
                .await?;
        let (allowed_hosts, recording_keep) = row.map(|(h, k)| (h.0, k)).unwrap_or((Vec::new(), 0));
        Ok(RuleSetRows {
            allowed_hosts,
            recording_keep,
            rules: self.rules(tenant_id, true).await?,
            configs: self.rule_configs(tenant_id).await?,
            actions: self.bound_actions(tenant_id).await?,
        })
    }

    /// One rule of a tenant.
    pub async fn rule(&self, tenant_id: &str, id: &str) -> StoreResult<Option<RuleRecord>> {
        Ok(sqlx::query_as::<_, RuleRecord>(&format!(
            "SELECT {RULE_COLUMNS} FROM rule WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// The module bytes of one rule.
    pub async fn rule_module_of(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT module FROM rule WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// Enables or disables a rule; false when it does not exist.
    pub async fn set_rule_enabled(
        &self,
        tenant_id: &str,
        id: &str,
        enabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let statement = sqlx::query(
            "UPDATE rule SET enabled = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(i64::from(enabled))
        .bind(now)
        .bind(tenant_id)
        .bind(id);
        self.change_one_row(tenant_id, Generation::Rules, statement)
            .await
    }

    /// Deletes a rule; false when it does not exist.
    pub async fn delete_rule(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let statement = sqlx::query("DELETE FROM rule WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id);
        self.change_one_row(tenant_id, Generation::Rules, statement)
            .await
    }
}
