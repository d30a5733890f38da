//! Rules, their settings, their precompiled artifacts and their execution log.
//!
//! Every write to a tenant's rules or settings bumps `tenant.rules_generation` in the same
//! transaction: nodes keep rule lists in memory keyed by that generation (see `rules/`).

use sqlx::{Any, FromRow, Transaction};

use crate::domain::OnFailure;

use super::tenants::{Generation, bump_generation};
use super::{Store, StoreError, StoreResult, map_unique};
use crate::rules::execution::{ExecutionRecord, LogLine, Outcome, Trigger};

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
    /// The current version (1 at upload, +1 for every module change or rollback).
    pub version: i64,
    /// What a failure of this rule does to the login.
    pub on_failure: OnFailure,
}

/// One stored version of a rule's module.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct RuleVersionRecord {
    /// 1, 2, …
    pub version: i64,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    /// When it was made.
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

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

/// A precompiled module and its MAC (see `rules::modules`).
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    /// Hex SHA-256 of the wasm module it was compiled from.
    pub sha256: String,
    /// The engine that made it.
    pub fingerprint: String,
    /// HMAC over hash, fingerprint and bytes.
    pub mac: Vec<u8>,
    /// The serialized module.
    pub bytes: Vec<u8>,
}

/// A tenant's enabled rules and sealed settings, with the generation they were read at.
#[derive(Debug, Clone)]
pub struct RuleSetRows {
    /// `tenant.rules_generation` read before the rows.
    pub generation: i64,
    /// Enabled rules in pipeline order.
    pub rules: Vec<RuleRecord>,
    /// (key, sealed value) by key.
    pub configs: Vec<(String, Vec<u8>)>,
    /// The tenant's outbound allow-list.
    pub allowed_hosts: Vec<crate::domain::AllowedHost>,
}

#[derive(FromRow)]
struct ExecutionRow {
    id: String,
    rule_id: String,
    rule_name: String,
    protocol: String,
    outcome: String,
    duration_us: i64,
    fuel: i64,
    logs: String,
    created_at: i64,
    rule_version: i64,
    skipped: i64,
}

impl TryFrom<ExecutionRow> for ExecutionRecord {
    type Error = StoreError;

    fn try_from(r: ExecutionRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("rule_execution {}: {what}", r.id));
        Ok(ExecutionRecord {
            trigger: Trigger::parse(&r.protocol)
                .ok_or_else(|| corrupt(&format!("unknown protocol {:?}", r.protocol)))?,
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| corrupt(&format!("unknown outcome {:?}", r.outcome)))?,
            logs: serde_json::from_str::<Vec<LogLine>>(&r.logs)
                .map_err(|e| corrupt(&format!("logs are not a JSON list of lines: {e}")))?,
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            duration_us: r.duration_us,
            fuel: r.fuel,
            created_at: r.created_at,
            rule_version: r.rule_version,
            skipped: r.skipped != 0,
        })
    }
}

const RULE_COLUMNS: &str = "id, tenant_id, name, rule_order, enabled, sha256, size, created_at, updated_at, \
    version, on_failure";
const EXECUTION_COLUMNS: &str = "id, tenant_id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at, \
    rule_version, skipped";

