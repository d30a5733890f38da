//! Replaying a candidate rule on the tenant's recorded logins (SPEC §18): what a change would
//! have done, before it ships.

use serde::Deserialize;

use super::rules::upload_of;
use super::{Admin, AdminError, internal};
use crate::domain::Tenant;
use crate::rules::journal::recording_context;
use crate::rules::replay::{RecordedInput, ReplayError, ReplayReport};
use crate::store::MAX_RECORDING_KEEP;

/// Recorded runs a replay takes when `last` is not given.
pub const DEFAULT_REPLAY_LAST: i64 = 100;

/// A rule replay: the candidate (exactly one of `script`, `wasm`, `wat`) and how many of the
/// newest recorded runs to replay it on.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleReplayRequest {
    /// Newest recorded runs to replay, 1 to 5,000 (default 100).
    pub last: Option<i64>,
    /// The candidate as JavaScript (Auth0 Rules source).
    pub script: Option<String>,
    /// The candidate as a base64 wasm binary.
    pub wasm: Option<String>,
    /// The candidate as WAT text.
    pub wat: Option<String>,
}

/// An action replay: the candidate code (default: the action's draft) and how many of the
/// newest recorded runs to replay it on.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionReplayRequest {
    /// Newest recorded runs to replay, 1 to 5,000 (default 100).
    pub last: Option<i64>,
    /// The candidate's code; the action's draft when absent.
    pub code: Option<String>,
}

impl Admin {
    /// Runs the tenant's rules as they are live and with the candidate in rule `id`'s place on
    /// the newest recorded runs, and compares them. Nothing is stored or sent anywhere.
    pub async fn replay_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        request: RuleReplayRequest,
    ) -> Result<ReplayReport, AdminError> {
        let rule = self.rule_record(tenant, id).await?;
        let upload = upload_of(&request.wasm, &request.wat, &request.script)?.ok_or_else(|| {
            AdminError::Invalid("give the candidate as one of script, wasm or wat".into())
        })?;
        let (inputs, unreadable) = self.recorded_inputs(tenant, request.last).await?;
        let (_, candidate) = self.compile_upload(tenant, upload).await?;
        let mut report = self
            .rules
            .replay_rule(
                &tenant.id,
                tenant.rules_generation,
                &rule,
                candidate.compiled,
                inputs,
            )
            .await
            .map_err(replay_error)?;
        report.summary.unreadable = unreadable;
        Ok(report)
    }

    /// Runs the tenant's trigger of action `id` as it is live and with the candidate (the
    /// code given, else the action's draft) in its place on the newest recorded runs, and
    /// compares them. Nothing is stored or sent anywhere.
    pub async fn replay_action(
        &self,
        tenant: &Tenant,
        id: &str,
        request: ActionReplayRequest,
    ) -> Result<ReplayReport, AdminError> {
        let action = self.action_record(tenant, id).await?;
        let code = request.code.as_deref().unwrap_or(&action.code);
        let (inputs, unreadable) = self.recorded_inputs(tenant, request.last).await?;
        let candidate = self.compile_action(tenant, code).await?;
        let secrets = serde_json::Value::Object(self.open_secrets(tenant, id).await?).to_string();
        let mut report = self
            .rules
            .replay_action(
                &tenant.id,
                tenant.rules_generation,
                (
                    &action.id,
                    &action.name,
                    action.deployed_version.unwrap_or(0),
                ),
                action.trigger_id,
                candidate.compiled,
                &secrets,
                inputs,
            )
            .await
            .map_err(replay_error)?;
        report.summary.unreadable = unreadable;
        Ok(report)
    }

    /// The newest `last` recorded runs, unsealed, and how many could not be (a clear error
    /// when nothing is recorded).
    async fn recorded_inputs(
        &self,
        tenant: &Tenant,
        last: Option<i64>,
    ) -> Result<(Vec<RecordedInput>, usize), AdminError> {
        let last = last.unwrap_or(DEFAULT_REPLAY_LAST);
        if !(1..=MAX_RECORDING_KEEP).contains(&last) {
            return Err(AdminError::Invalid(format!(
                "last must be 1 to {MAX_RECORDING_KEEP}, not {last}"
            )));
        }
        self.rules.journal().flush().await;
        let rows = self
            .store
            .recent_recordings(&tenant.id, last)
            .await
            .map_err(internal)?;
        if rows.is_empty() {
            let keep = self
                .store
                .recording_keep(&tenant.id)
                .await
                .map_err(internal)?;
            return Err(AdminError::Invalid(if keep == 0 {
                "nothing is recorded: recording is off for this tenant. Turn it on (PATCH \
                 /tenants/settings {\"recording\": {\"enabled\": true}}, or wardstone tenant \
                 recording --keep N) and replay after some logins"
                    .into()
            } else {
                "nothing is recorded yet: recording is on; replay after some logins".into()
            }));
        }
        let mut inputs = Vec::with_capacity(rows.len());
        let mut unreadable = 0;
        for row in rows {
            let opened = self
                .master_key
                .open(&recording_context(&tenant.id, &row.id), &row.sealed)
                .map_err(|e| e.to_string())
                .and_then(|plain| serde_json::from_slice(&plain).map_err(|e| e.to_string()));
            match opened {
                Ok(input) => inputs.push(RecordedInput {
                    created_at: row.created_at,
                    protocol: row.protocol,
                    client_id: row.client_id,
                    user_id: row.user_id,
                    input,
                }),
                Err(e) => {
                    // Another master key, or a damaged row: the rest still replay.
                    tracing::warn!(recording = %row.id, error = %e, "a recorded run cannot be read; left out of the replay");
                    unreadable += 1;
                }
            }
        }
        Ok((inputs, unreadable))
    }
}

fn replay_error(e: ReplayError) -> AdminError {
    match e {
        ReplayError::Unavailable(_) | ReplayError::Busy => AdminError::Busy(e.to_string()),
        ReplayError::Internal(e) => AdminError::Internal(e),
    }
}
