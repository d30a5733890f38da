use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller};
use crate::http::AppState;
use crate::service::tenants::TenantSettings;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

/// The tenant's settings: the hosts rules may call through `wardstone.http_fetch`.
#[utoipa::path(get, path = "/tenants/settings", tag = "tenants",
    responses((status = 200, body = TenantSettings)), security(("bearer" = ["read:tenant_settings"])))]
async fn get_settings(caller: Caller) -> Result<Json<TenantSettings>, ApiError> {
    caller.require("read:tenant_settings")?;
    Ok(Json(caller.admin().tenant_settings(caller.tenant()).await?))
}

/// Replace the settings given (`{"rules": {"allowed_hosts": ["api.example.com", "127.0.0.1:8089"]}}`);
/// rules use them from their next run on every node.
#[utoipa::path(patch, path = "/tenants/settings", tag = "tenants", request_body = TenantSettings,
    responses((status = 200, body = TenantSettings), (status = 400)), security(("bearer" = ["update:tenant_settings"])))]
async fn update_settings(
    caller: Caller,
    Body(settings): Body<TenantSettings>,
) -> Result<Json<TenantSettings>, ApiError> {
    caller.require("update:tenant_settings")?;
    Ok(Json(
        caller
            .admin()
            .update_tenant_settings(caller.tenant(), settings)
            .await?,
    ))
}