async fn put_artifact(
    tx: &mut Transaction<'_, Any>,
    a: &ArtifactRecord,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rule_artifact (sha256, fingerprint, mac, artifact, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256, fingerprint) DO UPDATE SET mac = $3, artifact = $4, created_at = $5",
    )
    .bind(&a.sha256)
    .bind(&a.fingerprint)
    .bind(&a.mac)
    .bind(&a.bytes)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
        .map_err(map_unique);
        if let Err(StoreError::Conflict) = inserted {
            tx.rollback().await?;
            return Ok(Err(RuleWriteError::Conflict));
        }
        inserted?;
        insert_version(&mut tx, r, 1, module).await?;
        put_artifact(&mut tx, artifact, r.created_at).await?;
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
                put_artifact(&mut tx, artifact, r.updated_at).await?;
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
        .map_err(map_unique)?;
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

    /// What a login needs of a tenant's rules: the generation, then the enabled rules and the
    /// sealed settings. Read in that order, the rows are at least as new as the generation.
    pub async fn rule_set(&self, tenant_id: &str) -> StoreResult<RuleSetRows> {
        let row: Option<(i64, super::JsonText<Vec<crate::domain::AllowedHost>>)> =
            sqlx::query_as("SELECT rules_generation, allowed_hosts FROM tenant WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.reader)
                .await?;
        let (generation, allowed_hosts) = row.map(|(g, h)| (g, h.0)).unwrap_or((-1, Vec::new()));
        Ok(RuleSetRows {
            generation,
            allowed_hosts,
            rules: self.rules(tenant_id, true).await?,
            configs: self.rule_configs(tenant_id).await?,
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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE rule SET enabled = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(i64::from(enabled))
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a rule; false when it does not exist.
    pub async fn delete_rule(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM rule WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The artifact of a module for an engine fingerprint.
    pub async fn rule_artifact(
        &self,
        sha256: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<ArtifactRecord>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT mac, artifact FROM rule_artifact WHERE sha256 = $1 AND fingerprint = $2",
        )
        .bind(sha256)
        .bind(fingerprint)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(mac, bytes)| ArtifactRecord {
            sha256: sha256.to_string(),
            fingerprint: fingerprint.to_string(),
            mac,
            bytes,
        }))
    }

    /// Stores (or replaces) an artifact.
    pub async fn put_rule_artifact(&self, a: &ArtifactRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        put_artifact(&mut tx, a, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that these modules were in use on a node at `now`.
    pub async fn touch_rule_artifacts(
        &self,
        fingerprint: &str,
        shas: &[String],
        now: i64,
    ) -> StoreResult<()> {
        for chunk in shas.chunks(100) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE rule_artifact SET used_at = $1 WHERE fingerprint = $2 AND sha256 IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(now).bind(fingerprint);
            for sha in chunk {
                q = q.bind(sha);
            }
            q.execute(&self.writer).await?;
        }
        Ok(())
    }

    /// Hashes of the artifacts for `fingerprint`, most recently used first.
    pub async fn recent_rule_artifacts(
        &self,
        fingerprint: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM rule_artifact WHERE fingerprint = $1 AND sha256 NOT LIKE 'runtime:%' \
             ORDER BY used_at DESC LIMIT $2",
        )
        .bind(fingerprint)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Drops artifacts of modules no rule uses any more, and host runtimes (`runtime:…`)
    /// other than `runtime_key` for `fingerprint` (what this version of the server uses).
    pub async fn prune_rule_artifacts(
        &self,
        runtime_key: &str,
        fingerprint: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM rule_artifact WHERE \
             (sha256 NOT LIKE 'runtime:%' AND sha256 NOT IN (SELECT sha256 FROM rule)) \
             OR (sha256 LIKE 'runtime:%' AND (sha256 <> $1 OR fingerprint <> $2))",
        )
        .bind(runtime_key)
        .bind(fingerprint)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM rule_config WHERE tenant_id = $1 AND config_key = $2")
            .bind(tenant_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        tx.commit().await?;
        Ok(true)
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

    /// Records executions of any tenants, in one transaction of multi-row `INSERT`s.
    pub async fn insert_executions(&self, rows: &[(String, ExecutionRecord)]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        // SQLite looks a numbered parameter (`$N`) up by walking the statement's parameter
        // list, which makes binding quadratic in the parameters of a statement; plain `?`
        // placeholders bind in order. PostgreSQL needs `$N`.
        let sqlite = self.backend == super::Backend::Sqlite;
        for chunk in rows.chunks(50) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=12)
                        .map(|c| {
                            if sqlite {
                                "?".to_string()
                            } else {
                                format!("${}", i * 12 + c)
                            }
                        })
                        .collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO rule_execution ({EXECUTION_COLUMNS}) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (tenant_id, r) in chunk {
                q = q
                    .bind(&r.id)
                    .bind(tenant_id)
                    .bind(&r.rule_id)
                    .bind(&r.rule_name)
                    .bind(r.trigger.label())
                    .bind(r.outcome.label())
                    .bind(r.duration_us)
                    .bind(r.fuel)
                    .bind(serde_json::to_string(&r.logs).expect("log lines serialize"))
                    .bind(r.created_at)
                    .bind(r.rule_version)
                    .bind(i64::from(r.skipped));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Executions newest first, optionally of one rule and/or one outcome.
    pub async fn list_executions(
        &self,
        tenant_id: &str,
        rule_id: Option<&str>,
        outcome: Option<Outcome>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<ExecutionRecord>> {
        let mut filter = String::new();
        let mut args: Vec<&str> = Vec::new();
        if let Some(r) = rule_id {
            args.push(r);
            filter.push_str(&format!(" AND rule_id = ${}", args.len() + 3));
        }
        if let Some(o) = outcome {
            args.push(o.label());
            filter.push_str(&format!(" AND outcome = ${}", args.len() + 3));
        }
        let sql = format!(
            "SELECT id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at, rule_version, skipped FROM rule_execution \
             WHERE tenant_id = $1{filter} ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let mut q = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(tenant_id)
            .bind(limit)
            .bind(offset);
        for a in args {
            q = q.bind(a);
        }
        q.fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(ExecutionRecord::try_from)
            .collect()
    }

    /// Drops executions older than `before` and keeps at most `keep` per tenant.
    pub async fn prune_executions(&self, before: i64, keep: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM rule_execution WHERE created_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "DELETE FROM rule_execution WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY tenant_id ORDER BY created_at DESC, id) AS n FROM rule_execution) ranked WHERE n > $1)",
        )
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
