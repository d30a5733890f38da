use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Body, Caller, Params};
use crate::http::AppState;
use crate::service::actions::{
    ActionList, ActionPatch, ActionVersionView, ActionView, BindingList, BindingsInput,
    NewActionInput, TriggerView, VersionList,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_actions, create_action))
        .routes(routes!(get_action, update_action, delete_action))
        .routes(routes!(deploy_action))
        .routes(routes!(action_versions))
        .routes(routes!(action_version))
        .routes(routes!(deploy_action_version))
        .routes(routes!(test_action))
        .routes(routes!(replay_action))
        .routes(routes!(list_triggers))
        .routes(routes!(get_bindings, set_bindings))
}

/// Filters of the action list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ActionQuery {
    /// Only actions of this trigger.
    #[serde(rename = "triggerId")]
    trigger_id: Option<String>,
    /// Only the action with this name.
    #[serde(rename = "actionName")]
    action_name: Option<String>,
    /// Only deployed (true) or never deployed (false) actions.
    deployed: Option<bool>,
    /// Accepted for Auth0 compatibility (the whole list is one page).
    page: Option<u32>,
    /// Accepted for Auth0 compatibility.
    per_page: Option<u32>,
    /// Accepted for Auth0 compatibility (Wardstone has no marketplace integrations).
    installed: Option<bool>,
}

/// List actions (Auth0's shape: `{actions, total, page, per_page}`).
#[utoipa::path(get, path = "/actions/actions", tag = "actions", params(ActionQuery),
    responses((status = 200, body = ActionList), (status = 400)), security(("bearer" = ["read:actions"])))]
async fn list_actions(
    caller: Caller,
    Params(q): Params<ActionQuery>,
) -> Result<Json<ActionList>, ApiError> {
    caller.require("read:actions")?;
    let _ = (q.page, q.per_page, q.installed);
    Ok(Json(
        caller
            .admin()
            .list_actions(
                caller.tenant(),
                q.trigger_id.as_deref(),
                q.action_name.as_deref(),
                q.deployed,
            )
            .await?,
    ))
}

/// Create an action (a draft): compiled first, refused with line and column when it does not
/// compile; `dependencies` outside the built-in modules are refused naming them.
#[utoipa::path(post, path = "/actions/actions", tag = "actions", request_body = NewActionInput,
    responses((status = 201, body = ActionView), (status = 400), (status = 409), (status = 422)),
    security(("bearer" = ["create:actions"])))]
async fn create_action(
    caller: Caller,
    Body(input): Body<NewActionInput>,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    caller.require("create:actions")?;
    Ok((
        StatusCode::CREATED,
        Json(caller.admin().create_action(caller.tenant(), input).await?),
    ))
}

/// Get an action and its draft (secrets by name only).
#[utoipa::path(get, path = "/actions/actions/{id}", tag = "actions", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = ActionView), (status = 404)), security(("bearer" = ["read:actions"])))]
async fn get_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ActionView>, ApiError> {
    caller.require("read:actions")?;
    Ok(Json(caller.admin().get_action(caller.tenant(), &id).await?))
}

/// Edit the draft (nothing live changes until a deploy — except secrets, which are live).
#[utoipa::path(patch, path = "/actions/actions/{id}", tag = "actions", params(("id" = String, Path, description = "Action id")),
    request_body = ActionPatch, responses((status = 200, body = ActionView), (status = 400), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = ["update:actions"])))]
async fn update_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(patch): Body<ActionPatch>,
) -> Result<Json<ActionView>, ApiError> {
    caller.require("update:actions")?;
    Ok(Json(
        caller
            .admin()
            .update_action(caller.tenant(), &id, patch)
            .await?,
    ))
}

/// Whether to delete a bound action (and its bindings).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete even when bound.
    force: Option<bool>,
}

/// Delete an action; a bound one only with `force=true`.
#[utoipa::path(delete, path = "/actions/actions/{id}", tag = "actions", params(("id" = String, Path, description = "Action id"), DeleteQuery),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = ["delete:actions"])))]
async fn delete_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Params(q): Params<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require("delete:actions")?;
    caller
        .admin()
        .delete_action(caller.tenant(), &id, q.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploy the draft: a new immutable version, live wherever the action is bound.
#[utoipa::path(post, path = "/actions/actions/{id}/deploy", tag = "actions", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = ActionVersionView), (status = 404), (status = 422)), security(("bearer" = ["update:actions"])))]
async fn deploy_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ActionVersionView>, ApiError> {
    caller.require("update:actions")?;
    Ok(Json(
        caller.admin().deploy_action(caller.tenant(), &id).await?,
    ))
}

/// An action's versions, newest first.
#[utoipa::path(get, path = "/actions/actions/{id}/versions", tag = "actions", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = VersionList), (status = 404)), security(("bearer" = ["read:actions"])))]
async fn action_versions(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<VersionList>, ApiError> {
    caller.require("read:actions")?;
    Ok(Json(
        caller.admin().action_versions(caller.tenant(), &id).await?,
    ))
}

/// One version of an action (by id, or by number).
#[utoipa::path(get, path = "/actions/actions/{id}/versions/{version}", tag = "actions",
    params(("id" = String, Path, description = "Action id"), ("version" = String, Path, description = "Version id or number")),
    responses((status = 200, body = ActionVersionView), (status = 404)), security(("bearer" = ["read:actions"])))]
