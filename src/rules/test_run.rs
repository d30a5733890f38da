//! Running one rule or one action on a given input, outside a login: the Management API's test
//! endpoints (recorded in the execution log as `test`) and the CLI's offline runners (no
//! database). Both run on executor threads under the same limits as logins.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::actions::ActionOutput;
use super::engine::{Execution, RuleEngine};
use super::executor::{Executor, NotRun};
use super::outbound::NetPolicy;
use super::patch::{deny_of, unsupported_request};
use super::{CompiledRule, Rules};
use crate::domain::TriggerId;
use crate::domain::execution::{CodeKind, ExecutionRecord, Failure, FailureKind, Outcome, Trigger};
use crate::store::RuleRecord;

/// What one test execution did: the execution as the log records it, and what it produced —
/// a rule's patch, or what an action asked for — or its denial or failure.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// The execution (id, outcome, duration, fuel, logs, …).
    #[serde(flatten)]
    pub record: ExecutionRecord,
    /// A rule's patch (when ok).
    #[schema(value_type = Option<Object>)]
    pub patch: Option<Value>,
    /// What an action asked for through `api` (when ok): claims, scopes, metadata, cache,
    /// redirect.
    #[schema(value_type = Option<Object>)]
    pub calls: Option<Value>,
    /// The denial, or what failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// Why a test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The module cannot be loaded or compiled.
    #[error("{0}")]
    Module(String),
    /// Too many executions of this tenant are waiting.
    #[error("too many rule executions are waiting; try again")]
    Busy,
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The record, patch or calls, and error of one execution of `compiled`.
pub fn summarize(
    compiled: &CompiledRule,
    execution: Execution,
    mut record: ExecutionRecord,
) -> TestOutcome {
    record.duration_us = i64::try_from(execution.duration.as_micros()).unwrap_or(i64::MAX);
    record.fuel = i64::try_from(execution.fuel_used).unwrap_or(i64::MAX);
    record.logs = execution.logs;
    let mut outcome = TestOutcome {
        record,
        patch: None,
        calls: None,
        error: None,
    };
    let failed = |outcome: &mut TestOutcome, kind: FailureKind, message: String| {
        outcome.record.fail(kind, message.clone());
        outcome.error = Some(json!({ "message": message }));
    };
    let output = match execution.result {
        Ok(output) => output,
        Err(f) => {
            failed(&mut outcome, f.kind(), f.detail());
            return outcome;
        }
    };
    if compiled.is_action() {
        match serde_json::from_value::<ActionOutput>(Value::Object(output.clone())) {
            Err(e) => failed(
                &mut outcome,
                FailureKind::BadOutput,
                format!("the action's output is invalid: {e}"),
            ),
            Ok(calls) if calls.unsupported.is_some() => failed(
                &mut outcome,
                FailureKind::Unsupported,
                format!(
                    "the action asked for {}, which this server does not support; the login would be refused",
                    calls.unsupported.unwrap_or_default()
                ),
            ),
            Ok(calls) if calls.denied.is_some() => {
                outcome.record.outcome = Outcome::Denied;
                outcome.error = Some(json!(calls.denied));
            }
            Ok(_) => {
                let mut shown = output;
                shown.remove("unsupported");
                outcome.calls = Some(Value::Object(shown));
            }
        }
        return outcome;
    }
    match deny_of(&output) {
        Some(Ok(message)) => {
            outcome.record.outcome = Outcome::Denied;
            outcome.error = Some(json!({"kind": "unauthorized", "message": message}));
        }
        Some(Err(why)) => failed(
            &mut outcome,
            FailureKind::BadOutput,
            Failure::BadOutput(why).detail(),
        ),
        None => match output
            .get("context")
            .and_then(Value::as_object)
            // A test shows the redirect a rule asks for in its output, as the login would
            // follow it.
            .and_then(|patch| unsupported_request(patch, true))
        {
            Some(why) => failed(&mut outcome, FailureKind::Unsupported, why),
            None => outcome.patch = Some(Value::Object(output)),
        },
    }
    outcome
}

