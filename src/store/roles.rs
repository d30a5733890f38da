//! Roles, their API permissions, and which users hold them.

use sqlx::FromRow;

use super::{OrConflict, Store, StoreResult};

/// A role as stored.
#[derive(Debug, Clone, FromRow)]
pub struct RoleRecord {
    /// `rol_...` id.
    pub id: String,
    pub tenant_id: String,
    /// Name, unique in the tenant.
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

/// One permission: a scope of one API. The Management API's shape too (Auth0's).
#[derive(
    Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
#[schema(as = Permission)]
pub struct PermissionRecord {
    /// The API's identifier (audience).
    pub resource_server_identifier: String,
    /// One of the scopes the API defines.
    pub permission_name: String,
}

/// Why assigning roles wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignError {
    /// This role id is not a role of the tenant.
    UnknownRole(String),
    /// The user does not exist (deleted meanwhile).
    UnknownUser,
}

const ROLE_COLUMNS: &str = "id, tenant_id, name, description, created_at";

impl Store {
    /// Inserts a role; a taken name is a conflict.
    pub async fn insert_role(&self, r: &RoleRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO role (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(r.created_at)
        .execute(&self.writer)
        .await
        .or_conflict()?;
        Ok(())
    }

    /// Roles of a tenant, by name.
    pub async fn roles(
        &self,
        tenant_id: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<RoleRecord>> {
        Ok(sqlx::query_as::<_, RoleRecord>(&format!(
            "SELECT {ROLE_COLUMNS} FROM role WHERE tenant_id = $1 ORDER BY name LIMIT $2 OFFSET $3"
        ))
        .bind(tenant_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?)
    }

    /// One role of the tenant; other tenants' roles are invisible.
    pub async fn role(&self, tenant_id: &str, id: &str) -> StoreResult<Option<RoleRecord>> {
        Ok(sqlx::query_as::<_, RoleRecord>(&format!(
            "SELECT {ROLE_COLUMNS} FROM role WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Renames or re-describes a role; false when it does not exist; a taken name conflicts.
    pub async fn update_role(&self, r: &RoleRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE role SET name = $1, description = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&r.name)
        .bind(&r.description)
        .bind(&r.tenant_id)
        .bind(&r.id)
        .execute(&self.writer)
        .await
        .or_conflict()?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a role with its permissions and assignments.
    pub async fn delete_role(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        for table in ["role_permission", "user_role"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND role_id = $2"
            ))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM role WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn role_permissions(
        &self,
        tenant_id: &str,
        role_id: &str,
    ) -> StoreResult<Vec<PermissionRecord>> {
        Ok(sqlx::query_as::<_, PermissionRecord>(
            "SELECT resource_server_identifier, permission_name FROM role_permission \
             WHERE tenant_id = $1 AND role_id = $2 ORDER BY resource_server_identifier, permission_name",
        )
        .bind(tenant_id)
        .bind(role_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Adds permissions to a role (ones it has already are kept), all or none; false when the
    /// role does not exist.
    pub async fn add_role_permissions(
        &self,
        tenant_id: &str,
        role_id: &str,
        permissions: &[PermissionRecord],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Taking the role's row first: a concurrent delete either ran before (nothing to add
        // to) or waits for this transaction.
        let exists = sqlx::query("UPDATE role SET name = name WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(role_id)
            .execute(&mut *tx)
            .await?;
        if exists.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for p in permissions {
            sqlx::query(
                "INSERT INTO role_permission (tenant_id, role_id, resource_server_identifier, permission_name, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(tenant_id)
            .bind(role_id)
            .bind(&p.resource_server_identifier)
            .bind(&p.permission_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Drops every role's permissions for scopes an API no longer defines.
    pub async fn drop_permissions_of_scopes(
        &self,
        tenant_id: &str,
        api_identifier: &str,
        scopes: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for s in scopes {
            sqlx::query(
                "DELETE FROM role_permission WHERE tenant_id = $1 AND resource_server_identifier = $2 AND permission_name = $3",
            )
            .bind(tenant_id)
            .bind(api_identifier)
            .bind(s)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes permissions from a role.
    pub async fn remove_role_permissions(
        &self,
        tenant_id: &str,
        role_id: &str,
        permissions: &[PermissionRecord],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for p in permissions {
            sqlx::query(
                "DELETE FROM role_permission WHERE tenant_id = $1 AND role_id = $2 \
                 AND resource_server_identifier = $3 AND permission_name = $4",
            )
            .bind(tenant_id)
            .bind(role_id)
            .bind(&p.resource_server_identifier)
            .bind(&p.permission_name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The roles of a user, by name.
    pub async fn user_roles(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<RoleRecord>> {
        Ok(sqlx::query_as::<_, RoleRecord>(
            "SELECT r.id, r.tenant_id, r.name, r.description, r.created_at FROM user_role ur \
             JOIN role r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2 ORDER BY r.name",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The names of a user's roles (what rules see as `context.authorization.roles`).
    pub async fn user_role_names(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT r.name FROM user_role ur JOIN role r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2 ORDER BY r.name",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The permissions a user's roles give for one API.
    pub async fn user_permissions(
        &self,
        tenant_id: &str,
        user_id: &str,
        api_identifier: &str,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT rp.permission_name FROM user_role ur \
             JOIN role_permission rp ON rp.role_id = ur.role_id AND rp.tenant_id = ur.tenant_id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2 AND rp.resource_server_identifier = $3 \
             ORDER BY rp.permission_name",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(api_identifier)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Assigns roles to a user (ones held already are kept): every id must be a role of the
    /// tenant, or nothing is written.
    pub async fn assign_user_roles(
        &self,
        tenant_id: &str,
        user_id: &str,
        role_ids: &[String],
        now: i64,
    ) -> StoreResult<Result<(), AssignError>> {
        let mut tx = self.writer.begin().await?;
        for id in role_ids {
            let inserted = sqlx::query(
                "INSERT INTO user_role (tenant_id, user_id, role_id, created_at) \
                 SELECT $1, $2, id, $4 FROM role WHERE tenant_id = $1 AND id = $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await;
            let inserted = match inserted {
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    tx.rollback().await?;
                    return Ok(Err(AssignError::UnknownUser));
                }
                other => other?,
            };
            if inserted.rows_affected() == 0 {
                let known: Option<String> =
                    sqlx::query_scalar("SELECT id FROM role WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant_id)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    tx.rollback().await?;
                    return Ok(Err(AssignError::UnknownRole(id.clone())));
                }
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Removes roles from a user.
    pub async fn remove_user_roles(
        &self,
        tenant_id: &str,
        user_id: &str,
        role_ids: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for id in role_ids {
            sqlx::query(
                "DELETE FROM user_role WHERE tenant_id = $1 AND user_id = $2 AND role_id = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