async fn action_version(
    caller: Caller,
    Path((_, id, version)): Path<(String, String, String)>,
) -> Result<Json<ActionVersionView>, ApiError> {
    caller.require("read:actions")?;
    Ok(Json(
        caller
            .admin()
            .action_version(caller.tenant(), &id, &version)
            .await?,
    ))
}

/// Deploy an earlier version's code again (a rollback; recorded as a new version).
#[utoipa::path(post, path = "/actions/actions/{id}/versions/{version}/deploy", tag = "actions",
    params(("id" = String, Path, description = "Action id"), ("version" = String, Path, description = "Version id or number")),
    responses((status = 200, body = ActionVersionView), (status = 404)), security(("bearer" = ["update:actions"])))]
async fn deploy_action_version(
    caller: Caller,
    Path((_, id, version)): Path<(String, String, String)>,
) -> Result<Json<ActionVersionView>, ApiError> {
    caller.require("update:actions")?;
    Ok(Json(
        caller
            .admin()
            .deploy_action_version(caller.tenant(), &id, &version)
            .await?,
    ))
}

/// `{"payload": <event>}`: the event to test with (missing fields take sample values).
#[warn(missing_docs)]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestInput {
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

/// What a test run did, as `{"payload": ...}` (Auth0's envelope).
#[warn(missing_docs)]
#[derive(serde::Serialize, utoipa::ToSchema)]
struct TestAnswer {
    payload: crate::rules::TestOutcome,
}

/// Run the draft on an event and see what it asked of the `api`, its logs, fuel and time.
#[utoipa::path(post, path = "/actions/actions/{id}/test", tag = "actions", params(("id" = String, Path, description = "Action id")),
    request_body = TestInput, responses((status = 200, body = TestAnswer), (status = 400), (status = 404), (status = 422)),
    security(("bearer" = ["update:actions"])))]
async fn test_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(input): Body<TestInput>,
) -> Result<Json<TestAnswer>, ApiError> {
    caller.require("update:actions")?;
    if !input.payload.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "payload must be the event, a JSON object",
        ));
    }
    Ok(Json(TestAnswer {
        payload: caller
            .admin()
            .test_action(caller.tenant(), &id, &input.payload)
            .await?,
    }))
}

/// Replay a candidate (the `code` given, else the draft) on the tenant's newest recorded runs
/// of the action's trigger (recording must be on): the pipeline runs as it is live and with
/// the candidate in the action's place, at the recorded time, with no request leaving.
#[utoipa::path(post, path = "/actions/actions/{id}/replay", tag = "actions", params(("id" = String, Path, description = "Action id")),
    request_body = crate::service::replay::ActionReplayRequest,
    responses((status = 200, body = crate::rules::replay::ReplayReport), (status = 400), (status = 403), (status = 404), (status = 422), (status = 503)),
    security(("bearer" = ["update:actions", "read:users"])))]
async fn replay_action(
    caller: Caller,
    Path((_, id)): Path<(String, String)>,
    Body(request): Body<crate::service::replay::ActionReplayRequest>,
) -> Result<Json<crate::rules::replay::ReplayReport>, ApiError> {
    // The candidate runs on recorded users and its answer shows what it put in claims and
    // metadata: it takes the scope that reads users.
    caller.require("update:actions")?;
    caller.require("read:users")?;
    Ok(Json(
        caller
            .admin()
            .replay_action(caller.tenant(), &id, request)
            .await?,
    ))
}

/// The triggers this server runs actions for.
#[warn(missing_docs)]
#[derive(serde::Serialize, utoipa::ToSchema)]
struct TriggerList {
    triggers: Vec<TriggerView>,
}

/// List the triggers (post-login and credentials-exchange).
#[utoipa::path(get, path = "/actions/triggers", tag = "actions",
    responses((status = 200, body = TriggerList)), security(("bearer" = ["read:actions"])))]
async fn list_triggers(caller: Caller) -> Result<Json<TriggerList>, ApiError> {
    caller.require("read:actions")?;
    Ok(Json(TriggerList {
        triggers: caller.admin().action_triggers(),
    }))
}

/// A trigger's bindings, in execution order.
#[utoipa::path(get, path = "/actions/triggers/{trigger}/bindings", tag = "actions", params(("trigger" = String, Path, description = "post-login or credentials-exchange")),
    responses((status = 200, body = BindingList), (status = 400)), security(("bearer" = ["read:actions"])))]
async fn get_bindings(
    caller: Caller,
    Path((_, trigger)): Path<(String, String)>,
) -> Result<Json<BindingList>, ApiError> {
    caller.require("read:actions")?;
    Ok(Json(
        caller.admin().bindings(caller.tenant(), &trigger).await?,
    ))
}

/// Replace a trigger's bindings (order = execution order; only deployed actions of this
/// trigger), all or nothing.
#[utoipa::path(patch, path = "/actions/triggers/{trigger}/bindings", tag = "actions", params(("trigger" = String, Path, description = "post-login or credentials-exchange")),
    request_body = BindingsInput, responses((status = 200, body = BindingList), (status = 400), (status = 404)),
    security(("bearer" = ["update:actions"])))]
async fn set_bindings(
    caller: Caller,
    Path((_, trigger)): Path<(String, String)>,
    Body(input): Body<BindingsInput>,
) -> Result<Json<BindingList>, ApiError> {
    caller.require("update:actions")?;
    Ok(Json(
        caller
            .admin()
            .set_bindings(caller.tenant(), &trigger, input)
            .await?,
    ))
}