/// Auth0's sample post-login event (what the test endpoint fills missing fields from).
pub fn sample_event(trigger: TriggerId) -> Value {
    let request = json!({
        "ip": "203.0.113.10", "method": "GET", "hostname": "example.wardstone.dev",
        "user_agent": "Mozilla/5.0", "language": "en", "query": {}, "body": {}, "geoip": {},
    });
    let client = json!({"client_id": "sample-client", "name": "Sample App", "metadata": {}});
    match trigger {
        TriggerId::PostLogin => json!({
            "user": {
                "user_id": "auth0|5f7c8ec7c33c6c004bbafe82", "email": "j+smith@example.com",
                "email_verified": true, "name": "j+smith@example.com", "nickname": "j+smith",
                "picture": "https://s.gravatar.com/avatar/0?d=pi.png",
                "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
                "last_login": "2024-01-01T00:00:00.000Z", "logins_count": 1,
                "app_metadata": {}, "user_metadata": {}, "identities": [], "multifactor": [],
                "enrolledFactors": [],
            },
            "client": client,
            "connection": {"id": "con_wardstone_database", "name": "Username-Password-Authentication", "strategy": "auth0", "metadata": {}},
            "request": request,
            "transaction": {
                "id": "sample-transaction", "protocol": "oidc-basic-profile",
                "requested_scopes": ["openid", "profile"], "redirect_uri": "https://example.com/callback",
                "response_type": ["code"], "state": "sample-state", "ui_locales": [], "prompt": [],
                "acr_values": [], "locale": "en", "metadata": {},
            },
            "authorization": {"roles": []},
            "stats": {"logins_count": 1},
            "authentication": {"methods": [{"name": "pwd", "timestamp": "2024-01-01T00:00:00.000Z"}], "riskAssessment": {"confidence": "neutral", "version": "1", "assessments": {
                "UntrustedIP": {"confidence": "neutral", "code": "assessment_not_available"},
                "NewDevice": {"confidence": "neutral", "code": "assessment_not_available"},
                "ImpossibleTravel": {"confidence": "neutral", "code": "assessment_not_available"}}}},
            "tenant": {"id": "sample"},
            "session": {"id": "sample-session"},
            "organization": null,
            "configuration": {},
            "secrets": {},
        }),
        TriggerId::CredentialsExchange => json!({
            "client": client,
            "resource_server": {"identifier": "https://api.example.com/"},
            "request": request,
            "transaction": {"id": "sample-transaction", "protocol": "oauth2-client-credentials", "requested_scopes": []},
            "accessToken": {"scope": [], "customClaims": {}},
            "tenant": {"id": "sample"},
            "organization": null,
            "secrets": {},
        }),
    }
}

