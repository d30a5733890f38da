use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller};
use crate::http::AppState;
use crate::service::apis::{ApiPatch, ApiView, NewApiInput};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apis, create_api))
        .routes(routes!(get_api, update_api, delete_api))
}

/// List APIs, the built-in Management API first.
#[utoipa::path(get, path = "/resource-servers", tag = "resource-servers",
    responses((status = 200, body = [ApiView])), security(("bearer" = ["read:resource_servers"])))]
async fn list_apis(caller: Caller) -> Result<Json<Vec<ApiView>>, ApiError> {
    caller.require("read:resource_servers")?;
    Ok(Json(caller.admin().list_apis(caller.tenant()).await?))
}

/// Register an API.
#[utoipa::path(post, path = "/resource-servers", tag = "resource-servers", request_body = NewApiInput,
    responses((status = 201, body = ApiView), (status = 400), (status = 409)), security(("bearer" = ["create:resource_servers"])))]
async fn create_api(
    caller: Caller,
    Body(input): Body<NewApiInput>,
) -> Result<(StatusCode, Json<ApiView>), ApiError> {
    caller.require("create:resource_servers")?;
    Ok((
        StatusCode::CREATED,
        Json(
            caller
                .admin()
                .create_api_with(caller.tenant(), input)
                .await?,
        ),
    ))
}

/// Get an API (`system` is the Management API).
#[utoipa::path(get, path = "/resource-servers/{id}", tag = "resource-servers", params(("id" = String, Path, description = "API id")),
    responses((status = 200, body = ApiView), (status = 404)), security(("bearer" = ["read:resource_servers"])))]
async fn get_api(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ApiView>, ApiError> {
    caller.require("read:resource_servers")?;
    Ok(Json(caller.admin().get_api(caller.tenant(), &id).await?))
}

/// Rename an API or replace its scopes.
#[utoipa::path(patch, path = "/resource-servers/{id}", tag = "resource-servers", params(("id" = String, Path, description = "API id")),
    request_body = ApiPatch, responses((status = 200, body = ApiView), (status = 400), (status = 404)),
    security(("bearer" = ["update:resource_servers"])))]
async fn update_api(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(patch): Body<ApiPatch>,
) -> Result<Json<ApiView>, ApiError> {
    caller.require("update:resource_servers")?;
    Ok(Json(
        caller
            .admin()
            .update_api(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// Delete an API and the client grants for it.
#[utoipa::path(delete, path = "/resource-servers/{id}", tag = "resource-servers", params(("id" = String, Path, description = "API id")),
    responses((status = 204), (status = 400), (status = 404)), security(("bearer" = ["delete:resource_servers"])))]
async fn delete_api(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:resource_servers")?;
    caller.admin().delete_api(caller.tenant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
