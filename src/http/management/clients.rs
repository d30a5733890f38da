use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Paging, Params};
use crate::http::AppState;
use crate::service::clients::{
    ClientGrantView, ClientPatch, ClientView, NewClientGrant, NewClientInput, parse_auth0_body,
};
use crate::service::paging;
use serde_json::{Map, Value};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_grants, create_grant))
        .routes(routes!(delete_grant))
}

/// List applications.
#[utoipa::path(get, path = "/clients", tag = "clients", params(Paging),
    responses((status = 200, body = [ClientView])), security(("bearer" = ["read:clients"])))]
async fn list_clients(
    caller: Caller,
    Params(p): Params<Paging>,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    caller.require("read:clients")?;
    let (offset, limit) = paging(p.page, p.per_page)?;
    Ok(Json(
        caller
            .admin()
            .list_clients(caller.tenant(), offset, limit)
            .await?,
    ))
}

/// Create an application; the response carries its secret, shown only once.
#[utoipa::path(post, path = "/clients", tag = "clients", request_body = NewClientInput,
    responses((status = 201, body = ClientView), (status = 400), (status = 409)), security(("bearer" = ["create:clients"])))]
async fn create_client(
    caller: Caller,
    Body(body): Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<ClientView>), ApiError> {
    caller.require("create:clients")?;
    let input: NewClientInput = parse_auth0_body(body)?;
    Ok((
        StatusCode::CREATED,
        Json(
            caller
                .admin()
                .create_client_with(caller.tenant(), input)
                .await?,
        ),
    ))
}

/// Get an application.
#[utoipa::path(get, path = "/clients/{id}", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 404)), security(("bearer" = ["read:clients"])))]
async fn get_client(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ClientView>, ApiError> {
    caller.require("read:clients")?;
    Ok(Json(caller.admin().get_client(caller.tenant(), &id).await?))
}

/// Update an application's name, callbacks, grant types or metadata.
#[utoipa::path(patch, path = "/clients/{id}", tag = "clients", params(("id" = String, Path, description = "client_id")),
    request_body = ClientPatch, responses((status = 200, body = ClientView), (status = 400), (status = 404)),
    security(("bearer" = ["update:clients"])))]
async fn update_client(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> Result<Json<ClientView>, ApiError> {
    caller.require("update:clients")?;
    let patch: ClientPatch = parse_auth0_body(body)?;
    caller.guard_management_client(&id).await?;
    Ok(Json(
        caller
            .admin()
            .update_client(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// Delete an application and everything issued to it.
#[utoipa::path(delete, path = "/clients/{id}", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 204), (status = 404)), security(("bearer" = ["delete:clients"])))]
async fn delete_client(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:clients")?;
    caller.guard_management_client(&id).await?;
    caller.admin().delete_client(caller.tenant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace an application's secret; the response carries the new one, shown only once.
#[utoipa::path(post, path = "/clients/{id}/rotate-secret", tag = "clients", params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 400), (status = 404)), security(("bearer" = ["update:clients"])))]
async fn rotate_secret(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ClientView>, ApiError> {
    caller.require("update:clients")?;
    caller.guard_management_client(&id).await?;
    Ok(Json(
        caller
            .admin()
            .rotate_client_secret(caller.tenant(), &id)
            .await?,
    ))
}

/// List which applications may get tokens for which APIs (client_credentials).
#[utoipa::path(get, path = "/client-grants", tag = "clients",
    responses((status = 200, body = [ClientGrantView])), security(("bearer" = ["read:clients"])))]
async fn list_grants(caller: Caller) -> Result<Json<Vec<ClientGrantView>>, ApiError> {
    caller.require("read:clients")?;
    Ok(Json(
        caller.admin().list_client_grants(caller.tenant()).await?,
    ))
}

/// Let a confidential application get tokens for an API with some of its scopes.
#[utoipa::path(post, path = "/client-grants", tag = "clients", request_body = NewClientGrant,
    responses((status = 201, body = ClientGrantView), (status = 400), (status = 404), (status = 409)),
    security(("bearer" = ["update:clients"])))]
async fn create_grant(
    caller: Caller,
    Body(input): Body<NewClientGrant>,
) -> Result<(StatusCode, Json<ClientGrantView>), ApiError> {
    caller.require("update:clients")?;
    Ok((
        StatusCode::CREATED,
        Json(
            caller
                .admin()
                .create_client_grant(caller.tenant(), input)
                .await?,
        ),
    ))
}

/// Remove a client grant.
#[utoipa::path(delete, path = "/client-grants/{id}", tag = "clients", params(("id" = String, Path, description = "grant id")),
    responses((status = 204), (status = 404)), security(("bearer" = ["update:clients"])))]
async fn delete_grant(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("update:clients")?;
    caller
        .admin()
        .delete_client_grant(caller.tenant(), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
