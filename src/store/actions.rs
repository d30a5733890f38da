//! Actions (SPEC §15): an action's draft and secrets, its immutable versions, and the bindings
//! of deployed actions to triggers.
//!
//! Every write that changes what logins run — a deploy or rollback, the bindings, the secrets,
//! a deletion — bumps `tenant.rules_generation` in its transaction, so every node reloads its
//! rule set (rules and actions together) at its next login. Editing a draft changes nothing
//! live and bumps nothing.

use sqlx::FromRow;

use super::artifacts::{ArtifactRecord, put_artifact};
use super::tenants::{Generation, bump_generation};
use super::{JsonText, OrConflict, Store, StoreError, StoreResult};
use crate::domain::TriggerId;
use crate::domain::action::{Dependency, SecretName};

/// An action and its draft (the secrets' values are read apart, sealed).
#[derive(Debug, Clone, FromRow)]
pub struct ActionRecord {
    pub id: String,
    pub tenant_id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// The trigger it is written for.
    pub trigger_id: TriggerId,
    /// Auth0's trigger version, as given.
    pub trigger_version: String,
    /// Auth0's runtime name, as given.
    pub runtime: String,
    /// The draft's code.
    pub code: String,
    /// The draft's npm dependencies.
    pub dependencies: JsonText<Vec<Dependency>>,
    pub secret_names: JsonText<Vec<SecretName>>,
    /// The live version's number, if deployed.
    pub deployed_version: Option<i64>,
    /// Versions made so far.
    pub latest_version: i64,
    /// Unix time.
    pub created_at: i64,
    /// Unix time.
    pub updated_at: i64,
}

/// One immutable version of an action.
#[derive(Debug, Clone, FromRow)]
pub struct ActionVersionRecord {
    pub id: String,
    pub tenant_id: String,
    pub action_id: String,
    /// 1, 2, …
    pub number: i64,
    pub code: String,
    /// Hex SHA-256 of the module bytes (the action mark, then the code).
    pub sha256: String,
    pub dependencies: JsonText<Vec<Dependency>>,
    /// Auth0's runtime name.
    pub runtime: String,
    /// Unix time.
    pub created_at: i64,
}

/// An action bound to a trigger, in its place.
#[derive(Debug, Clone, FromRow)]
pub struct BindingRecord {
    pub id: String,
    pub trigger_id: TriggerId,
    /// 0, 1, … (execution order).
    pub position: i64,
    pub action_id: String,
    pub action_name: String,
    /// The name shown for the binding.
    pub display_name: String,
    /// Unix time.
    pub created_at: i64,
}

/// What a login needs of one bound action: its live version and sealed secrets.
#[derive(Debug, Clone, FromRow)]
pub struct BoundActionRow {
    pub trigger_id: TriggerId,
    pub action_id: String,
    pub action_name: String,
    /// The live version's id.
    pub version_id: String,
    pub version_number: i64,
    /// Its module hash.
    pub sha256: String,
    /// Sealed JSON `{name: value}`.
    pub secrets: Option<Vec<u8>>,
}

/// Why an action write wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionWriteError {
    /// The name is taken.
    Conflict,
    /// The tenant already has this many actions.
    TooMany(i64),
    /// The action is bound to a trigger (delete it with force, or unbind it first).
    Bound,
}

const ACTION_COLUMNS: &str = "id, tenant_id, name, trigger_id, trigger_version, runtime, code, dependencies, \
    secret_names, deployed_version, latest_version, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "id, tenant_id, action_id, number, code, sha256, dependencies, runtime, created_at";

