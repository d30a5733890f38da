use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller};
use crate::http::AppState;
use crate::service::keys::SigningKeyView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys))
        .routes(routes!(get_key))
        .routes(routes!(rotate))
        .routes(routes!(revoke))
}

/// List the tenant's signing keys, newest first.
#[utoipa::path(get, path = "/keys/signing", tag = "keys",
    responses((status = 200, body = [SigningKeyView])), security(("bearer" = ["read:signing_keys"])))]
async fn list_keys(caller: Caller) -> Result<Json<Vec<SigningKeyView>>, ApiError> {
    caller.require("read:signing_keys")?;
    Ok(Json(caller.admin().signing_keys(caller.tenant()).await?))
}

/// Get one signing key.
#[utoipa::path(get, path = "/keys/signing/{kid}", tag = "keys", params(("kid" = String, Path, description = "Key id")),
    responses((status = 200, body = SigningKeyView), (status = 404)), security(("bearer" = ["read:signing_keys"])))]
async fn get_key(
    caller: Caller,
    Path((_, kid)): Path<(String, String)>,
) -> Result<Json<SigningKeyView>, ApiError> {
    caller.require("read:signing_keys")?;
    Ok(Json(
        caller.admin().signing_key(caller.tenant(), &kid).await?,
    ))
}

/// Rotate: the next key becomes current, the current one previous, the previous one retired,
/// and a new next key is published. Every node signs with the new key from its next request.
#[utoipa::path(post, path = "/keys/signing/rotate", tag = "keys",
    responses((status = 201, body = SigningKeyView)), security(("bearer" = ["create:signing_keys", "update:signing_keys"])))]
async fn rotate(caller: Caller) -> Result<(StatusCode, Json<SigningKeyView>), ApiError> {
    caller.require("create:signing_keys")?;
    caller.require("update:signing_keys")?;
    Ok((
        StatusCode::CREATED,
        Json(caller.admin().rotate_signing_key(caller.tenant()).await?),
    ))
}

/// Revoke a key that is not current: it leaves the JWKS and tokens it signed stop verifying.
#[utoipa::path(put, path = "/keys/signing/{kid}/revoke", tag = "keys", params(("kid" = String, Path, description = "Key id")),
    responses((status = 200, body = SigningKeyView), (status = 404), (status = 409)), security(("bearer" = ["update:signing_keys"])))]
async fn revoke(
    caller: Caller,
    Path((_, kid)): Path<(String, String)>,
) -> Result<Json<SigningKeyView>, ApiError> {
    caller.require("update:signing_keys")?;
    Ok(Json(
        caller
            .admin()
            .revoke_signing_key(caller.tenant(), &kid)
            .await?,
    ))
}
