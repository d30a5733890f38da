use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Params};
use crate::domain::usage::UsageDay;
use crate::http::AppState;
use crate::service::tenants::TenantSettings;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(usage))
}

/// The days to answer for.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// First day, `YYYY-MM-DD` or `YYYYMMDD` (UTC); default 29 days before `to`.
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` or `YYYYMMDD` (UTC); default today. At most 366 days in all.
    to: Option<String>,
}

/// The tenant's usage per day: password logins, token responses by grant type, rule and
/// action executions, failures, denials and fuel — the same figures on every node.
#[utoipa::path(get, path = "/tenants/usage", tag = "tenants", params(UsageQuery),
    responses((status = 200, body = [UsageDay]), (status = 400)), security(("bearer" = ["read:stats"])))]
async fn usage(
    caller: Caller,
    Params(q): Params<UsageQuery>,
) -> Result<Json<Vec<UsageDay>>, ApiError> {
    caller.require("read:stats")?;
    Ok(Json(
        caller
            .admin()
            .usage(caller.tenant(), q.from.as_deref(), q.to.as_deref())
            .await?,
    ))
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
