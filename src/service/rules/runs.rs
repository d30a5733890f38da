//! What rules did: a test run on a sample input, and the execution log.

use super::*;

/// How deep the execution log pages (entries, counting the skipped pages): a page is read
/// through the runs before it.
pub const MAX_LOG_DEPTH: i64 = 10_000;

impl Admin {
    /// Runs one rule on the given input through the real engine, limits and executor. The
    /// execution is recorded in the log with protocol `test`; nothing else changes.
    /// Without a `configuration` in the input, the tenant's own settings are used only when
    /// `may_read_configuration` (a rule could echo them back).
    pub async fn test_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        input: RuleTestInput,
        may_read_configuration: bool,
    ) -> Result<TestOutcome, AdminError> {
        if !input.user.is_object() || !input.context.is_object() {
            return Err(AdminError::Invalid(
                "user and context must be JSON objects".into(),
            ));
        }
        let record = self.rule_record(tenant, id).await?;
        let configuration = match input.configuration {
            Some(c) => {
                serde_json::from_value::<rules_sdk::Configuration>(c.clone()).map_err(|_| {
                    AdminError::Invalid("configuration must be an object of strings".into())
                })?;
                c
            }
            None if !may_read_configuration => serde_json::json!({}),
            None => {
                self.rules_service()
                    .configuration(&tenant.id, tenant.rules_generation)
                    .await?
            }
        };
        // Written as a login writes it (member order included), so the fuel is a login's.
        let payload = crate::rules::test_run::rule_input_bytes(&serde_json::json!({
            "user": input.user, "context": input.context, "configuration": configuration
        }));
        self.rules_service()
            .test(
                &tenant.id,
                tenant.rules_generation,
                &record,
                payload,
                self.clock.now(),
            )
            .await
            .map_err(|e| match e {
                TestError::Module(m) => AdminError::InvalidModule(m),
                TestError::Busy => AdminError::Busy(e.to_string()),
                TestError::Internal(e) => AdminError::Internal(e),
            })
    }

    /// Rule executions newest first, paged, optionally of one rule or one outcome. Executions
    /// this node recorded are written first, so the newest logins are in the answer.
    pub async fn list_logs(
        &self,
        tenant: &Tenant,
        rule_id: Option<&str>,
        outcome: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ExecutionRecord>, AdminError> {
        let outcome = outcome
            .map(|o| {
                Outcome::parse(o).ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "unknown outcome {o:?}: use one of {}",
                        Outcome::labels().collect::<Vec<_>>().join(", ")
                    ))
                })
            })
            .transpose()?;
        if offset.saturating_add(limit) > MAX_LOG_DEPTH {
            return Err(AdminError::Invalid(format!(
                "the log is listed up to {MAX_LOG_DEPTH} entries deep: narrow it with rule_id or outcome"
            )));
        }
        self.rules_service().journal().flush().await;
        self.store
            .list_executions(&tenant.id, rule_id, outcome, offset, limit)
            .await
            .map_err(internal)
    }
}