impl Store {
    /// Inserts an action (a draft, not deployed) unless the tenant already has `max_actions`.
    pub async fn insert_action(
        &self,
        a: &ActionRecord,
        secrets: Option<&[u8]>,
        max_actions: i64,
    ) -> StoreResult<Result<(), ActionWriteError>> {
        let mut tx = self.writer.begin().await?;
        // Taken first, as for rules: concurrent creations cannot both pass the count.
        bump_generation(&mut tx, &a.tenant_id, Generation::Rules).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM action WHERE tenant_id = $1")
            .bind(&a.tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max_actions {
            tx.rollback().await?;
            return Ok(Err(ActionWriteError::TooMany(max_actions)));
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO action ({ACTION_COLUMNS}, secrets) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.name)
        .bind(a.trigger_id.as_str())
        .bind(&a.trigger_version)
        .bind(&a.runtime)
        .bind(&a.code)
        .bind(&a.dependencies)
        .bind(&a.secret_names)
        .bind(a.deployed_version)
        .bind(a.latest_version)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(secrets)
        .execute(&mut *tx)
        .await
        .or_conflict();
        match inserted {
            Err(StoreError::Conflict) => {
                tx.rollback().await?;
                return Ok(Err(ActionWriteError::Conflict));
            }
            other => {
                other?;
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Changes an action's draft (name, code, dependencies, runtime) and, when `secrets` is
    /// given, its secrets — which are live, so that bumps the rules generation. False when the
    /// action does not exist.
    pub async fn update_action(
        &self,
        a: &ActionRecord,
        secrets: Option<Option<&[u8]>>,
    ) -> StoreResult<Result<bool, ActionWriteError>> {
        let mut tx = self.writer.begin().await?;
        // A rename is seen in the execution log; secrets are used by logins.
        bump_generation(&mut tx, &a.tenant_id, Generation::Rules).await?;
        let done = match secrets {
            Some(sealed) => sqlx::query(
                "UPDATE action SET name = $1, code = $2, dependencies = $3, runtime = $4, secret_names = $5, \
                 updated_at = $6, secrets = $7 WHERE tenant_id = $8 AND id = $9",
            )
            .bind(&a.name)
            .bind(&a.code)
            .bind(&a.dependencies)
            .bind(&a.runtime)
            .bind(&a.secret_names)
            .bind(a.updated_at)
            .bind(sealed)
            .bind(&a.tenant_id)
            .bind(&a.id)
            .execute(&mut *tx)
            .await,
            None => sqlx::query(
                "UPDATE action SET name = $1, code = $2, dependencies = $3, runtime = $4, secret_names = $5, \
                 updated_at = $6 WHERE tenant_id = $7 AND id = $8",
            )
            .bind(&a.name)
            .bind(&a.code)
            .bind(&a.dependencies)
            .bind(&a.runtime)
            .bind(&a.secret_names)
            .bind(a.updated_at)
            .bind(&a.tenant_id)
            .bind(&a.id)
            .execute(&mut *tx)
            .await,
        }
        .or_conflict();
        let done = match done {
            Err(StoreError::Conflict) => {
                tx.rollback().await?;
                return Ok(Err(ActionWriteError::Conflict));
            }
            other => other?,
        };
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Ok(false));
        }
        tx.commit().await?;
        Ok(Ok(true))
    }

    /// One action of a tenant.
    pub async fn action(&self, tenant_id: &str, id: &str) -> StoreResult<Option<ActionRecord>> {
        Ok(sqlx::query_as::<_, ActionRecord>(&format!(
            "SELECT {ACTION_COLUMNS} FROM action WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// The actions of a tenant by name, optionally only those of one trigger.
    pub async fn actions(
        &self,
        tenant_id: &str,
        trigger: Option<TriggerId>,
    ) -> StoreResult<Vec<ActionRecord>> {
        let filter = if trigger.is_some() {
            "AND trigger_id = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM action WHERE tenant_id = $1 {filter} ORDER BY name"
        );
        let mut q = sqlx::query_as::<_, ActionRecord>(&sql).bind(tenant_id);
        if let Some(t) = trigger {
            q = q.bind(t.as_str());
        }
        Ok(q.fetch_all(&self.reader).await?)
    }

    /// An action's sealed secrets.
    pub async fn action_secrets(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT secrets FROM action WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.flatten())
    }

    /// Deletes an action (its versions and bindings with it). A bound action is refused
    /// unless `force`. False when it does not exist.
    pub async fn delete_action(
        &self,
        tenant_id: &str,
        id: &str,
        force: bool,
    ) -> StoreResult<Result<bool, ActionWriteError>> {
        let mut tx = self.writer.begin().await?;
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        let bound: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM action_binding WHERE tenant_id = $1 AND action_id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if bound > 0 && !force {
            tx.rollback().await?;
            return Ok(Err(ActionWriteError::Bound));
        }
        for table in ["action_binding", "action_version"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND action_id = $2"
            ))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM action WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Ok(false));
        }
        // What the remaining bindings' positions skip over is harmless: order is what counts.
        tx.commit().await?;
        Ok(Ok(true))
    }

    /// Makes `version` (numbered here) the action's live version, with its compiled artifact,
    /// in one transaction; versions beyond the newest `keep_versions` are pruned, never the
    /// live one. The stored version, or `None` when the action does not exist.
    pub async fn deploy_action(
        &self,
        version: &ActionVersionRecord,
        artifact: &ArtifactRecord,
        keep_versions: i64,
    ) -> StoreResult<Option<ActionVersionRecord>> {
        let mut tx = self.writer.begin().await?;
        bump_generation(&mut tx, &version.tenant_id, Generation::Rules).await?;
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT latest_version FROM action WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&version.tenant_id)
        .bind(&version.action_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(latest) = latest else {
            tx.rollback().await?;
            return Ok(None);
        };
        let stored = ActionVersionRecord {
            number: latest + 1,
            ..version.clone()
        };
        put_artifact(&mut tx, artifact, stored.created_at).await?;
        sqlx::query(&format!(
            "INSERT INTO action_version ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&stored.id)
        .bind(&stored.tenant_id)
        .bind(&stored.action_id)
        .bind(stored.number)
        .bind(&stored.code)
        .bind(&stored.sha256)
        .bind(&stored.dependencies)
        .bind(&stored.runtime)
        .bind(stored.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE action SET deployed_version = $1, latest_version = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(stored.number)
        .bind(stored.created_at)
        .bind(&stored.tenant_id)
        .bind(&stored.action_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM action_version WHERE tenant_id = $1 AND action_id = $2 AND number <= $3",
        )
        .bind(&stored.tenant_id)
        .bind(&stored.action_id)
        .bind(stored.number - keep_versions.max(1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// An action's versions, newest first.
    pub async fn action_versions(
        &self,
        tenant_id: &str,
        action_id: &str,
    ) -> StoreResult<Vec<ActionVersionRecord>> {
        Ok(sqlx::query_as::<_, ActionVersionRecord>(&format!(
            "SELECT {VERSION_COLUMNS} FROM action_version WHERE tenant_id = $1 AND action_id = $2 ORDER BY number DESC"
        ))
        .bind(tenant_id)
        .bind(action_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// One version of an action, by id or by number.
    pub async fn action_version(
        &self,
        tenant_id: &str,
        action_id: &str,
        version: &str,
    ) -> StoreResult<Option<ActionVersionRecord>> {
        let number: i64 = version.parse().unwrap_or(-1);
        Ok(sqlx::query_as::<_, ActionVersionRecord>(&format!(
            "SELECT {VERSION_COLUMNS} FROM action_version WHERE tenant_id = $1 AND action_id = $2 \
             AND (id = $3 OR number = $4)"
        ))
        .bind(tenant_id)
        .bind(action_id)
        .bind(version)
        .bind(number)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// The code of one version (to compile it again when its artifact is missing).
    pub async fn action_version_code(
        &self,
        tenant_id: &str,
        version_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT code FROM action_version WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(version_id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// The bindings of a trigger, in execution order.
    pub async fn bindings(
        &self,
        tenant_id: &str,
        trigger: TriggerId,
    ) -> StoreResult<Vec<BindingRecord>> {
        Ok(sqlx::query_as::<_, BindingRecord>(
            "SELECT b.id, b.trigger_id, b.position, b.action_id, a.name AS action_name, b.display_name, b.created_at \
             FROM action_binding b JOIN action a ON a.id = b.action_id AND a.tenant_id = b.tenant_id \
             WHERE b.tenant_id = $1 AND b.trigger_id = $2 ORDER BY b.position",
        )
        .bind(tenant_id)
        .bind(trigger.as_str())
        .fetch_all(&self.reader)
        .await?)
    }

    /// Replaces a trigger's bindings with `bindings` (`(binding id, action id, display name)`,
    /// in order), all or nothing. Actions that are not deployed are refused by the caller; one
    /// that is not (or no longer) this tenant's deployed action binds nothing and the whole
    /// change is dropped: `false`.
    pub async fn set_bindings(
        &self,
        tenant_id: &str,
        trigger: TriggerId,
        bindings: &[(String, String, String)],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        bump_generation(&mut tx, tenant_id, Generation::Rules).await?;
        sqlx::query("DELETE FROM action_binding WHERE tenant_id = $1 AND trigger_id = $2")
            .bind(tenant_id)
            .bind(trigger.as_str())
            .execute(&mut *tx)
            .await?;
        for (position, (id, action_id, display_name)) in bindings.iter().enumerate() {
            let inserted = sqlx::query(
                "INSERT INTO action_binding (id, tenant_id, trigger_id, position, action_id, display_name, created_at) \
                 SELECT $1, $2, $3, $4, id, $6, $7 FROM action \
                 WHERE tenant_id = $2 AND id = $5 AND trigger_id = $3 AND deployed_version IS NOT NULL",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(trigger.as_str())
            .bind(position as i64)
            .bind(action_id)
            .bind(display_name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != 1 {
                // Dropping the transaction rolls everything back.
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The live version and sealed secrets of every bound action, per trigger in order.
    pub async fn bound_actions(&self, tenant_id: &str) -> StoreResult<Vec<BoundActionRow>> {
        Ok(sqlx::query_as::<_, BoundActionRow>(
            "SELECT b.trigger_id, a.id AS action_id, a.name AS action_name, v.id AS version_id, \
             v.number AS version_number, v.sha256, a.secrets \
             FROM action_binding b JOIN action a ON a.id = b.action_id AND a.tenant_id = b.tenant_id \
             JOIN action_version v ON v.action_id = a.id AND v.tenant_id = a.tenant_id \
             AND v.number = a.deployed_version \
             WHERE b.tenant_id = $1 ORDER BY b.trigger_id, b.position",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }
}