/// `base` with `given` merged in, objects key by key (what the test endpoint runs on).
pub fn merged_event(base: &Value, given: &Value) -> Value {
    match (base, given) {
        (Value::Object(b), Value::Object(g)) => {
            let mut out = b.clone();
            for (k, v) in g {
                let merged = match out.get(k) {
                    Some(existing) => merged_event(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, given) => given.clone(),
    }
}

/// The input of an action's test run: the event given (sample values where missing), its
/// secrets given or the stored ones.
fn action_test_input(trigger: TriggerId, event: &Value, secrets: &str) -> Vec<u8> {
    let mut event = merged_event(&sample_event(trigger), event);
    if let Value::Object(map) = &mut event
        && map
            .get("secrets")
            .is_none_or(|s| s.as_object().is_none_or(Map::is_empty))
    {
        map.insert(
            "secrets".into(),
            serde_json::from_str(secrets).unwrap_or_else(|_| json!({})),
        );
    }
    let user_id = event["user"]["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ip = event["request"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let facts = json!({"cache": {}, "executed_rules": [], "can_redirect": false,
                  "resume_state": "test-state", "issuer": "test", "subject": user_id, "ip": ip});
    let mut members = match event {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let secrets = members
        .get("secrets")
        .map(Value::to_string)
        .unwrap_or_else(|| "{}".into());
    members.remove("secrets");
    let (frame, dynamic) = super::input::EventFrame::of_event(trigger, members);
    frame.action_input(
        trigger.entry_point(),
        trigger.as_str(),
        &super::input::DynamicMember::new(trigger, &dynamic),
        &secrets,
        &facts.to_string(),
    )
}

impl Rules {
    /// Runs one rule on an ABI v1 input for the test endpoint, under the same limits and
    /// executor as logins, and records it in the log as a `test` execution.
    pub async fn test(
        &self,
        tenant_id: &str,
        generation: i64,
        rule: &RuleRecord,
        input: Vec<u8>,
        now: i64,
    ) -> Result<TestOutcome, TestError> {
        let start = || {
            let mut r = ExecutionRecord::start(&rule.id, &rule.name, Trigger::Test, now);
            r.rule_version = rule.version;
            r
        };
        let compiled = match self
            .module_of(
                tenant_id,
                super::modules::ModuleSource::Rule(&rule.id),
                &rule.sha256,
                start,
            )
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => return Err(TestError::Module("the rule no longer exists".into())),
            Err(record) => {
                let why = record
                    .logs
                    .last()
                    .map(|l| l.message.clone())
                    .unwrap_or_default();
                self.record(tenant_id, vec![record]);
                return Err(TestError::Module(why));
            }
        };
        let net = self
            .rule_set(tenant_id, generation)
            .await
            .map_err(TestError::Internal)?
            .net
            .clone();
        let outcome = self
            .test_on_executor(tenant_id, compiled, input, net, start())
            .await?;
        self.record(tenant_id, vec![outcome.record.clone()]);
        Ok(outcome)
    }

    /// Runs an action's draft (compiled by the caller) on `event` for the test endpoint; the
    /// secrets are the ones given in the event, else the action's. Recorded as a `test`
    /// execution.
    #[allow(clippy::too_many_arguments)]
    pub async fn test_action(
        &self,
        tenant_id: &str,
        generation: i64,
        action: (&str, &str, i64),
        trigger: TriggerId,
        compiled: Arc<CompiledRule>,
        event: &Value,
        secrets: &str,
        now: i64,
    ) -> Result<TestOutcome, TestError> {
        let (id, name, version) = action;
        let mut record = ExecutionRecord::start(id, name, Trigger::Test, now);
        record.kind = CodeKind::Action;
        record.rule_version = version;
        let net = self
            .rule_set(tenant_id, generation)
            .await
            .map_err(TestError::Internal)?
            .net
            .clone();
        let input = action_test_input(trigger, event, secrets);
        let outcome = self
            .test_on_executor(tenant_id, compiled, input, net, record)
            .await?;
        self.record(tenant_id, vec![outcome.record.clone()]);
        Ok(outcome)
    }

    async fn test_on_executor(
        &self,
        tenant_id: &str,
        compiled: Arc<CompiledRule>,
        input: Vec<u8>,
        net: NetPolicy,
        record: ExecutionRecord,
    ) -> Result<TestOutcome, TestError> {
        let engine = self.engine().clone();
        match self
            .inner
            .executor
            .run(tenant_id, move || {
                run_one(&engine, compiled, &input, &net, record)
            })
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(NotRun::Busy) => Err(TestError::Busy),
            Err(e @ NotRun::Closed) => Err(TestError::Internal(e.into())),
        }
    }
}

/// One execution of `compiled` under the engine's limits (the HTTP deadline for code that
/// makes requests). Blocking.
fn run_one(
    engine: &RuleEngine,
    compiled: Arc<CompiledRule>,
    input: &[u8],
    net: &NetPolicy,
    record: ExecutionRecord,
) -> TestOutcome {
    let limits = engine.limits();
    let timeout = if compiled.uses_http {
        limits.http_rule_timeout.min(limits.pipeline_timeout)
    } else {
        limits.rule_timeout
    };
    let execution = engine.execute_with(&compiled, input, timeout, net);
    summarize(&compiled, execution, record)
}

/// A rule input as the offline runner gives it: every field a login gives a rule (empty, or
/// Auth0's shape with nothing in it, where `given` is silent), what `given` says winning,
/// unknown keys included.
pub fn offline_rule_input(given: &Value) -> Result<Value, serde_json::Error> {
    let typed: rules_sdk::RuleInput = serde_json::from_value(given.clone())?;
    let mut full = serde_json::to_value(typed)?;
    if full["context"]["riskAssessment"]
        .as_object()
        .is_some_and(|m| m.is_empty())
    {
        full["context"]["riskAssessment"] = super::input::risk_assessment();
    }
    super::patch::merge_patch(&mut full, given);
    Ok(full)
}

/// An input from [`offline_rule_input`] as a login writes it for a rule: the same bytes in
/// the same member order (keys sorted, the members rules change last), so what a rule costs
/// offline (`wardstone rules run`, the benches) is what it costs in a login — the SDK
/// recognises each next key of that order by comparing words.
pub fn rule_input_bytes(input: &Value) -> Vec<u8> {
    let configuration = input
        .get("configuration")
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    super::patch::InputFrame::new(&input["user"], &input["context"], &configuration)
        .input(&input["user"], &input["context"])
}

/// The offline runners' engine and executor: the server's limits, one thread sized like the
/// server's, no database, no outbound requests.
pub struct Offline {
    engine: Arc<RuleEngine>,
    executor: Executor,
}

impl Offline {
    /// An engine and one executor thread under `limits`.
    pub fn new(limits: super::Limits) -> anyhow::Result<Self> {
        let executor = Executor::new(1, limits.stack_bytes, 0)?;
        Ok(Offline {
            engine: Arc::new(RuleEngine::new(limits)?),
            executor,
        })
    }

    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    /// Checks and compiles an upload off the async workers.
    pub async fn compile(
        &self,
        upload: super::Upload,
    ) -> Result<Arc<CompiledRule>, super::Rejected> {
        let bytes = self.engine.assemble(upload)?;
        let engine = self.engine.clone();
        self.executor
            .run("offline", move || engine.compile(&bytes))
            .await
            .map_err(|e| super::Rejected(e.to_string()))?
            .map(Arc::new)
    }

    /// Runs a rule on an ABI v1 input.
    pub async fn run_rule(
        &self,
        compiled: Arc<CompiledRule>,
        input: Vec<u8>,
    ) -> anyhow::Result<TestOutcome> {
        let engine = self.engine.clone();
        let record = ExecutionRecord::start("offline", "offline", Trigger::Test, 0);
        Ok(self
            .executor
            .run("offline", move || {
                run_one(&engine, compiled, &input, &NetPolicy::default(), record)
            })
            .await?)
    }

    /// Runs an action's handler for `trigger` on `event` (sample values where missing).
    pub async fn run_action(
        &self,
        compiled: Arc<CompiledRule>,
        trigger: TriggerId,
        event: Value,
    ) -> anyhow::Result<TestOutcome> {
        let engine = self.engine.clone();
        let mut record = ExecutionRecord::start("offline", "offline", Trigger::Test, 0);
        record.kind = CodeKind::Action;
        let input = action_test_input(trigger, &event, "{}");
        Ok(self
            .executor
            .run("offline", move || {
                run_one(&engine, compiled, &input, &NetPolicy::default(), record)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_event_takes_sample_values_where_fields_are_missing() {
        let merged = merged_event(
            &sample_event(TriggerId::PostLogin),
            &json!({"user": {"email": "a@b.c", "app_metadata": {"plan": "gold"}}}),
        );
        assert_eq!(merged["user"]["email"], "a@b.c");
        assert_eq!(merged["user"]["app_metadata"]["plan"], "gold");
        assert_eq!(merged["user"]["user_id"], "auth0|5f7c8ec7c33c6c004bbafe82");
        assert_eq!(merged["transaction"]["protocol"], "oidc-basic-profile");
    }
}
