//! Roles and RBAC (Auth0 shapes): roles, their permissions on APIs, and users' roles.

use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, internal};
use crate::domain::{DisplayName, Tenant};
use crate::store::{AssignError, RoleRecord, StoreError};

/// A role as the Management API shows it.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    /// `rol_...` id.
    pub id: String,
    /// Name, unique in the tenant; what rules see in `context.authorization.roles`.
    pub name: String,
    /// Free text.
    pub description: String,
}

impl From<RoleRecord> for RoleView {
    fn from(r: RoleRecord) -> Self {
        RoleView {
            id: r.id,
            name: r.name,
            description: r.description,
        }
    }
}

/// What creating a role takes.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleInput {
    /// Name, unique in the tenant.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// What updating a role may change.
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// One permission, as stored and as shown.
pub use crate::store::PermissionRecord as Permission;

/// `{"permissions": [...]}`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsInput {
    /// 1 to 100 permissions.
    pub permissions: Vec<Permission>,
}

/// `{"roles": [role ids]}`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesInput {
    /// 1 to 100 role ids.
    pub roles: Vec<String>,
}

const MAX_PER_CALL: usize = 100;

fn check_count(what: &str, n: usize) -> Result<(), AdminError> {
    if (1..=MAX_PER_CALL).contains(&n) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} must hold 1 to {MAX_PER_CALL} entries, not {n}"
        )))
    }
}

fn check_description(d: &str) -> Result<String, AdminError> {
    if d.len() > 140 || d.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "description must be at most 140 characters without control characters".into(),
        ));
    }
    Ok(d.to_string())
}

impl Admin {
    /// Creates a role; a taken name is a conflict.
    pub async fn create_role(
        &self,
        tenant: &Tenant,
        input: NewRoleInput,
    ) -> Result<RoleView, AdminError> {
        let record = RoleRecord {
            id: format!("rol_{}", crate::crypto::random_token(16)),
            tenant_id: tenant.id.clone(),
            name: DisplayName::parse("role name", &input.name)?
                .as_str()
                .to_string(),
            description: check_description(&input.description)?,
            created_at: self.clock.now(),
        };
        match self.store.insert_role(&record).await {
            Ok(()) => Ok(record.into()),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
                "a role named {:?} already exists",
                record.name
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    /// Roles of the tenant, by name.
    pub async fn list_roles(
        &self,
        tenant: &Tenant,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<RoleView>, AdminError> {
        Ok(self
            .store
            .roles(&tenant.id, offset, limit)
            .await
            .map_err(internal)?
            .into_iter()
            .map(RoleView::from)
            .collect())
    }

    async fn role_record(&self, tenant: &Tenant, id: &str) -> Result<RoleRecord, AdminError> {
        self.store
            .role(&tenant.id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("role {id:?} does not exist")))
    }

    pub async fn get_role(&self, tenant: &Tenant, id: &str) -> Result<RoleView, AdminError> {
        Ok(self.role_record(tenant, id).await?.into())
    }

    /// Renames or re-describes a role.
    pub async fn update_role(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: RolePatch,
    ) -> Result<RoleView, AdminError> {
        let mut record = self.role_record(tenant, id).await?;
        if let Some(name) = &patch.name {
            record.name = DisplayName::parse("role name", name)?.as_str().to_string();
        }
        if let Some(d) = &patch.description {
            record.description = check_description(d)?;
        }
        match self.store.update_role(&record).await {
            Ok(true) => Ok(record.into()),
            Ok(false) => Err(AdminError::NotFound(format!("role {id:?} does not exist"))),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
                "a role named {:?} already exists",
                record.name
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    /// Deletes a role; its users lose it at their next login or refresh.
    pub async fn delete_role(&self, tenant: &Tenant, id: &str) -> Result<(), AdminError> {
        if !self
            .store
            .delete_role(&tenant.id, id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("role {id:?} does not exist")));
        }
        Ok(())
    }

    pub async fn role_permissions(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Vec<Permission>, AdminError> {
        self.role_record(tenant, id).await?;
        self.store
            .role_permissions(&tenant.id, id)
            .await
            .map_err(internal)
    }

    /// Checks that every permission names an API of the tenant and a scope it defines.
    async fn check_permissions(
        &self,
        tenant: &Tenant,
        permissions: &[Permission],
    ) -> Result<(), AdminError> {
        check_count("permissions", permissions.len())?;
        for p in permissions {
            let Some(api) = self
                .store
                .resource_server_by_identifier(&tenant.id, &p.resource_server_identifier)
                .await
                .map_err(internal)?
            else {
                return Err(AdminError::NotFound(format!(
                    "no API with identifier {:?}",
                    p.resource_server_identifier
                )));
            };
            if !api.scopes().iter().any(|s| s.value == p.permission_name) {
                return Err(AdminError::Invalid(format!(
                    "API {:?} does not define the permission {:?}",
                    p.resource_server_identifier, p.permission_name
                )));
            }
        }
        Ok(())
    }

    /// Adds permissions to a role, all or none.
    pub async fn add_role_permissions(
        &self,
        tenant: &Tenant,
        id: &str,
        input: PermissionsInput,
    ) -> Result<(), AdminError> {
        self.role_record(tenant, id).await?;
        self.check_permissions(tenant, &input.permissions).await?;
        if !self
            .store
            .add_role_permissions(&tenant.id, id, &input.permissions, self.clock.now())
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("role {id:?} does not exist")));
        }
        Ok(())
    }

    /// Removes permissions from a role.
    pub async fn remove_role_permissions(
        &self,
        tenant: &Tenant,
        id: &str,
        input: PermissionsInput,
    ) -> Result<(), AdminError> {
        self.role_record(tenant, id).await?;
        check_count("permissions", input.permissions.len())?;
        self.store
            .remove_role_permissions(&tenant.id, id, &input.permissions)
            .await
            .map_err(internal)
    }

    pub async fn user_roles(
        &self,
        tenant: &Tenant,
        user_id: &str,
    ) -> Result<Vec<RoleView>, AdminError> {
        self.get_user(tenant, user_id).await?;
        Ok(self
            .store
            .user_roles(&tenant.id, user_id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(RoleView::from)
            .collect())
    }

    /// Assigns roles of this tenant to a user, all or none.
    pub async fn assign_user_roles(
        &self,
        tenant: &Tenant,
        user_id: &str,
        input: RolesInput,
    ) -> Result<(), AdminError> {
        check_count("roles", input.roles.len())?;
        self.get_user(tenant, user_id).await?;
        match self
            .store
            .assign_user_roles(&tenant.id, user_id, &input.roles, self.clock.now())
            .await
            .map_err(internal)?
        {
            Ok(()) => Ok(()),
            Err(AssignError::UnknownRole(id)) => {
                Err(AdminError::NotFound(format!("role {id:?} does not exist")))
            }
            Err(AssignError::UnknownUser) => Err(AdminError::NotFound(format!(
                "user {user_id:?} does not exist"
            ))),
        }
    }

    /// Removes roles from a user.
    pub async fn remove_user_roles(
        &self,
        tenant: &Tenant,
        user_id: &str,
        input: RolesInput,
    ) -> Result<(), AdminError> {
        check_count("roles", input.roles.len())?;
        self.get_user(tenant, user_id).await?;
        self.store
            .remove_user_roles(&tenant.id, user_id, &input.roles)
            .await
            .map_err(internal)
    }
}
