use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Params};
use crate::http::AppState;
use crate::service::rules::{
    NewRuleInput, RollbackInput, RulePatch, RuleTestInput, RuleVersionView, RuleView,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(test_rule))
        .routes(routes!(replay_rule))
        .routes(routes!(rule_versions))
        .routes(routes!(rollback_rule))
        .routes(routes!(list_configs))
        .routes(routes!(set_config, delete_config))
}

/// List rules in pipeline order (metadata, never the module).
#[utoipa::path(get, path = "/rules", tag = "rules",
    responses((status = 200, body = [RuleView])), security(("bearer" = ["read:rules"])))]
async fn list_rules(caller: Caller) -> Result<Json<Vec<RuleView>>, ApiError> {
    caller.require("read:rules")?;
    let rules = caller.admin().list_rules(caller.tenant()).await?;
    Ok(Json(rules))
}

/// Upload a rule: `script`, `wasm` (base64) or `wat`. The module is validated against ABI v1
/// and compiled first; a bad module is refused with 422 naming the problem. Rule code reads
/// every rule setting, so writing it also takes `read:rules_configs`.
#[utoipa::path(post, path = "/rules", tag = "rules", request_body = NewRuleInput,
    responses((status = 201, body = RuleView), (status = 400), (status = 409), (status = 422)), security(("bearer" = ["create:rules", "read:rules_configs"])))]
async fn create_rule(
    caller: Caller,
    Body(input): Body<NewRuleInput>,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    caller.require("create:rules")?;
    caller.require_code_scope()?;
    Ok((
        StatusCode::CREATED,
        Json(caller.admin().create_rule(caller.tenant(), input).await?),
    ))
}

/// Whether to include the module bytes.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RuleQuery {
    /// Include the module as base64 `wasm`.
    #[serde(default)]
    include_module: bool,
}

/// Get a rule; the module only with `include_module=true`.
#[utoipa::path(get, path = "/rules/{id}", tag = "rules", params(("id" = String, Path, description = "rule id"), RuleQuery),
    responses((status = 200, body = RuleView), (status = 404)), security(("bearer" = ["read:rules"])))]
async fn get_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Params(q): Params<RuleQuery>,
) -> Result<Json<RuleView>, ApiError> {
    caller.require("read:rules")?;
    Ok(Json(
        caller
            .admin()
            .get_rule(caller.tenant(), &id, q.include_module)
            .await?,
    ))
}

/// Change a rule's name, order, enabled flag or module; a new module replaces the old one
/// atomically (a login sees one or the other). A new module also takes `read:rules_configs`.
#[utoipa::path(patch, path = "/rules/{id}", tag = "rules", params(("id" = String, Path, description = "rule id")),
    request_body = RulePatch, responses((status = 200, body = RuleView), (status = 400), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = ["update:rules"])))]
async fn update_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(patch): Body<RulePatch>,
) -> Result<Json<RuleView>, ApiError> {
    caller.require("update:rules")?;
    if patch.wasm.is_some() || patch.wat.is_some() || patch.script.is_some() {
        caller.require_code_scope()?;
    }
    Ok(Json(
        caller
            .admin()
            .update_rule(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// A rule's stored versions, newest first.
#[utoipa::path(get, path = "/rules/{id}/versions", tag = "rules", params(("id" = String, Path, description = "rule id")),
    responses((status = 200, body = [RuleVersionView]), (status = 404)), security(("bearer" = ["read:rules"])))]
async fn rule_versions(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<RuleVersionView>>, ApiError> {
    caller.require("read:rules")?;
    Ok(Json(
        caller.admin().rule_versions(caller.tenant(), &id).await?,
    ))
}

/// Make an earlier version's module current again; the rollback is itself a new version.
/// Takes `read:rules_configs` too, as any change of a rule's code.
#[utoipa::path(post, path = "/rules/{id}/rollback", tag = "rules", params(("id" = String, Path, description = "rule id")),
    request_body = RollbackInput, responses((status = 200, body = RuleView), (status = 400), (status = 404)),
    security(("bearer" = ["update:rules", "read:rules_configs"])))]
async fn rollback_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<RollbackInput>,
) -> Result<Json<RuleView>, ApiError> {
    caller.require("update:rules")?;
    caller.require_code_scope()?;
    Ok(Json(
        caller
            .admin()
            .rollback_rule(caller.tenant(), &id, input.version)
            .await?,
    ))
}

