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

impl Admin {
    /// Runs the tenant's rules as they are live and with the candidate in rule `id`'s place on
    /// the newest recorded runs, and compares them. Nothing is stored or sent anywhere.
    pub async fn replay_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        request: RuleReplayRequest,
    ) -> Result<ReplayReport, AdminError> {
        let last = request.last.unwrap_or(DEFAULT_REPLAY_LAST);
        if !(1..=MAX_RECORDING_KEEP).contains(&last) {
            return Err(AdminError::Invalid(format!(
                "last must be 1 to {MAX_RECORDING_KEEP}, not {last}"
            )));
        }
        let rule = self.rule_record(tenant, id).await?;
        let upload = upload_of(&request.wasm, &request.wat, &request.script)?.ok_or_else(|| {
            AdminError::Invalid("give the candidate as one of script, wasm or wat".into())
        })?;
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
        let (_, candidate) = self.compile_upload(tenant, upload).await?;
        let mut inputs = Vec::with_capacity(rows.len());
        for row in rows {
            let plain = self
                .master_key
                .open(&recording_context(&row.id), &row.sealed)
                .map_err(|e| AdminError::Internal(anyhow::anyhow!("recording {}: {e}", row.id)))?;
            let input = serde_json::from_slice(&plain)
                .map_err(|e| AdminError::Internal(anyhow::anyhow!("recording {}: {e}", row.id)))?;
            inputs.push(RecordedInput {
                created_at: row.created_at,
                protocol: row.protocol,
                client_id: row.client_id,
                user_id: row.user_id,
                input,
            });
        }
        self.rules
            .replay_rule(
                &tenant.id,
                tenant.rules_generation,
                &rule,
                candidate.compiled,
                inputs,
            )
            .await
            .map_err(|e| match e {
                ReplayError::Unavailable(_) | ReplayError::Busy => AdminError::Busy(e.to_string()),
                ReplayError::Internal(e) => AdminError::Internal(e),
            })
    }
}
