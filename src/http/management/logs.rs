use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller, Params};
use crate::http::AppState;
use crate::rules::ExecutionRecord;
use crate::service::paging;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_logs))
}

/// Paging and filters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// Page number, from 0.
    page: Option<i64>,
    /// Items per page, 1 to 100 (default 50).
    per_page: Option<i64>,
    /// Only executions of this rule.
    rule_id: Option<String>,
    /// Only this outcome (`ok`, `denied`, `failed:timeout`, ...).
    outcome: Option<String>,
}

/// Rule executions, newest first.
#[utoipa::path(get, path = "/logs", tag = "logs", params(LogQuery),
    responses((status = 200, body = [ExecutionRecord])), security(("bearer" = ["read:logs"])))]
async fn list_logs(
    caller: Caller,
    Params(q): Params<LogQuery>,
) -> Result<Json<Vec<ExecutionRecord>>, ApiError> {
    caller.require("read:logs")?;
    let (offset, limit) = paging(q.page, q.per_page)?;
    Ok(Json(
        caller
            .admin()
            .list_logs(
                caller.tenant(),
                q.rule_id.as_deref(),
                q.outcome.as_deref(),
                offset,
                limit,
            )
            .await?,
    ))
}
