use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Params};
use crate::http::AppState;
use crate::service::paging;
use crate::service::users::{NewUserInput, UserPatch, UserView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// Paging and the email filter.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    /// Page number, from 0.
    page: Option<i64>,
    /// Items per page, 1 to 100 (default 50).
    per_page: Option<i64>,
    /// Only the user with this email.
    email: Option<String>,
}

/// List users, oldest first.
#[utoipa::path(get, path = "/users", tag = "users", params(UserQuery),
    responses((status = 200, body = [UserView])), security(("bearer" = ["read:users"])))]
async fn list_users(
    caller: Caller,
    Params(q): Params<UserQuery>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    caller.require("read:users")?;
    let (offset, limit) = paging(q.page, q.per_page)?;
    Ok(Json(
        caller
            .admin()
            .list_users(caller.tenant(), q.email.as_deref(), offset, limit)
            .await?,
    ))
}

/// Create a user.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserInput,
    responses((status = 201, body = UserView), (status = 400), (status = 409)), security(("bearer" = ["create:users"])))]
async fn create_user(
    caller: Caller,
    Body(input): Body<NewUserInput>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require("create:users")?;
    Ok((
        StatusCode::CREATED,
        Json(
            caller
                .admin()
                .create_user_with(caller.tenant(), input)
                .await?,
        ),
    ))
}

/// Get a user.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_id")),
    responses((status = 200, body = UserView), (status = 404)), security(("bearer" = ["read:users"])))]
async fn get_user(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    caller.require("read:users")?;
    Ok(Json(caller.admin().get_user(caller.tenant(), &id).await?))
}

/// Update a user: profile, email, password, and metadata (merged at the first level; `null`
/// removes a key).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_id")),
    request_body = UserPatch, responses((status = 200, body = UserView), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = ["update:users"])))]
async fn update_user(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    caller.require("update:users")?;
    Ok(Json(
        caller
            .admin()
            .update_user(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// Delete a user with their sessions and tokens.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_id")),
    responses((status = 204), (status = 404)), security(("bearer" = ["delete:users"])))]
async fn delete_user(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:users")?;
    caller.admin().delete_user(caller.tenant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