/// Delete a rule.
#[utoipa::path(delete, path = "/rules/{id}", tag = "rules", params(("id" = String, Path, description = "rule id")),
    responses((status = 204), (status = 404)), security(("bearer" = ["delete:rules"])))]
async fn delete_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:rules")?;
    caller.admin().remove_rule(caller.tenant(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run one rule on a given user and context through the real engine and limits. Without a
/// `configuration`, the tenant's settings are used if the token may read them
/// (`read:rules_configs`), otherwise an empty one.
#[utoipa::path(post, path = "/rules/{id}/test", tag = "rules", params(("id" = String, Path, description = "rule id")),
    request_body = RuleTestInput, responses((status = 200, body = crate::rules::TestOutcome), (status = 400), (status = 404)),
    security(("bearer" = ["update:rules"])))]
async fn test_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<RuleTestInput>,
) -> Result<Json<crate::rules::TestOutcome>, ApiError> {
    caller.require("update:rules")?;
    let may_read_configuration = caller.has("read:rules_configs");
    Ok(Json(
        caller
            .admin()
            .test_rule(caller.tenant(), &id, input, may_read_configuration)
            .await?,
    ))
}

/// Replay a candidate for this rule on the tenant's newest recorded logins and refreshes (recording
/// must be on): the rules pipeline runs as it is live and with the candidate in the rule's
/// place, at the recorded time, with no request leaving; the answer counts each input as
/// `same`, `changed`, `newly_denied`, `newly_allowed` or `newly_failing` and shows what differs.
#[utoipa::path(post, path = "/rules/{id}/replay", tag = "rules", params(("id" = String, Path, description = "rule id")),
    request_body = crate::service::replay::RuleReplayRequest,
    responses((status = 200, body = crate::rules::replay::ReplayReport), (status = 400), (status = 403), (status = 404), (status = 422), (status = 503)),
    security(("bearer" = ["update:rules", "read:rules_configs", "read:users"])))]
async fn replay_rule(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(request): Body<crate::service::replay::RuleReplayRequest>,
) -> Result<Json<crate::rules::replay::ReplayReport>, ApiError> {
    // The candidate runs with the rule settings and on recorded users, and its answer shows
    // what it put in claims and metadata: it takes the scopes that read them.
    caller.require("update:rules")?;
    caller.require_code_scope()?;
    caller.require("read:users")?;
    Ok(Json(
        caller
            .admin()
            .replay_rule(caller.tenant(), &id, request)
            .await?,
    ))
}

/// A setting key.
#[warn(missing_docs)]
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ConfigKey {
    /// The key.
    key: String,
}

/// A setting value.
#[warn(missing_docs)]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfigValue {
    /// The value (encrypted at rest, never returned).
    value: String,
}

/// List the keys of the rule settings (never the values).
#[utoipa::path(get, path = "/rules-configs", tag = "rules",
    responses((status = 200, body = [ConfigKey])), security(("bearer" = ["read:rules_configs"])))]
async fn list_configs(caller: Caller) -> Result<Json<Vec<ConfigKey>>, ApiError> {
    caller.require("read:rules_configs")?;
    let keys = caller.admin().rule_config_keys(caller.tenant()).await?;
    Ok(Json(
        keys.into_iter().map(|key| ConfigKey { key }).collect(),
    ))
}

/// Set a rule setting.
#[utoipa::path(put, path = "/rules-configs/{key}", tag = "rules", params(("key" = String, Path, description = "setting key")),
    request_body = ConfigValue, responses((status = 200, body = ConfigKey), (status = 400)), security(("bearer" = ["update:rules_configs"])))]
async fn set_config(
    caller: Caller,
    Path((_, key)): Path<(String, String)>,
    Body(v): Body<ConfigValue>,
) -> Result<Json<ConfigKey>, ApiError> {
    caller.require("update:rules_configs")?;
    caller
        .admin()
        .set_rule_config(caller.tenant(), &key, &v.value)
        .await?;
    Ok(Json(ConfigKey { key }))
}

/// Remove a rule setting.
#[utoipa::path(delete, path = "/rules-configs/{key}", tag = "rules", params(("key" = String, Path, description = "setting key")),
    responses((status = 204), (status = 404)), security(("bearer" = ["delete:rules_configs"])))]
async fn delete_config(
    caller: Caller,
    Path((_, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:rules_configs")?;
    caller
        .admin()
        .unset_rule_config(caller.tenant(), &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
