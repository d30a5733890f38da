use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Paging, Params};
use crate::http::AppState;
use crate::service::paging;
use crate::service::roles::{
    NewRoleInput, Permission, PermissionsInput, RolePatch, RoleView, RolesInput,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(
            role_permissions,
            add_role_permissions,
            remove_role_permissions
        ))
        .routes(routes!(user_roles, assign_user_roles, remove_user_roles))
}

/// List roles, by name.
#[utoipa::path(get, path = "/roles", tag = "roles", params(Paging),
    responses((status = 200, body = [RoleView])), security(("bearer" = ["read:roles"])))]
async fn list_roles(
    caller: Caller,
    Params(p): Params<Paging>,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    caller.require("read:roles")?;
    let (offset, limit) = paging(p.page, p.per_page)?;
    Ok(Json(
        caller
            .admin()
            .list_roles(caller.tenant(), offset, limit)
            .await?,
    ))
}

/// Create a role.
#[utoipa::path(post, path = "/roles", tag = "roles", request_body = NewRoleInput,
    responses((status = 200, body = RoleView), (status = 400), (status = 409)), security(("bearer" = ["create:roles"])))]
async fn create_role(
    caller: Caller,
    Body(input): Body<NewRoleInput>,
) -> Result<Json<RoleView>, ApiError> {
    caller.require("create:roles")?;
    Ok(Json(
        caller.admin().create_role(caller.tenant(), input).await?,
    ))
}

/// Get a role.
#[utoipa::path(get, path = "/roles/{id}", tag = "roles", params(("id" = String, Path, description = "Role id")),
    responses((status = 200, body = RoleView), (status = 404)), security(("bearer" = ["read:roles"])))]
async fn get_role(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<RoleView>, ApiError> {
    caller.require("read:roles")?;
    Ok(Json(caller.admin().get_role(caller.tenant(), &id).await?))
}

/// Rename or re-describe a role.
#[utoipa::path(patch, path = "/roles/{id}", tag = "roles", params(("id" = String, Path, description = "Role id")),
    request_body = RolePatch, responses((status = 200, body = RoleView), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = ["update:roles"])))]
async fn update_role(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(patch): Body<RolePatch>,
) -> Result<Json<RoleView>, ApiError> {
    caller.require("update:roles")?;
    Ok(Json(
        caller
            .admin()
            .update_role(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// Delete a role with its permissions and assignments.
#[utoipa::path(delete, path = "/roles/{id}", tag = "roles", params(("id" = String, Path, description = "Role id")),
    responses((status = 204), (status = 404)), security(("bearer" = ["delete:roles"])))]
async fn delete_role(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:roles")?;
    caller.admin().delete_role(caller.tenant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A role's permissions.
#[utoipa::path(get, path = "/roles/{id}/permissions", tag = "roles", params(("id" = String, Path, description = "Role id")),
    responses((status = 200, body = [Permission]), (status = 404)), security(("bearer" = ["read:roles"])))]
async fn role_permissions(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<Permission>>, ApiError> {
    caller.require("read:roles")?;
    Ok(Json(
        caller
            .admin()
            .role_permissions(caller.tenant(), &id)
            .await?,
    ))
}

/// Add permissions (scopes of the tenant's APIs) to a role.
#[utoipa::path(post, path = "/roles/{id}/permissions", tag = "roles", params(("id" = String, Path, description = "Role id")),
    request_body = PermissionsInput, responses((status = 201), (status = 400), (status = 404)),
    security(("bearer" = ["update:roles"])))]
async fn add_role_permissions(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<PermissionsInput>,
) -> Result<StatusCode, ApiError> {
    caller.require("update:roles")?;
    caller
        .admin()
        .add_role_permissions(caller.tenant(), &id, input)
        .await?;
    Ok(StatusCode::CREATED)
}

/// Remove permissions from a role.
#[utoipa::path(delete, path = "/roles/{id}/permissions", tag = "roles", params(("id" = String, Path, description = "Role id")),
    request_body = PermissionsInput, responses((status = 204), (status = 400), (status = 404)),
    security(("bearer" = ["update:roles"])))]
async fn remove_role_permissions(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<PermissionsInput>,
) -> Result<StatusCode, ApiError> {
    caller.require("update:roles")?;
    caller
        .admin()
        .remove_role_permissions(caller.tenant(), &id, input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's roles.
#[utoipa::path(get, path = "/users/{id}/roles", tag = "roles", params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = [RoleView]), (status = 404)), security(("bearer" = ["read:users", "read:roles"])))]
async fn user_roles(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    caller.require("read:users")?;
    caller.require("read:roles")?;
    Ok(Json(caller.admin().user_roles(caller.tenant(), &id).await?))
}

/// Assign roles of this tenant to a user.
#[utoipa::path(post, path = "/users/{id}/roles", tag = "roles", params(("id" = String, Path, description = "User id")),
    request_body = RolesInput, responses((status = 204), (status = 400), (status = 404)),
    security(("bearer" = ["update:users", "read:roles"])))]
async fn assign_user_roles(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<RolesInput>,
) -> Result<StatusCode, ApiError> {
    caller.require("update:users")?;
    caller.require("read:roles")?;
    caller
        .admin()
        .assign_user_roles(caller.tenant(), &id, input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove roles from a user.
#[utoipa::path(delete, path = "/users/{id}/roles", tag = "roles", params(("id" = String, Path, description = "User id")),
    request_body = RolesInput, responses((status = 204), (status = 400), (status = 404)),
    security(("bearer" = ["update:users", "read:roles"])))]
async fn remove_user_roles(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<RolesInput>,
) -> Result<StatusCode, ApiError> {
    caller.require("update:users")?;
    caller.require("read:roles")?;
    caller
        .admin()
        .remove_user_roles(caller.tenant(), &id, input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
